import { describe, expect, it } from "vitest";
import { ApiClient, ApiError, CSRF_HEADER, errorFromBody } from "../src/api/client";
import { ServerClock } from "../src/api/clock";
import { fakeTabs, jsonResponse, scriptedFetch, session, testClient, unauthorized, user, type Answer } from "./helpers";

function setup(answers: Array<Answer | ((c: never) => Answer)>, now = 1_000_000) {
  const f = scriptedFetch(answers as Answer[]);
  const timers: Array<{ fn: () => void; ms: number }> = [];
  let clock = now;
  const client = testClient(f.fetch, {
    now: () => clock,
    setTimer: (fn, ms) => {
      timers.push({ fn, ms });
      return timers.length;
    },
    clearTimer: () => undefined,
  });
  return {
    client,
    calls: f.calls,
    timers,
    setNow: (t: number) => {
      clock = t;
    },
  };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("errors", () => {
  it("reads the API's one error shape", () => {
    const e = errorFromBody(409, { error: { code: "username_taken", message: "that username is already taken" } });
    expect(e).toBeInstanceOf(ApiError);
    expect([e.status, e.code, e.message]).toEqual([409, "username_taken", "that username is already taken"]);
  });

  it("gives anything else a generic message with the status, guessing nothing", () => {
    for (const body of [null, undefined, "oops", { detail: "guess me" }, { error: "guess me" }, { error: {} }]) {
      const e = errorFromBody(502, body);
      expect([e.code, e.message]).toEqual(["http_502", "Request failed (502)"]);
    }
  });

  it("throws ApiError with the server's message", async () => {
    const { client } = setup([{ status: 401, body: { error: { code: "invalid_credentials", message: "Wrong password" } } }]);
    await expect(client.login("a", "b")).rejects.toMatchObject({ status: 401, message: "Wrong password" });
    expect(client.session).toBeNull();
  });
});

describe("sign in and out", () => {
  it("keeps the access token in memory only and sends it as the bearer token", async () => {
    localStorage.clear();
    const { client, calls } = setup([{ status: 200, body: session(1) }, { status: 200, body: user() }]);
    await client.login("alice", "pw");
    expect(client.session).toMatchObject({ accessToken: "access-1", user: { username: "alice" } });
    await client.reloadMe();
    expect(calls[0]).toMatchObject({ url: "/api/v1/auth/login", body: { username: "alice", password: "pw" } });
    expect(calls[0]?.headers.Authorization).toBeUndefined();
    expect(calls[1]?.headers.Authorization).toBe("Bearer access-1");
    expect(localStorage.length).toBe(0);
    expect(sessionStorage.length).toBe(0);
  });

  it("register signs in with the session it answers", async () => {
    const { client, calls } = setup([{ status: 201, body: session(3, 900, user("nia")) }]);
    await client.register("nia", "nia@example.com", "pw123456");
    expect(calls).toHaveLength(1);
    expect(calls[0]?.body).toEqual({ username: "nia", email: "nia@example.com", password: "pw123456" });
    expect(client.session?.user.username).toBe("nia");
  });

  it("logout sends the CSRF header and the bearer token, no refresh token, and tells other tabs", async () => {
    const tabs = fakeTabs();
    const f = scriptedFetch([{ status: 200, body: session(1) }, { status: 204 }]);
    const client = testClient(f.fetch, { tabs: tabs.bus });
    const stop = client.watchOtherTabs();
    await client.login("a", "b");
    await client.logout();
    expect(client.session).toBeNull();
    expect(f.calls[1]).toMatchObject({ method: "POST", url: "/api/v1/auth/logout", body: undefined });
    expect(f.calls[1]?.headers[CSRF_HEADER]).toBe("1");
    expect(f.calls[1]?.headers.Authorization).toBe("Bearer access-1");
    expect(f.calls[1]?.credentials).toBe("same-origin");
    expect(tabs.posted).toEqual(["signed-in", "signed-out"]);
    stop();
  });

  it("logout forgets the session even when the server is unreachable", async () => {
    const { client } = setup([{ status: 200, body: session(1) }]);
    await client.login("a", "b");
    await client.logout(); // the scripted fetch throws: no answer left
    expect(client.session).toBeNull();
  });
});

describe("restoring the session on load", () => {
  it("calls refresh once with the CSRF header and no body, and is signed in again", async () => {
    const { client, calls } = setup([{ status: 200, body: session(5) }]);
    expect(client.snapshot()).toEqual({ session: null, restored: false });
    await Promise.all([client.restore(), client.restore()]);
    await client.restore();
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ method: "POST", url: "/api/v1/auth/refresh", body: undefined });
    expect(calls[0]?.headers[CSRF_HEADER]).toBe("1");
    expect(calls[0]?.headers.Authorization).toBeUndefined();
    expect(client.snapshot()).toMatchObject({ restored: true, session: { accessToken: "access-5" } });
  });

  it("leaves an anonymous visitor signed out, quietly", async () => {
    const { client, timers } = setup([unauthorized]);
    await expect(client.restore()).resolves.toBeNull();
    expect(client.snapshot()).toEqual({ session: null, restored: true });
    expect(timers).toHaveLength(0); // no retry loop
  });

  it("counts as restored (signed out) when the server cannot be reached", async () => {
    const { client } = setup([]);
    await expect(client.restore()).resolves.toBeNull();
    expect(client.snapshot().restored).toBe(true);
  });
});

