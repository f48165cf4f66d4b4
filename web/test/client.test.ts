import { describe, expect, it } from "vitest";
import { ApiClient, ApiError, errorFromBody } from "../src/api/client";
import { ServerClock } from "../src/api/clock";
import { loadSession, saveSession, sessionFromTokens } from "../src/api/session";
import { memoryStorage, scriptedFetch, tokens, type Answer } from "./helpers";

function setup(answers: Answer[] | Array<Answer | ((c: never) => Answer)>, now = 1_000_000) {
  const storage = memoryStorage();
  const f = scriptedFetch(answers as Answer[]);
  const timers: Array<{ fn: () => void; ms: number }> = [];
  let clock = now;
  const client = new ApiClient({
    fetch: f.fetch,
    storage,
    now: () => clock,
    clock: new ServerClock(),
    setTimer: (fn, ms) => {
      timers.push({ fn, ms });
      return timers.length;
    },
    clearTimer: () => undefined,
  });
  return {
    client,
    storage,
    calls: f.calls,
    timers,
    setNow: (t: number) => {
      clock = t;
    },
  };
}

describe("errors", () => {
  it("reads the API error shape", () => {
    const e = errorFromBody(409, { error: { code: "taken", message: "Username taken" } });
    expect(e).toBeInstanceOf(ApiError);
    expect([e.status, e.code, e.message]).toEqual([409, "taken", "Username taken"]);
    expect(errorFromBody(500, null).message).toMatch(/500/);
  });

  it("throws ApiError with the server's message", async () => {
    const { client } = setup([{ status: 401, body: { error: { code: "bad", message: "Wrong password" } } }]);
    await expect(client.login("a", "b")).rejects.toMatchObject({ status: 401, message: "Wrong password" });
    expect(client.session).toBeNull();
  });
});

describe("sign in and out", () => {
  it("stores the session and sends the bearer token", async () => {
    const { client, storage, calls } = setup([
      { status: 200, body: tokens(1) },
      { status: 200, body: { username: "alice" } },
    ]);
    await client.login("alice", "pw");
    expect(loadSession(storage)?.accessToken).toBe("access-1");
    await client.get("/me");
    expect(calls[0]?.body).toEqual({ username: "alice", password: "pw" });
    expect(calls[0]?.headers.Authorization).toBeUndefined();
    expect(calls[1]?.headers.Authorization).toBe("Bearer access-1");
  });

  it("register signs in when the server answers only the account", async () => {
    const { client, calls } = setup([
      { status: 201, body: { username: "alice" } },
      { status: 200, body: tokens(2) },
    ]);
    await client.register("alice", "a@example.com", "pw123456");
    expect(calls.map((c) => c.url)).toEqual(["/api/v1/auth/register", "/api/v1/auth/login"]);
    expect(client.session?.accessToken).toBe("access-2");
  });

  it("register keeps the pair when the server answers one", async () => {
    const { client, calls } = setup([{ status: 201, body: tokens(3) }]);
    await client.register("alice", "a@example.com", "pw123456");
    expect(calls).toHaveLength(1);
    expect(client.session?.refreshToken).toBe("refresh-3");
  });

  it("logout forgets the session even when the server is unreachable", async () => {
    const { client, storage } = setup([{ status: 200, body: tokens(1) }]);
    await client.login("a", "b");
    await client.logout(); // the scripted fetch throws: no answer left
    expect(client.session).toBeNull();
    expect(loadSession(storage)).toBeNull();
  });
});

