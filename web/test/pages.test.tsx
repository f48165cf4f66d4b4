import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../src/App";
import { ApiClient } from "../src/api/client";
import { ServerClock } from "../src/api/clock";
import { sessionFromTokens, saveSession } from "../src/api/session";
import { Player } from "../src/player/Player";
import { memoryStorage, tokens } from "./helpers";

type Reply = { status: number; body?: unknown };
type Handler = (url: string, init: RequestInit) => Reply | Promise<Reply>;

/** Route fetches by "METHOD path" (path without /api/v1); unknown ones answer 404. */
function serve(routes: Record<string, unknown | Handler>) {
  const calls: string[] = [];
  const fetchImpl = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = String(input).replace(/^\/api\/v1/, "");
    const key = `${init.method ?? "GET"} ${url}`;
    calls.push(key);
    const route = routes[key];
    let answer: { status: number; body?: unknown };
    if (route === undefined) answer = { status: 404, body: { error: { code: "not_found", message: "nope" } } };
    else if (typeof route === "function") answer = await (route as Handler)(url, init);
    else answer = { status: 200, body: route };
    return new Response(answer.body === undefined ? null : JSON.stringify(answer.body), {
      status: answer.status,
      headers: { "Content-Type": "application/json" },
    });
  });
  vi.stubGlobal("fetch", fetchImpl);
  return calls;
}

function renderAt(path: string, signedIn = false) {
  window.history.pushState({}, "", path);
  const storage = memoryStorage();
  if (signedIn) saveSession(storage, sessionFromTokens(tokens(1), Date.now()));
  const client = new ApiClient({ storage, clock: new ServerClock() });
  return render(<App client={client} />);
}

