import { describe, expect, it } from "vitest";
import {
  ENDED_TEXT,
  initialPlayerState,
  OFFLINE_TEXT,
  playerReducer,
  RECONNECTING_TEXT,
  type PlayerAction,
  type PlayerState,
} from "../src/player/state";

const run = (actions: PlayerAction[], from: PlayerState = initialPlayerState) =>
  actions.reduce(playerReducer, from);

const levels = [
  { index: 1, label: "720p", height: 720 },
  { index: 0, label: "source", height: 1080 },
];

describe("playerReducer", () => {
  it("starts loading, muted, with automatic quality", () => {
    expect(run([{ type: "load" }])).toMatchObject({ status: "loading", muted: true, selected: -1, attempt: 0 });
  });

  it("plays, then buffers on a stall and plays again", () => {
    const playing = run([{ type: "load" }, { type: "playing" }]);
    expect(playing).toMatchObject({ status: "playing", paused: false, message: "" });
    const stalled = playerReducer(playing, { type: "waiting" });
    expect(stalled.status).toBe("buffering");
    expect(playerReducer(stalled, { type: "playing" }).status).toBe("playing");
  });

  it("a stall before playing leaves loading alone", () => {
    const loading = run([{ type: "load" }]);
    expect(playerReducer(loading, { type: "waiting" })).toBe(loading);
  });

  it("reconnects after a network failure: the retry reloads and says reconnecting", () => {
    const failed = run([{ type: "load" }, { type: "playing" }, { type: "failed", problem: "network" }]);
    expect(failed).toMatchObject({ status: "reconnecting", message: RECONNECTING_TEXT });
    const retried = run([{ type: "retry" }, { type: "load" }], failed);
    expect(retried).toMatchObject({ status: "reconnecting", attempt: 1 });
    expect(playerReducer(retried, { type: "playing" })).toMatchObject({ status: "playing", lastProblem: null });
  });

  it("stays offline across retries until the stream is back", () => {
    const offline = run([{ type: "load" }, { type: "failed", problem: "offline" }]);
    expect(offline).toMatchObject({ status: "offline", message: OFFLINE_TEXT });
    expect(run([{ type: "retry" }, { type: "load" }], offline).status).toBe("offline");
  });

  it("says the broadcast ended at ENDLIST", () => {
    expect(run([{ type: "playing" }, { type: "ended" }])).toMatchObject({ status: "offline", message: ENDED_TEXT });
  });

  it("a fatal error waits for Try again, which reloads", () => {
    const broken = run([{ type: "load" }, { type: "fatal", message: "Playback failed (x)." }]);
    expect(broken).toMatchObject({ status: "error", message: "Playback failed (x)." });
    expect(run([{ type: "retry" }, { type: "load" }], broken).attempt).toBe(1);
  });

  it("keeps the quality choice across a reconnection when the rendition still exists", () => {
    const chosen = run([{ type: "manifest", levels }, { type: "choose", index: 1 }]);
    expect(run([{ type: "manifest", levels }], chosen).selected).toBe(1);
    expect(run([{ type: "manifest", levels: [levels[1]!] }], chosen).selected).toBe(-1);
    expect(playerReducer(chosen, { type: "levelSwitched", index: 0 }).playingLevel).toBe(0);
  });

  it("shows behind-live only while playing or buffering", () => {
    expect(run([{ type: "load" }, { type: "behind", seconds: 2 }]).behind).toBeNull();
    const playing = run([{ type: "playing" }, { type: "behind", seconds: 2 }]);
    expect(playing.behind).toBe(2);
    expect(run([{ type: "waiting" }, { type: "behind", seconds: 3 }], playing).behind).toBe(3);
    expect(run([{ type: "ended" }], playing).behind).toBeNull();
    expect(run([{ type: "failed", problem: "network" }], playing).behind).toBeNull();
  });

  it("tracks mute and pause, returning the same state when nothing changed", () => {
    const s = run([{ type: "muted", muted: false }, { type: "paused", paused: true }]);
    expect(s).toMatchObject({ muted: false, paused: true });
    expect(playerReducer(s, { type: "muted", muted: false })).toBe(s);
    expect(playerReducer(s, { type: "paused", paused: true })).toBe(s);
  });
});
