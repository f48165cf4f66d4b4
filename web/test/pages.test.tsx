import { act, cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CSRF_HEADER } from "../src/api/client";
import { Player } from "../src/player/Player";
import {
  channel,
  serve,
  type Reply,
  liveHealth,
  rendition,
  session,
  user,
  type Call,
} from "./helpers";
import { renderAt } from "./render";

/** The request carried the access token of the signed-in session. */
function expectBearer(call: Call | undefined) {
  expect(call?.headers.Authorization).toBe("Bearer access-1");
}

beforeEach(() => {
  vi.useRealTimers();
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const started = new Date(Date.now() - 5 * 60_000).toISOString();
const alice = channel("alice", {
  title: "Building a streaming server",
  category: "Science & Technology",
  tags: ["python", "cython"],
  live: true,
  last_live_at: started,
  stream: {
    id: 7,
    started_at: started,
    title: "Building a streaming server",
    stats: { video_codec: "h264", width: 1280, height: 720, fps: 30, bitrate_kbps: 2500, keyframe_interval_s: 8 },
    stats_updated_at: started,
  },
});
const bob = channel("bob");
const bobUser = user("bob", 2);
const streamKey = (key: string, ingest = true) => ({
  stream_key: key,
  rtmp_url: "rtmp://tv.example:1935/live",
  rtmps_url: null,
  ingest_enabled: ingest,
});

describe("browse", () => {
  it("lists live channels and offline ones with their info", async () => {
    const server = serve({ "GET /channels": { channels: [alice, bob] } });
    renderAt("/", server);
    const live = await screen.findByTestId("live-channels");
    expect(live.textContent).toContain("Alice");
    expect(live.textContent).toContain("Building a streaming server");
    expect(live.textContent).toContain("for 5 min");
    expect(screen.getByTestId("offline-channels").textContent).toContain("Bob");
    expect(screen.getByRole("link", { name: /Alice/ }).getAttribute("href")).toBe("/alice");
  });

  it("shows an error when the API fails", async () => {
    const server = serve({ "GET /channels": () => ({ status: 500, body: { error: { code: "x", message: "boom" } } }) });
    renderAt("/", server);
    expect((await screen.findByRole("alert")).textContent).toContain("boom");
  });
});

describe("channel page", () => {
  it("shows the offline state with title and tags", async () => {
    const server = serve({ "GET /channels/bob": { ...bob, title: "Back soon", tags: ["chill"] } });
    renderAt("/bob", server);
    expect(await screen.findByTestId("channel-offline")).toBeTruthy();
    expect(screen.getByTestId("channel-title").textContent).toBe("Back soon");
    expect(screen.getByRole("list", { name: "Tags" }).textContent).toContain("chill");
  });

  it("says so when the channel does not exist", async () => {
    renderAt("/nobody", serve({}));
    expect(await screen.findByText(/no channel called/)).toBeTruthy();
  });

  it("never lets a late answer for the previous channel overwrite the next one", async () => {
    let answerAlice: (r: Reply) => void = () => undefined;
    const server = serve({
      "GET /channels/alice": () => new Promise<Reply>((resolve) => (answerAlice = resolve)),
      "GET /channels/bob": { ...bob, title: "Bob's page" },
    });
    const fetchSpy = vi.spyOn(server.client, "channel");
    renderAt("/alice", server);
    await waitFor(() => expect(server.sent()).toContain("GET /channels/alice"));
    const aliceSignal = fetchSpy.mock.calls[0]?.[1];
    // navigate to bob while alice's request is still pending
    act(() => {
      window.history.pushState({}, "", "/bob");
      window.dispatchEvent(new PopStateEvent("popstate"));
    });
    expect((await screen.findByTestId("channel-title")).textContent).toBe("Bob's page");
    expect(aliceSignal?.aborted).toBe(true);
    // alice answers late
    await act(async () => answerAlice({ status: 200, body: { ...alice, title: "Alice's page" } }));
    await act(() => new Promise((r) => setTimeout(r, 20)));
    expect(screen.getByTestId("channel-title").textContent).toBe("Bob's page");
    expect(screen.queryByText("Alice's page")).toBeNull();
  });
});

describe("signing in", () => {
  it("signs in, shows who is signed in and keeps no token in storage", async () => {
    localStorage.clear();
    const server = serve({ "POST /auth/login": session(1), "GET /channels": { channels: [] } });
    renderAt("/login", server);
    fireEvent.change(await screen.findByLabelText("Username or email"), { target: { value: "alice" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "secret-pass" } });
    fireEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect((await screen.findByTestId("signed-in-as")).textContent).toBe("Alice");
    const login = server.find("POST /auth/login");
    expect(login?.body).toEqual({ username: "alice", password: "secret-pass" });
    expect(login?.headers.Authorization).toBeUndefined();
    expect(window.location.pathname).toBe("/");
    expect(localStorage.length).toBe(0);
  });

  it("restores the session from the refresh cookie on load, with the CSRF header", async () => {
    const server = serve({ "GET /channels": { channels: [] } }, true);
    renderAt("/", server);
    expect((await screen.findByTestId("signed-in-as")).textContent).toBe("Alice");
    const refreshes = server.calls.filter((c) => c.url === "/auth/refresh");
    expect(refreshes).toHaveLength(1);
    expect(refreshes[0]?.headers[CSRF_HEADER]).toBe("1");
    expect(refreshes[0]?.body).toBeUndefined();
    expect(refreshes[0]?.credentials).toBe("same-origin");
  });

  it("leaves an anonymous visitor signed out without an error", async () => {
    const server = serve({ "GET /channels": { channels: [] } });
    renderAt("/", server);
    expect(await screen.findByRole("link", { name: "Sign in" })).toBeTruthy();
    expect(screen.queryByRole("alert")).toBeNull();
    expect(server.sent().filter((c) => c === "POST /auth/refresh")).toHaveLength(1);
  });

  it("goes only to a same-origin next page after signing in", async () => {
    const server = serve({ "POST /auth/login": session(1), "GET /channels": { channels: [] } });
    renderAt("/login?next=%2F%2509%2Fevil.example", server);
    fireEvent.change(await screen.findByLabelText("Username or email"), { target: { value: "alice" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "secret-pass" } });
    fireEvent.click(screen.getByRole("button", { name: "Sign in" }));
    await screen.findByTestId("signed-in-as");
    expect(window.location.pathname).toBe("/");
  });

  it("shows the server's message on a failed sign in", async () => {
    const server = serve({
      "POST /auth/login": () => ({ status: 401, body: { error: { code: "invalid_credentials", message: "Wrong username or password" } } }),
    });
    renderAt("/login", server);
    fireEvent.change(await screen.findByLabelText("Username or email"), { target: { value: "a" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "b" } });
    fireEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect((await screen.findByRole("alert")).textContent).toBe("Wrong username or password");
  });

  it("refuses mismatched passwords on sign up without calling the API", async () => {
    const server = serve({});
    renderAt("/register", server);
    fireEvent.change(await screen.findByLabelText("Username"), { target: { value: "alice" } });
    fireEvent.change(screen.getByLabelText("Email"), { target: { value: "a@example.com" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "longenough1" } });
    fireEvent.change(screen.getByLabelText("Repeat password"), { target: { value: "different1" } });
    fireEvent.submit(screen.getByRole("button", { name: "Create account" }).closest("form")!);
    expect((await screen.findByRole("alert")).textContent).toMatch(/do not match/);
    expect(server.sent().filter((c) => c !== "POST /auth/refresh" && c.startsWith("POST"))).toEqual([]);
  });

  it("sends signed-out visitors of the dashboard to sign in", async () => {
    renderAt("/dashboard", serve({}));
    await screen.findByRole("heading", { name: "Sign in" });
    expect(window.location.search).toBe("?next=%2Fdashboard");
  });
});

describe("signing out on a signed-in-only page", () => {
  it("goes home, and the logout carries the CSRF header and the access token", async () => {
    const server = serve(
      {
        "GET /channels/alice": channel("alice"),
        "GET /channels": { channels: [] },
        "POST /auth/logout": () => ({ status: 204 }),
      },
      true,
    );
    renderAt("/dashboard", server);
    await screen.findByTestId("dashboard-status");
    expectBearer(server.find("GET /channels/alice"));
    fireEvent.click(screen.getByRole("button", { name: "Sign out" }));
    await screen.findByRole("heading", { name: "Live channels" });
    expect(window.location.pathname).toBe("/");
    const logout = server.find("POST /auth/logout");
    expect(logout?.headers[CSRF_HEADER]).toBe("1");
    expectBearer(logout);
    expect(logout?.body).toBeUndefined();
  });
});

describe("dashboard", () => {
  it("hides the key until asked, shows stats and warns about a long keyframe interval", async () => {
    const server = serve(
      {
        "GET /channels/alice": alice,
        "GET /server-info": { rtmp_url: "rtmp://tv.example:1935/live", rtmps_url: null, rtmp_port: 1935, public_url: null, version: "1" },
        "GET /me/stream-key": streamKey("live_secret123"),
        "POST /me/broadcast/end": { ingest_enabled: false, live: true },
      },
      true,
    );
    renderAt("/dashboard", server);
    const status = await screen.findByTestId("dashboard-status");
    expect(status.getAttribute("data-live")).toBe("true");
    expect(screen.getByTestId("ingest-stats").textContent).toContain("1280×720");
    expect(screen.getByTestId("keyframe-warning").textContent).toContain("8.0 s");
    expect(document.body.textContent).not.toContain("live_secret123");
    await waitFor(() =>
      expect((screen.getByTestId("server-url") as HTMLInputElement).value).toBe("rtmp://tv.example:1935/live"),
    );
    fireEvent.click(screen.getByRole("button", { name: "Show key" }));
    expect(((await screen.findByTestId("stream-key")) as HTMLInputElement).value).toBe("live_secret123");
    expectBearer(server.find("GET /me/stream-key"));
    fireEvent.click(screen.getByRole("button", { name: "End broadcast" }));
    expect((await screen.findByText(/Broadcast ended/)).textContent).toMatch(/held off/);
    expectBearer(server.find("POST /me/broadcast/end"));
  });

  it("shows only the ingest button that fits the state", async () => {
    const server = serve(
      { "GET /channels/alice": alice, "POST /me/broadcast/end": { ingest_enabled: false, live: true } },
      true,
    );
    renderAt("/dashboard", server);
    const end = await screen.findByRole("button", { name: "End broadcast" });
    expect(screen.queryByRole("button", { name: "Enable ingest" })).toBeNull();
    end.focus();
    fireEvent.click(end);
    const enable = await screen.findByRole("button", { name: "Enable ingest" });
    expect(screen.queryByRole("button", { name: "End broadcast" })).toBeNull();
    // the same button, so keyboard focus stays on it
    expect(document.activeElement).toBe(enable);
    expect(server.sent()).toContain("POST /me/broadcast/end");
  });

  it("offers only Enable ingest while the key is held off and offline", async () => {
    const server = serve(
      {
        "GET /channels/bob": channel("bob", { ingest_enabled: false }),
        "POST /me/broadcast/enable": { ingest_enabled: true, live: false },
      },
      true,
      bobUser,
    );
    renderAt("/dashboard", server);
    const enable = await screen.findByRole("button", { name: "Enable ingest" });
    expect(screen.getByTestId("ingest-held")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "End broadcast" })).toBeNull();
    enable.focus();
    fireEvent.click(enable);
    await screen.findByText(/Ingest enabled/);
    expectBearer(server.find("POST /me/broadcast/enable"));
    // offline with ingest on: no button fits; focus moves to the section, not to <body>
    expect(screen.queryByTestId("ingest-button")).toBeNull();
    expect(screen.queryByTestId("ingest-held")).toBeNull();
    await waitFor(() =>
      expect(document.activeElement).toBe(screen.getByRole("heading", { name: "Stream status" })),
    );
  });

  it("offers no ingest button while offline with ingest on", async () => {
    renderAt("/dashboard", serve({ "GET /channels/bob": channel("bob") }, true, bobUser));
    await screen.findByTestId("dashboard-status");
    expect(screen.queryByTestId("ingest-button")).toBeNull();
  });

  it("ignores an ingest flag read before the streamer changed it", async () => {
    let answerKey: (r: Reply) => void = () => undefined;
    const server = serve(
      {
        "GET /channels/alice": alice,
        "GET /me/stream-key": () => new Promise<Reply>((resolve) => (answerKey = resolve)),
        "POST /me/broadcast/end": { ingest_enabled: false, live: true },
      },
      true,
    );
    renderAt("/dashboard", server);
    fireEvent.click(await screen.findByRole("button", { name: "Show key" }));
    fireEvent.click(screen.getByRole("button", { name: "End broadcast" }));
    await screen.findByRole("button", { name: "Enable ingest" });
    // the key request was sent before "End broadcast" and answers with the old flag
    await act(async () => answerKey({ status: 200, body: streamKey("k", true) }));
    await screen.findByTestId("stream-key");
    expect(screen.getByRole("button", { name: "Enable ingest" })).toBeTruthy();
  });

  it("moves keyboard focus to what replaced the pressed button", async () => {
    const server = serve(
      { "GET /channels/bob": bob, "GET /me/stream-key": streamKey("live_k") },
      true,
      bobUser,
    );
    renderAt("/dashboard", server);
    fireEvent.click(await screen.findByRole("button", { name: "Show key" }));
    const key = await screen.findByTestId("stream-key");
    const focused = (el: () => HTMLElement) => waitFor(() => expect(document.activeElement).toBe(el()));
    await focused(() => key);
    fireEvent.click(screen.getByRole("button", { name: "Hide" }));
    await focused(() => screen.getByRole("button", { name: "Show key" }));
    fireEvent.click(screen.getByRole("button", { name: "Rotate key…" }));
    await focused(() => screen.getByRole("button", { name: "Make a new key" }));
    fireEvent.click(screen.getByRole("button", { name: "Cancel" }));
    await focused(() => screen.getByRole("button", { name: "Rotate key…" }));
  });

  it("rotates the key only after confirmation", async () => {
    const server = serve(
      { "GET /channels/alice": channel("alice"), "POST /me/stream-key": streamKey("live_new") },
      true,
    );
    renderAt("/dashboard", server);
    fireEvent.click(await screen.findByRole("button", { name: "Rotate key…" }));
    expect(server.sent()).not.toContain("POST /me/stream-key");
    fireEvent.click(screen.getByRole("button", { name: "Make a new key" }));
    expect(((await screen.findByTestId("stream-key")) as HTMLInputElement).value).toBe("live_new");
    expectBearer(server.find("POST /me/stream-key"));
  });

  it("saves stream info with tags split on commas", async () => {
    const server = serve(
      {
        "GET /channels/bob": bob,
        "PATCH /channels/bob": (call: Call) => ({ status: 200, body: { ...bob, ...(call.body as object) } }),
      },
      true,
      bobUser,
    );
    renderAt("/dashboard", server);
    fireEvent.change(await screen.findByLabelText("Title"), { target: { value: "Hello" } });
    fireEvent.change(screen.getByLabelText("Tags"), { target: { value: "a, b,, a" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText("Saved.");
    const patch = server.find("PATCH /channels/bob");
    expect(patch?.body).toMatchObject({ title: "Hello", tags: ["a", "b"] });
    expectBearer(patch);
  });
});

describe("dashboard stream health", () => {
  const ladder = { enabled: true, rungs: ["720p", "480p", "360p"] as ("720p" | "480p" | "360p")[] };
  const aliceOwned = { ...alice, ladder };

  it("polls health every 2 s while live and draws the last samples", async () => {
    let polls = 0;
    const server = serve(
      {
        "GET /channels/alice": aliceOwned,
        "GET /channels/alice/health": () => {
          polls += 1;
          const r720 = rendition("720p", { encode_speed: polls === 1 ? 1.6 : 0.8, dropped_frames: polls === 1 ? 0 : 12 });
          return { status: 200, body: liveHealth({}, [rendition("source", { width: 1920, height: 1080 }), r720]) };
        },
      },
      true,
    );
    renderAt("/dashboard", server);
    const state = await screen.findByTestId("ladder-state");
    expect(state.getAttribute("data-state")).toBe("running");
    expect(state.textContent).toContain("source, 720p");
    expectBearer(server.find("GET /channels/alice/health"));
    const bitrate = within(screen.getByTestId("spark-bitrate"));
    expect(bitrate.getByRole("img").getAttribute("aria-label")).toMatch(/^Ingest bitrate over the last 2 minutes: now 4\.5 Mb\/s/);
    expect(screen.getByTestId("rendition-source").textContent).toContain("1920×1080");
    expect(screen.getByTestId("rendition-source").textContent).toContain("copied");
    // only encoded renditions get speed and drop graphs
    expect(screen.queryByTestId("spark-speed-source")).toBeNull();
    // the second poll, 2 s later: the 720p encoder fell behind real time and dropped frames
    await waitFor(() => expect(polls).toBeGreaterThanOrEqual(2), { timeout: 3500 });
    const speed = await screen.findByTestId("spark-speed-720p");
    await waitFor(() => expect(speed.className).toContain("spark-warn"));
    expect(speed.querySelector("path")!.getAttribute("d")).toMatch(/^M[\d.]+ [\d.]+ L/);
    expect(within(screen.getByTestId("spark-dropped-720p")).getByRole("img").getAttribute("aria-label")).toMatch(
      /now 12\b/,
    );
  }, 8000);

  it("says why the ladder is not running", async () => {
    const waiting = liveHealth(
      {
        ladder: {
          state: "waiting",
          reason: "every encoder slot is busy",
          decode_cpu_seconds: 0,
          dropped_packets: 0,
          decoder_restarts: 0,
        },
      },
      [rendition("source")],
    );
    const server = serve({ "GET /channels/alice": aliceOwned, "GET /channels/alice/health": waiting }, true);
    renderAt("/dashboard", server);
    const state = await screen.findByTestId("ladder-state");
    expect(state.getAttribute("data-state")).toBe("waiting");
    expect(state.textContent).toMatch(/every encoder slot is busy.*source quality only/);
    expect(state.className).toContain("warning");
  });

  it("asks for no health while offline", async () => {
    const server = serve({ "GET /channels/bob": { ...bob, ladder } }, true, bobUser);
    renderAt("/dashboard", server);
    await screen.findByTestId("health-offline");
    await new Promise((r) => setTimeout(r, 50));
    expect(server.sent()).not.toContain("GET /channels/bob/health");
  });

  it("saves the quality ladder with PATCH and says it applies from the next broadcast", async () => {
    const server = serve(
      {
        "GET /channels/bob": { ...bob, ladder },
        "PATCH /channels/bob": (call: Call) => ({ status: 200, body: { ...bob, ...(call.body as object) } }),
      },
      true,
      bobUser,
    );
    renderAt("/dashboard", server);
    const r480 = (await screen.findByLabelText("480p")) as HTMLInputElement;
    expect(r480.checked).toBe(true);
    fireEvent.click(r480);
    fireEvent.click(screen.getByRole("button", { name: "Save quality ladder" }));
    expect((await screen.findByText(/applies from your next broadcast/)).textContent).toMatch(/Saved/);
    const patch = server.find("PATCH /channels/bob");
    expect(patch?.body).toEqual({ ladder: { enabled: true, rungs: ["720p", "360p"] } });
    expectBearer(patch);

    const enabled = screen.getByLabelText("Offer lower qualities (transcode)") as HTMLInputElement;
    fireEvent.click(enabled);
    expect(screen.getByRole("group", { name: "Qualities to offer besides the source" })).toHaveProperty("disabled", true);
    fireEvent.click(screen.getByRole("button", { name: "Save quality ladder" }));
    await waitFor(() => expect(server.calls.filter((c) => c.method === "PATCH").length).toBe(2));
    expect(server.calls.filter((c) => c.method === "PATCH").at(-1)?.body).toEqual({
      ladder: { enabled: false, rungs: ["720p", "360p"] },
    });
  });

  it("shows the ladder form only with the owner's settings", async () => {
    const server = serve({ "GET /channels/bob": bob }, true, bobUser);
    renderAt("/dashboard", server);
    await screen.findByTestId("dashboard-status");
    expect(screen.queryByTestId("ladder-form")).toBeNull();
  });
});

describe("settings", () => {
  it("changes the email only with the current password", async () => {
    const server = serve(
      {
        "PATCH /me": (call: Call) => ({ status: 200, body: { ...user(), ...(call.body as object) } }),
      },
      true,
    );
    renderAt("/settings", server);
    const email = await screen.findByLabelText("Email", { selector: "input" });
    expect((email as HTMLInputElement).value).toBe("alice@example.com");
    fireEvent.change(email, { target: { value: "new@example.com" } });
    fireEvent.change(screen.getByLabelText("Your password"), { target: { value: "current pw" } });
    fireEvent.click(screen.getByRole("button", { name: "Change email" }));
    await screen.findByText("Email changed.");
    const patch = server.find("PATCH /me");
    expect(patch?.body).toEqual({ email: "new@example.com", current_password: "current pw" });
    expectBearer(patch);
  });

  it("saves the profile with the bearer token", async () => {
    const server = serve(
      { "PATCH /me": (call: Call) => ({ status: 200, body: { ...user(), ...(call.body as object) } }) },
      true,
    );
    renderAt("/settings", server);
    fireEvent.change(await screen.findByLabelText("Display name"), { target: { value: "Ally" } });
    fireEvent.click(screen.getByRole("button", { name: "Save profile" }));
    await screen.findByText("Profile saved.");
    expect(server.find("PATCH /me")?.body).toEqual({ display_name: "Ally", bio: "" });
    expectBearer(server.find("PATCH /me"));
    expect((await screen.findByTestId("signed-in-as")).textContent).toBe("Ally");
  });
});

describe("player", () => {
  function nativeHls() {
    // jsdom has no MediaSource (so no hls.js): pretend to be Safari with native HLS
    vi.spyOn(HTMLMediaElement.prototype, "canPlayType").mockImplementation((t: string) =>
      t === "application/vnd.apple.mpegurl" ? "maybe" : "",
    );
    vi.spyOn(HTMLMediaElement.prototype, "play").mockResolvedValue(undefined);
    return vi.spyOn(HTMLMediaElement.prototype, "load").mockImplementation(() => undefined);
  }

  it("starts muted with an obvious unmute button and a behind-live slot", () => {
    nativeHls();
    render(<Player src="/hls/alice/master.m3u8" title="Alice" />);
    const video = document.querySelector("video")!;
    expect(video.muted).toBe(true);
    expect(video.getAttribute("src")).toBe("/hls/alice/master.m3u8");
    expect(screen.getByRole("button", { name: /Click to unmute/ })).toBeTruthy();
    expect(screen.getByTestId("behind-live").getAttribute("data-seconds")).toBe("");
    expect(screen.getByLabelText("Alice live video")).toBe(video);
  });

  it("unmutes on click", async () => {
    nativeHls();
    render(<Player src="/x.m3u8" title="A" />);
    const video = document.querySelector("video")!;
    await act(async () => {
      fireEvent.click(screen.getByRole("button", { name: /Click to unmute/ }));
    });
    await waitFor(() => expect(video.muted).toBe(false));
    expect(screen.queryByRole("button", { name: /Click to unmute/ })).toBeNull();
    expect(screen.getByRole("button", { name: "Mute" })).toBeTruthy();
  });

  it("says so clearly when the browser cannot play HLS", async () => {
    render(<Player src="/x.m3u8" title="A" />);
    expect((await screen.findByTestId("player-error")).textContent).toMatch(/cannot play HLS/);
  });

  it("goes to reconnecting on a media error and retries", async () => {
    const load = nativeHls();
    render(<Player src="/x.m3u8" title="A" retryDelayMs={20} />);
    const video = document.querySelector("video")!;
    const firstSrc = video.getAttribute("src");
    const before: Array<string | null> = []; // src before each change
    new MutationObserver((records) => before.push(...records.map((r) => r.oldValue))).observe(video, {
      attributeFilter: ["src"],
      attributeOldValue: true,
    });
    act(() => {
      video.dispatchEvent(new Event("error"));
    });
    expect(await screen.findByTestId("player-reconnecting")).toBeTruthy();
    // the retry detaches the failed source and attaches it again
    await waitFor(() => expect(before).toEqual([firstSrc, null]));
    expect(video.getAttribute("src")).toBe(firstSrc);
    expect(load).toHaveBeenCalled();
  });
});