beforeEach(() => {
  vi.useRealTimers();
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const alice = {
  name: "alice",
  display_name: "Alice",
  title: "Building a streaming server",
  category: "Science & Technology",
  tags: ["python", "cython"],
  live: true,
  stream: {
    started_at: new Date(Date.now() - 5 * 60_000).toISOString(),
    stats: { video_codec: "h264", width: 1280, height: 720, fps: 30, bitrate_kbps: 2500, keyframe_interval_s: 8 },
  },
};
const bob = { name: "bob", display_name: "Bob", title: "", live: false };

describe("browse", () => {
  it("lists live channels first with their info", async () => {
    serve({ "GET /channels": [bob, alice] });
    renderAt("/");
    const live = await screen.findByTestId("live-channels");
    expect(live.textContent).toContain("Alice");
    expect(live.textContent).toContain("Building a streaming server");
    expect(live.textContent).toContain("for 5 min");
    expect(screen.getByTestId("offline-channels").textContent).toContain("Bob");
    expect(screen.getByRole("link", { name: /Alice/ }).getAttribute("href")).toBe("/alice");
  });

  it("shows an error when the API fails", async () => {
    serve({ "GET /channels": () => ({ status: 500, body: { error: { code: "x", message: "boom" } } }) });
    renderAt("/");
    expect((await screen.findByRole("alert")).textContent).toContain("boom");
  });
});

describe("channel page", () => {
  it("shows the offline state with title and tags", async () => {
    serve({ "GET /channels/bob": { ...bob, title: "Back soon", tags: ["chill"] } });
    renderAt("/bob");
    expect(await screen.findByTestId("channel-offline")).toBeTruthy();
    expect(screen.getByTestId("channel-title").textContent).toBe("Back soon");
    expect(screen.getByRole("list", { name: "Tags" }).textContent).toContain("chill");
  });

  it("says so when the channel does not exist", async () => {
    serve({});
    renderAt("/nobody");
    expect(await screen.findByText(/no channel called/)).toBeTruthy();
  });
});

describe("sign in", () => {
  it("signs in and shows who is signed in", async () => {
    const calls = serve({
      "POST /auth/login": tokens(1),
      "GET /me": { username: "alice", display_name: "Alice" },
      "GET /channels": [],
    });
    renderAt("/login");
    fireEvent.change(await screen.findByLabelText("Username or email"), { target: { value: "alice" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "secret-pass" } });
    fireEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect((await screen.findByTestId("signed-in-as")).textContent).toBe("Alice");
    expect(calls).toContain("POST /auth/login");
    expect(window.location.pathname).toBe("/");
  });

  it("shows the server's message on a failed sign in", async () => {
    serve({
      "POST /auth/login": () => ({ status: 401, body: { error: { code: "invalid_credentials", message: "Wrong username or password" } } }),
    });
    renderAt("/login");
    fireEvent.change(await screen.findByLabelText("Username or email"), { target: { value: "a" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "b" } });
    fireEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect((await screen.findByRole("alert")).textContent).toBe("Wrong username or password");
  });

  it("refuses mismatched passwords on sign up without calling the API", async () => {
    const calls = serve({});
    renderAt("/register");
    fireEvent.change(await screen.findByLabelText("Username"), { target: { value: "alice" } });
    fireEvent.change(screen.getByLabelText("Email"), { target: { value: "a@example.com" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "longenough1" } });
    fireEvent.change(screen.getByLabelText("Repeat password"), { target: { value: "different1" } });
    fireEvent.submit(screen.getByRole("button", { name: "Create account" }).closest("form")!);
    expect((await screen.findByRole("alert")).textContent).toMatch(/do not match/);
    expect(calls.filter((c) => c.startsWith("POST"))).toEqual([]);
  });

  it("sends signed-out visitors of the dashboard to sign in", async () => {
    serve({});
    renderAt("/dashboard");
    await screen.findByRole("heading", { name: "Sign in" });
    expect(window.location.search).toBe("?next=%2Fdashboard");
  });
});

describe("signing out on a signed-in-only page", () => {
  it("goes home, not to the sign-in form", async () => {
    serve({
      "GET /me": { username: "alice" },
      "GET /channels/alice": bob,
      "GET /channels": [],
      "POST /auth/logout": () => ({ status: 204 }),
    });
    renderAt("/dashboard", true);
    await screen.findByTestId("dashboard-status");
    fireEvent.click(screen.getByRole("button", { name: "Sign out" }));
    await screen.findByRole("heading", { name: "Browse" });
    expect(window.location.pathname).toBe("/");
  });
});

describe("dashboard", () => {
  it("hides the key until asked, shows stats and warns about a long keyframe interval", async () => {
    serve({
      "GET /me": { username: "alice" },
      "GET /channels/alice": alice,
      "GET /me/stream-key": { stream_key: "live_secret123" },
      "POST /me/broadcast/end": { ok: true },
    });
    renderAt("/dashboard", true);
    const status = await screen.findByTestId("dashboard-status");
    expect(status.getAttribute("data-live")).toBe("true");
    expect(screen.getByTestId("ingest-stats").textContent).toContain("1280×720");
    expect(screen.getByTestId("keyframe-warning").textContent).toContain("8.0 s");
    expect(document.body.textContent).not.toContain("live_secret123");
    expect((screen.getByTestId("server-url") as HTMLInputElement).value).toBe(
      `rtmp://${window.location.hostname}:1935/live`,
    );
    fireEvent.click(screen.getByRole("button", { name: "Show key" }));
    expect(((await screen.findByTestId("stream-key")) as HTMLInputElement).value).toBe("live_secret123");
    fireEvent.click(screen.getByRole("button", { name: "End broadcast" }));
    expect((await screen.findByText(/Broadcast ended/)).textContent).toMatch(/held off/);
  });

  it("shows only the ingest button that fits the state", async () => {
    const calls = serve({
      "GET /me": { username: "alice" },
      "GET /channels/alice": { ...alice, ingest_enabled: true },
      "POST /me/broadcast/end": { ingest_enabled: false, live: true },
    });
    renderAt("/dashboard", true);
    const end = await screen.findByRole("button", { name: "End broadcast" });
    expect(screen.queryByRole("button", { name: "Enable ingest" })).toBeNull();
    end.focus();
    fireEvent.click(end);
    const enable = await screen.findByRole("button", { name: "Enable ingest" });
    expect(screen.queryByRole("button", { name: "End broadcast" })).toBeNull();
    // the same button, so keyboard focus stays on it
    expect(document.activeElement).toBe(enable);
    expect(calls).toContain("POST /me/broadcast/end");
  });

  it("offers only Enable ingest while the key is held off and offline", async () => {
    const calls = serve({
      "GET /me": { username: "bob" },
      "GET /channels/bob": { ...bob, ingest_enabled: false },
      "POST /me/broadcast/enable": { ingest_enabled: true, live: false },
    });
    renderAt("/dashboard", true);
    const enable = await screen.findByRole("button", { name: "Enable ingest" });
    expect(screen.getByTestId("ingest-held")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "End broadcast" })).toBeNull();
    enable.focus();
    fireEvent.click(enable);
    await screen.findByText(/Ingest enabled/);
    expect(calls).toContain("POST /me/broadcast/enable");
    // offline with ingest on: no button fits; focus moves to the section, not to <body>
    expect(screen.queryByTestId("ingest-button")).toBeNull();
    expect(screen.queryByTestId("ingest-held")).toBeNull();
    await waitFor(() =>
      expect(document.activeElement).toBe(screen.getByRole("heading", { name: "Stream status" })),
    );
  });

  it("offers no ingest button while offline with ingest on", async () => {
    serve({ "GET /me": { username: "bob" }, "GET /channels/bob": { ...bob, ingest_enabled: true } });
    renderAt("/dashboard", true);
    await screen.findByTestId("dashboard-status");
    expect(screen.queryByTestId("ingest-button")).toBeNull();
  });

  it("ignores an ingest flag read before the streamer changed it", async () => {
    let answerKey: (r: Reply) => void = () => undefined;
    serve({
      "GET /me": { username: "alice" },
      "GET /channels/alice": { ...alice, ingest_enabled: true },
      "GET /me/stream-key": () => new Promise<Reply>((resolve) => (answerKey = resolve)),
      "POST /me/broadcast/end": { ingest_enabled: false, live: true },
    });
    renderAt("/dashboard", true);
    fireEvent.click(await screen.findByRole("button", { name: "Show key" }));
    fireEvent.click(screen.getByRole("button", { name: "End broadcast" }));
    await screen.findByRole("button", { name: "Enable ingest" });
    // the key request was sent before "End broadcast" and answers with the old flag
    await act(async () => answerKey({ status: 200, body: { stream_key: "k", ingest_enabled: true } }));
    await screen.findByTestId("stream-key");
    expect(screen.getByRole("button", { name: "Enable ingest" })).toBeTruthy();
  });

  it("moves keyboard focus to what replaced the pressed button", async () => {
    serve({
      "GET /me": { username: "bob" },
      "GET /channels/bob": bob,
      "GET /me/stream-key": { stream_key: "live_k" },
    });
    renderAt("/dashboard", true);
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
    const calls = serve({
      "GET /me": { username: "alice" },
      "GET /channels/alice": bob,
      "POST /me/stream-key": { stream_key: "live_new" },
    });
    renderAt("/dashboard", true);
    fireEvent.click(await screen.findByRole("button", { name: "Rotate key…" }));
    expect(calls).not.toContain("POST /me/stream-key");
    fireEvent.click(screen.getByRole("button", { name: "Make a new key" }));
    expect(((await screen.findByTestId("stream-key")) as HTMLInputElement).value).toBe("live_new");
    expect(calls).toContain("POST /me/stream-key");
  });

  it("saves stream info with tags split on commas", async () => {
    let sent: unknown = null;
    serve({
      "GET /me": { username: "bob" },
      "GET /channels/bob": bob,
      "PATCH /channels/bob": (_u: string, init: RequestInit) => {
        sent = JSON.parse(String(init.body));
        return { status: 200, body: { ...bob, ...(sent as object) } };
      },
    });
    renderAt("/dashboard", true);
    fireEvent.change(await screen.findByLabelText("Title"), { target: { value: "Hello" } });
    fireEvent.change(screen.getByLabelText("Tags"), { target: { value: "a, b,, a" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText("Saved.");
    expect(sent).toMatchObject({ title: "Hello", tags: ["a", "b"] });
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