describe("silent refresh", () => {
  it("refreshes once on 401 and retries the request", async () => {
    const { client, calls } = setup([
      { status: 200, body: tokens(1) },
      { status: 401, body: { error: { code: "expired", message: "expired" } } },
      { status: 200, body: tokens(2) },
      { status: 200, body: { ok: true } },
    ]);
    await client.login("a", "b");
    await expect(client.get("/me")).resolves.toEqual({ ok: true });
    expect(calls[2]?.url).toBe("/api/v1/auth/refresh");
    expect(calls[2]?.body).toEqual({ refresh_token: "refresh-1" });
    expect(calls[3]?.headers.Authorization).toBe("Bearer access-2");
  });

  it("does not loop when the retried request is 401 again", async () => {
    const { client, calls } = setup([
      { status: 200, body: tokens(1) },
      { status: 401, body: {} },
      { status: 200, body: tokens(2) },
      { status: 401, body: { error: { code: "nope", message: "still no" } } },
    ]);
    await client.login("a", "b");
    await expect(client.get("/me")).rejects.toMatchObject({ status: 401 });
    expect(calls).toHaveLength(4);
  });

  it("signs out when the refresh token is refused", async () => {
    const { client, storage } = setup([
      { status: 200, body: tokens(1) },
      { status: 401, body: {} },
      { status: 401, body: { error: { code: "invalid_token", message: "no" } } },
    ]);
    const seen: Array<unknown> = [];
    client.subscribe((s) => seen.push(s));
    await client.login("a", "b");
    await expect(client.get("/me")).rejects.toMatchObject({ status: 401 });
    expect(client.session).toBeNull();
    expect(loadSession(storage)).toBeNull();
    expect(seen.at(-1)).toBeNull();
  });

  it("shares one refresh between concurrent 401s", async () => {
    const { client, calls } = setup([
      { status: 200, body: tokens(1) },
      { status: 401, body: {} },
      { status: 401, body: {} },
      { status: 200, body: tokens(2) },
      { status: 200, body: { n: 1 } },
      { status: 200, body: { n: 2 } },
    ]);
    await client.login("a", "b");
    await Promise.all([client.get("/x"), client.get("/y")]);
    expect(calls.filter((c) => c.url.endsWith("/auth/refresh"))).toHaveLength(1);
  });

  it("schedules a refresh before expiry and refreshes when the timer fires", async () => {
    const { client, timers, calls } = setup([
      { status: 200, body: tokens(1, 900) },
      { status: 200, body: tokens(2, 900) },
    ]);
    await client.login("a", "b");
    expect(timers.at(-1)?.ms).toBe(840_000);
    timers.at(-1)?.fn();
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setTimeout(r, 0));
    expect(calls[1]?.url).toBe("/api/v1/auth/refresh");
    expect(client.session?.accessToken).toBe("access-2");
  });

  it("refreshes first when the stored access token has already expired", async () => {
    const { client, calls, setNow } = setup([
      { status: 200, body: tokens(1, 60) },
      { status: 200, body: tokens(2, 60) },
      { status: 200, body: { ok: 1 } },
    ]);
    await client.login("a", "b");
    setNow(1_000_000 + 61_000);
    await client.get("/me");
    expect(calls.map((c) => c.url)).toEqual([
      "/api/v1/auth/login",
      "/api/v1/auth/refresh",
      "/api/v1/me",
    ]);
    expect(calls[2]?.headers.Authorization).toBe("Bearer access-2");
  });

  it("adopts tokens another tab refreshed instead of reusing a rotated refresh token", async () => {
    const { client, storage, calls } = setup([
      { status: 200, body: tokens(1) },
      { status: 401, body: {} },
      { status: 200, body: { ok: true } },
    ]);
    await client.login("a", "b");
    // another tab rotated the pair
    saveSession(storage, sessionFromTokens(tokens(9), 1_000_000));
    await client.get("/me");
    expect(calls.some((c) => c.url.endsWith("/auth/refresh"))).toBe(false);
    expect(calls[2]?.headers.Authorization).toBe("Bearer access-9");
  });

  it("keeps tokens adopted while a refused refresh was in flight", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const storage = memoryStorage();
    const answers: Array<() => Promise<Response> | Response> = [
      () => new Response(JSON.stringify(tokens(1)), { status: 200 }),
      // the refresh is answered only after the password change below
      async () => {
        await gate;
        return new Response(JSON.stringify({ error: { code: "revoked", message: "no" } }), { status: 401 });
      },
    ];
    const client = new ApiClient({
      storage,
      clock: new ServerClock(),
      fetch: (async () => answers.shift()!()) as typeof fetch,
      setTimer: () => 0,
      clearTimer: () => undefined,
    });
    await client.login("a", "b");
    const refreshing = client.refresh();
    client.acceptTokens(tokens(2)); // e.g. the answer to a password change
    release();
    await expect(refreshing).resolves.toMatchObject({ accessToken: "access-2" });
    expect(client.session?.accessToken).toBe("access-2");
    expect(loadSession(storage)?.accessToken).toBe("access-2");
  });

  it("keeps the session on a network error during refresh", async () => {
    const { client } = setup([
      { status: 200, body: tokens(1) },
      { status: 401, body: {} },
      // no more answers: the refresh request throws like a network error
    ]);
    await client.login("a", "b");
    await expect(client.get("/me")).rejects.toThrow();
    expect(client.session?.refreshToken).toBe("refresh-1");
  });
});

describe("server clock", () => {
  it("records the Date header of responses", async () => {
    const storage = memoryStorage();
    const serverTime = Date.UTC(2030, 0, 1, 0, 0, 10);
    const f = scriptedFetch([
      { status: 200, body: {}, headers: { Date: new Date(serverTime).toUTCString() } },
    ]);
    const clock = new ServerClock();
    const client = new ApiClient({ fetch: f.fetch, storage, clock, now: () => serverTime - 60_000 });
    await client.get("/channels", { auth: false });
    expect(clock.offsetMs()).toBe(60_000);
  });
});