describe("other tabs", () => {
  it("signs out when another tab signs out, and in (from the cookie) when one signs in", async () => {
    const tabs = fakeTabs();
    const a = scriptedFetch([{ status: 200, body: session(1) }, { status: 204 }]);
    const b = scriptedFetch([{ status: 200, body: session(2) }]);
    const first = testClient(a.fetch, { tabs: tabs.bus });
    const second = testClient(b.fetch, { tabs: tabs.bus });
    const stops = [first.watchOtherTabs(), second.watchOtherTabs()];
    await first.login("a", "b");
    await tick();
    expect(b.calls[0]?.url).toBe("/api/v1/auth/refresh");
    expect(second.session?.accessToken).toBe("access-2");
    await first.logout();
    expect(second.session).toBeNull();
    expect(b.calls).toHaveLength(1); // signing out there needs no request here
    expect(JSON.stringify(tabs.posted)).not.toContain("access");
    stops.forEach((stop) => stop());
  });
});

describe("silent refresh", () => {
  it("refreshes once on 401 and retries the request with the new token", async () => {
    const { client, calls } = setup([
      { status: 200, body: session(1) },
      { status: 401, body: { error: { code: "invalid_token", message: "expired" } } },
      { status: 200, body: session(2) },
      { status: 200, body: user() },
    ]);
    await client.login("a", "b");
    await expect(client.reloadMe()).resolves.toMatchObject({ username: "alice" });
    expect(calls[2]).toMatchObject({ url: "/api/v1/auth/refresh", body: undefined });
    expect(calls[2]?.headers[CSRF_HEADER]).toBe("1");
    expect(calls[3]?.headers.Authorization).toBe("Bearer access-2");
  });

  it("does not loop when the retried request is 401 again", async () => {
    const { client, calls } = setup([
      { status: 200, body: session(1) },
      unauthorized,
      { status: 200, body: session(2) },
      unauthorized,
    ]);
    await client.login("a", "b");
    await expect(client.reloadMe()).rejects.toMatchObject({ status: 401 });
    expect(calls).toHaveLength(4);
  });

  it("signs out when the refresh is refused", async () => {
    const { client } = setup([{ status: 200, body: session(1) }, unauthorized, unauthorized]);
    const seen: Array<unknown> = [];
    client.subscribe(() => seen.push(client.session));
    await client.login("a", "b");
    await expect(client.reloadMe()).rejects.toMatchObject({ status: 401 });
    expect(client.session).toBeNull();
    expect(seen.at(-1)).toBeNull();
  });

  it("shares one refresh between concurrent 401s", async () => {
    const { client, calls } = setup([
      { status: 200, body: session(1) },
      unauthorized,
      unauthorized,
      { status: 200, body: session(2) },
      { status: 200, body: { channels: [] } },
      { status: 200, body: { channels: [] } },
    ]);
    await client.login("a", "b");
    await Promise.all([client.streamKey(), client.streamKey()]);
    expect(calls.filter((c) => c.url.endsWith("/auth/refresh"))).toHaveLength(1);
  });

  it("schedules a refresh before expiry and refreshes when the timer fires", async () => {
    const { client, timers, calls } = setup([
      { status: 200, body: session(1, 900) },
      { status: 200, body: session(2, 900) },
    ]);
    await client.login("a", "b");
    expect(timers.at(-1)?.ms).toBe(840_000);
    timers.at(-1)?.fn();
    await tick();
    await tick();
    expect(calls[1]?.url).toBe("/api/v1/auth/refresh");
    expect(client.session?.accessToken).toBe("access-2");
  });

  it("refreshes first when the access token has already expired", async () => {
    const { client, calls, setNow } = setup([
      { status: 200, body: session(1, 60) },
      { status: 200, body: session(2, 60) },
      { status: 200, body: user() },
    ]);
    await client.login("a", "b");
    setNow(1_000_000 + 61_000);
    await client.reloadMe();
    expect(calls.map((c) => c.url)).toEqual(["/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/me"]);
    expect(calls[2]?.headers.Authorization).toBe("Bearer access-2");
  });

  it("keeps a sign-in made while a refused refresh was in flight", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const answers: Array<() => Promise<Response> | Response> = [
      // the refresh is answered only after the sign-in below
      async () => {
        await gate;
        return jsonResponse(unauthorized);
      },
      () => jsonResponse({ status: 200, body: session(2) }),
    ];
    const client = new ApiClient({
      clock: new ServerClock(),
      tabs: null,
      fetch: (async () => answers.shift()!()) as typeof fetch,
      setTimer: () => 0,
      clearTimer: () => undefined,
    });
    const refreshing = client.refresh();
    await client.login("a", "b");
    release();
    await expect(refreshing).resolves.toMatchObject({ accessToken: "access-2" });
    expect(client.session?.accessToken).toBe("access-2");
  });

  it("keeps the session on a network error during refresh", async () => {
    const { client } = setup([
      { status: 200, body: session(1) },
      unauthorized,
      // no more answers: the refresh request throws like a network error
    ]);
    await client.login("a", "b");
    await expect(client.reloadMe()).rejects.toThrow();
    expect(client.session?.accessToken).toBe("access-1");
  });

  it("adopts the session a password change answers, ignoring any refresh token", async () => {
    const { client, calls } = setup([
      { status: 200, body: session(1) },
      { status: 200, body: { ...session(9), refresh_token: "r" } },
      { status: 200, body: user() },
    ]);
    await client.login("a", "b");
    await client.changePassword({ current_password: "old", new_password: "new password" });
    expect(client.session).toMatchObject({ accessToken: "access-9", user: { username: "alice" } });
    expect(JSON.stringify(client.session)).not.toContain('"r"');
    await client.reloadMe();
    expect(calls[2]?.headers.Authorization).toBe("Bearer access-9");
  });
});

