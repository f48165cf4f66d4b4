// The player's hls.js path (jsdom has no MediaSource, so hls.js is replaced by a scripted stand-in
// that records what the player asks of it and lets the test fire hls.js events).
import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

type Listener = (event: string, data: unknown) => void;

const fake = vi.hoisted(() => {
  class FakeHls {
    static instances: FakeHls[] = [];
    static isSupported = (): boolean => true;
    static Events = {
      MANIFEST_PARSED: "hlsManifestParsed",
      LEVEL_SWITCHED: "hlsLevelSwitched",
      ERROR: "hlsError",
    };
    static ErrorTypes = { NETWORK_ERROR: "networkError", MEDIA_ERROR: "mediaError", OTHER_ERROR: "otherError" };
    config: Record<string, unknown>;
    listeners = new Map<string, Listener[]>();
    nextLevel = -1;
    loadLevel = -1;
    /** Every level change the player asked for, as "property=value" (currentLevel stalls). */
    switches: string[] = [];
    set currentLevel(value: number) {
      this.switches.push(`currentLevel=${value}`);
    }
    playingDate: Date | null = null;
    liveSyncPosition: number | null = null;
    src = "";
    destroyed = false;
    constructor(config: Record<string, unknown>) {
      this.config = config;
      FakeHls.instances.push(this);
    }
    on(event: string, fn: Listener): void {
      this.listeners.set(event, [...(this.listeners.get(event) ?? []), fn]);
    }
    emit(event: string, data: unknown): void {
      for (const fn of this.listeners.get(event) ?? []) fn(event, data);
    }
    loadSource(src: string): void {
      this.src = src;
    }
    attachMedia(): void {}
    destroy(): void {
      this.destroyed = true;
    }
    recoverMediaError(): void {}
    swapAudioCodec(): void {}
  }
  return { FakeHls };
});

vi.mock("hls.js", () => ({ default: fake.FakeHls }));

import { Player } from "../src/player/Player";

const { FakeHls } = fake;
const latest = () => FakeHls.instances.at(-1)!;
const levels = [
  { height: 360, name: "360p", bitrate: 800_000 },
  { height: 1080, name: "source", bitrate: 6_000_000 },
  { height: 720, name: "720p", bitrate: 3_000_000 },
];

function fire(event: string, data: unknown, hls = latest()): void {
  act(() => hls.emit(event, data));
}

function networkError(code: number | undefined): unknown {
  return {
    type: "networkError",
    details: "manifestLoadError",
    fatal: true,
    response: code === undefined ? undefined : { url: "/x", code },
  };
}

beforeEach(() => {
  FakeHls.instances.length = 0;
  vi.spyOn(HTMLMediaElement.prototype, "play").mockResolvedValue(undefined);
  vi.spyOn(HTMLMediaElement.prototype, "pause").mockImplementation(() => undefined);
  vi.spyOn(HTMLMediaElement.prototype, "load").mockImplementation(() => undefined);
});

afterEach(() => {
  cleanup();
});

describe("player on hls.js", () => {
  it("asks hls.js for low latency with a gentle catch-up", () => {
    render(<Player src="/hls/a/master.m3u8" title="A" />);
    expect(latest().src).toBe("/hls/a/master.m3u8");
    expect(latest().config.lowLatencyMode).toBe(true);
    const rate = Number(latest().config.maxLiveSyncPlaybackRate);
    // above 1 (hls.js never catches up at 1) but gentle: not a noticeable speed-up
    expect(rate).toBeGreaterThan(1);
    expect(rate).toBeLessThanOrEqual(1.25);
  });

  it("offers Auto plus each rendition, and keeps the choice across a reconnection", async () => {
    render(<Player src="/x.m3u8" title="A" retryDelayMs={10} />);
    fire("hlsManifestParsed", { levels });
    const menu = screen.getByRole("combobox", { name: "Quality" }) as HTMLSelectElement;
    expect([...menu.options].map((o) => o.textContent)).toEqual(["Auto", "Source (1080p)", "720p", "360p"]);
    fireEvent.change(menu, { target: { value: "2" } }); // 720p
    expect(latest().loadLevel).toBe(2);
    const first = latest();
    fire("hlsError", networkError(503));
    expect(screen.getByTestId("player-reconnecting")).toBeTruthy();
    expect(first.destroyed).toBe(true);
    await waitFor(() => expect(FakeHls.instances.length).toBe(2));
    fire("hlsManifestParsed", { levels });
    expect(latest().loadLevel).toBe(2);
    expect((screen.getByRole("combobox", { name: "Quality" }) as HTMLSelectElement).value).toBe("2");
  });

  it("names renditions from the master playlist and switches between them without a flush", () => {
    render(<Player src="/hls/a/master.m3u8" title="A" />);
    // what hls.js makes of Kitch's master playlist: no NAME, RESOLUTION and the variant's URI
    const at = (name: string) => [`http://tv.example/hls/a/${name}/index.m3u8`];
    const parsed = [
      { height: 1080, width: 1920, bitrate: 6_000_000, url: at("source"), name: undefined },
      { height: 720, width: 1280, bitrate: 3_000_000, url: at("720p"), name: undefined },
      { height: 480, width: 854, bitrate: 1_400_000, url: at("480p"), name: undefined },
    ];
    fire("hlsManifestParsed", { levels: parsed });
    const menu = screen.getByRole("combobox", { name: "Quality" }) as HTMLSelectElement;
    expect([...menu.options].map((o) => o.textContent)).toEqual(["Auto", "Source (1080p)", "720p", "480p"]);
    expect(menu.options[0]!.value).toBe("-1");
    const hls = latest();
    // at the live edge (little buffered ahead) nothing is flushed: the next fragment loaded is 480p
    fireEvent.change(menu, { target: { value: "2" } }); // 480p
    expect(hls.loadLevel).toBe(2);
    expect(hls.nextLevel).toBe(-1);
    fire("hlsLevelSwitched", { level: 2 });
    const box = document.querySelector(".player")!;
    expect(box.getAttribute("data-level")).toBe("2");
    expect(box.getAttribute("data-level-label")).toBe("480p");
    fireEvent.change(menu, { target: { value: "-1" } }); // back to Auto
    expect(hls.loadLevel).toBe(-1);
    fire("hlsLevelSwitched", { level: 1 });
    expect(menu.options[0]!.textContent).toBe("Auto (720p)");
    // with a long buffer ahead, what lies past the next fragment is flushed (hls.js nextLevel)
    const video = document.querySelector("video")!;
    Object.defineProperty(video, "buffered", {
      configurable: true,
      get: () => ({ length: 1, start: () => 0, end: () => 30 }),
    });
    Object.defineProperty(video, "currentTime", { configurable: true, get: () => 10 });
    fireEvent.change(menu, { target: { value: "1" } }); // 720p
    expect(hls.nextLevel).toBe(1);
    // never currentLevel, which empties the whole buffer and stalls playback
    expect(hls.switches).toEqual([]);
  });

  it("says offline (not reconnecting) when the server has no stream, and keeps trying", async () => {
    render(<Player src="/x.m3u8" title="A" retryDelayMs={10} />);
    fire("hlsError", networkError(404));
    expect(screen.getByTestId("player-offline").textContent).toMatch(/offline/);
    expect(screen.queryByTestId("player-reconnecting")).toBeNull();
    expect(screen.queryByRole("button", { name: /Click to unmute/ })).toBeNull();
    await waitFor(() => expect(FakeHls.instances.length).toBe(2));
    // the retry stays "offline" until something plays
    expect(screen.getByTestId("player-offline")).toBeTruthy();
    act(() => {
      document.querySelector("video")!.dispatchEvent(new Event("playing"));
    });
    expect(screen.queryByTestId("player-offline")).toBeNull();
    expect(document.querySelector(".player")!.getAttribute("data-state")).toBe("playing");
  });

  it("says the broadcast ended at the end of the playlist and stops retrying", async () => {
    render(<Player src="/x.m3u8" title="A" retryDelayMs={10} />);
    act(() => {
      document.querySelector("video")!.dispatchEvent(new Event("ended"));
    });
    expect(screen.getByTestId("player-offline").textContent).toMatch(/ended/);
    await new Promise((r) => setTimeout(r, 60));
    expect(FakeHls.instances.length).toBe(1);
  });

  it("shows a fatal error with Try again, which reloads", async () => {
    render(<Player src="/x.m3u8" title="A" />);
    fire("hlsError", { type: "otherError", details: "internalException", fatal: true });
    expect(screen.getByTestId("player-error").textContent).toMatch(/internalException/);
    fireEvent.click(screen.getByRole("button", { name: "Try again" }));
    await waitFor(() => expect(FakeHls.instances.length).toBe(2));
    expect(screen.queryByTestId("player-error")).toBeNull();
  });

  it("shows behind-live from the playhead's program date, with jump-to-live when far behind", async () => {
    render(<Player src="/x.m3u8" title="A" />);
    const video = document.querySelector("video")!;
    act(() => {
      video.dispatchEvent(new Event("playing"));
    });
    latest().playingDate = new Date(Date.now() - 1500);
    const behind = screen.getByTestId("behind-live");
    await waitFor(() => expect(Number(behind.getAttribute("data-seconds"))).toBeGreaterThan(1.4), {
      timeout: 2000,
    });
    expect(Number(behind.getAttribute("data-seconds"))).toBeLessThan(3);
    expect(screen.queryByRole("button", { name: "Jump to live" })).toBeNull();

    latest().playingDate = new Date(Date.now() - 10_000);
    latest().liveSyncPosition = 42;
    const jump = await screen.findByRole("button", { name: "Jump to live" }, { timeout: 2000 });
    let seekedTo = -1;
    Object.defineProperty(video, "currentTime", {
      configurable: true,
      get: () => seekedTo,
      set: (v: number) => (seekedTo = v),
    });
    fireEvent.click(jump);
    expect(seekedTo).toBe(42);
  });

  it("hides behind-live once the broadcast ended (a stale playhead date means nothing)", async () => {
    render(<Player src="/x.m3u8" title="A" retryDelayMs={60_000} />);
    act(() => {
      document.querySelector("video")!.dispatchEvent(new Event("playing"));
    });
    latest().playingDate = new Date(Date.now() - 2000);
    const behind = screen.getByTestId("behind-live");
    await waitFor(() => expect(behind.getAttribute("data-seconds")).not.toBe(""), { timeout: 2000 });
    act(() => {
      document.querySelector("video")!.dispatchEvent(new Event("ended"));
    });
    await waitFor(() => expect(behind.getAttribute("data-seconds")).toBe(""), { timeout: 2000 });
    expect(screen.queryByRole("button", { name: "Jump to live" })).toBeNull();
  });

  it("keeps keyboard focus on the mute control after the big unmute button goes", () => {
    render(<Player src="/x.m3u8" title="A" />);
    const unmute = screen.getByRole("button", { name: /Click to unmute/ });
    unmute.focus();
    fireEvent.click(unmute);
    expect(screen.queryByRole("button", { name: /Click to unmute/ })).toBeNull();
    expect(document.activeElement).toBe(screen.getByRole("button", { name: "Mute" }));
  });
});