describe("server clock", () => {
  it("records the Date header of responses", async () => {
    const serverTime = Date.UTC(2030, 0, 1, 0, 0, 10);
    const f = scriptedFetch([
      { status: 200, body: { channels: [] }, headers: { Date: new Date(serverTime).toUTCString() } },
    ]);
    const clock = new ServerClock();
    const client = new ApiClient({ fetch: f.fetch, clock, tabs: null, now: () => serverTime - 60_000 });
    await client.channels();
    expect(clock.offsetMs()).toBe(60_000);
  });

  it("prefers Kitch-Time, to the millisecond, over the Date header", async () => {
    const serverTime = Date.UTC(2030, 0, 1, 0, 0, 10, 250);
    const f = scriptedFetch([
      {
        status: 200,
        body: { channels: [] },
        // a Date header as uvicorn sends it: refreshed once a second, so behind the clock
        headers: { "Kitch-Time": String(serverTime), Date: new Date(serverTime - 1800).toUTCString() },
      },
    ]);
    const clock = new ServerClock();
    const client = new ApiClient({ fetch: f.fetch, clock, tabs: null, now: () => serverTime - 750 });
    await client.channels();
    expect(clock.offsetMs()).toBe(749); // 750 less the header's rounding allowance
    clock.observe(null, new Date(serverTime + 30_000).toUTCString(), serverTime, serverTime);
    expect(clock.offsetMs()).toBe(749); // once Kitch-Time is seen, Date headers are ignored
  });
});

describe("community routes", () => {
  it("follows, lists and marks notifications, and pages chat history", async () => {
    const { client, calls } = setup([
      { status: 200, body: { following: true, follower_count: 1 } },
      { status: 200, body: { following: false, follower_count: 0 } },
      { status: 200, body: { notifications: [], unread: 0 } },
      { status: 200, body: {} },
      { status: 200, body: { messages: [] } },
      { status: 200, body: { messages: [] } },
    ]);
    expect(await client.follow("a b", true)).toEqual({ following: true, follower_count: 1 });
    await client.follow("a b", false);
    await client.notifications();
    await client.markNotificationsRead({ ids: [3, 4] });
    await client.chatHistory("alice", 120, 50);
    await client.chatHistory("alice");
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      "PUT /api/v1/channels/a%20b/follow",
      "DELETE /api/v1/channels/a%20b/follow",
      "GET /api/v1/me/notifications",
      "POST /api/v1/me/notifications/read",
      "GET /api/v1/channels/alice/chat?before=120&limit=50",
      "GET /api/v1/channels/alice/chat",
    ]);
    expect(calls[3]!.body).toEqual({ ids: [3, 4] });
  });
});
