import { ApiClient, type ApiClientOptions, type TabBus, type TabMessage } from "../src/api/client";
import { ServerClock } from "../src/api/clock";
import type { Channel, ChannelHealth, HealthRendition, PrivateUser, SessionAnswer } from "../src/api/types";

/** A scripted fetch: each call takes the next answer; calls are recorded for assertions. */
export interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: unknown;
  credentials: RequestCredentials | undefined;
}

export type Answer = { status: number; body?: unknown; headers?: Record<string, string> };

export function recordCall(input: RequestInfo | URL, init?: RequestInit): Call {
  const headers = (init?.headers ?? {}) as Record<string, string>;
  let body: unknown = init?.body;
  if (typeof body === "string") body = JSON.parse(body);
  return { url: String(input), method: init?.method ?? "GET", headers, body, credentials: init?.credentials };
}

export function jsonResponse(a: Answer): Response {
  const text = a.body === undefined ? null : JSON.stringify(a.body);
  return new Response(a.status === 204 ? null : text, {
    status: a.status,
    headers: { "Content-Type": "application/json", ...(a.headers ?? {}) },
  });
}

export function scriptedFetch(answers: Array<Answer | ((call: Call) => Answer)>) {
  const calls: Call[] = [];
  const impl = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const call = recordCall(input, init);
    calls.push(call);
    const next = answers.shift();
    if (!next) throw new TypeError(`unexpected request ${call.method} ${call.url}`);
    return jsonResponse(typeof next === "function" ? next(call) : next);
  };
  return { fetch: impl as typeof fetch, calls };
}

export function user(username = "alice", id = 1): PrivateUser {
  return {
    id,
    username,
    display_name: username[0]!.toUpperCase() + username.slice(1),
    bio: "",
    avatar_url: null,
    created_at: "2026-01-01T00:00:00.000Z",
    email: `${username}@example.com`,
    is_admin: false,
  };
}

/** A login/register/refresh answer with access token `access-n` (the refresh token is a cookie). */
export function session(n: number, expiresIn = 900, who: PrivateUser = user()): SessionAnswer {
  return { access_token: `access-${n}`, token_type: "bearer", expires_in: expiresIn, user: who };
}

export const unauthorized = {
  status: 401,
  body: { error: { code: "invalid_token", message: "the refresh token is invalid or expired" } },
};

/** A bus between fake tabs: what one posts, the others receive. */
export function fakeTabs() {
  const open = new Set<(m: TabMessage) => void>();
  const posted: TabMessage[] = [];
  const bus = (): TabBus => {
    const mine = new Set<(m: TabMessage) => void>();
    return {
      post(m) {
        posted.push(m);
        for (const h of open) if (!mine.has(h)) h(m);
      },
      listen(h) {
        mine.add(h);
        open.add(h);
        return () => {
          mine.delete(h);
          open.delete(h);
        };
      },
      close() {
        for (const h of mine) open.delete(h);
      },
    };
  };
  return { bus, posted };
}

export function testClient(fetchImpl: typeof fetch, options: ApiClientOptions = {}): ApiClient {
  return new ApiClient({ fetch: fetchImpl, clock: new ServerClock(), tabs: null, ...options });
}

/** A rendition in a health answer (the source has no encode speed). */
export function rendition(name: string, extra: Partial<HealthRendition> = {}): HealthRendition {
  return {
    name,
    width: 1280,
    height: 720,
    bitrate_kbps: 2900,
    fps: 30,
    encode_speed: name === "source" ? null : 1.5,
    dropped_frames: 0,
    restarts: 0,
    cpu_seconds: 10,
    bytes_held: 1000,
    window_bytes: 800,
    error: null,
    ...extra,
  };
}

/** A health answer of a live channel running its ladder. */
export function liveHealth(extra: Partial<ChannelHealth> = {}, renditions = [rendition("source"), rendition("720p")]): ChannelHealth {
  return {
    live: true,
    since: "2026-01-31T12:00:00.000Z",
    ingest: {
      bitrate_kbps: 4500,
      fps: 30,
      keyframe_interval: 2,
      av_drift_ms: 5,
      width: 1920,
      height: 1080,
      video_codec: "h264",
      audio_codec: "aac",
    },
    ladder: { state: "running", reason: null, decode_cpu_seconds: 3, dropped_packets: 0, decoder_restarts: 0 },
    renditions,
    ...extra,
  };
}

export type Reply = { status: number; body?: unknown };
type Handler = (call: Call) => Reply | Promise<Reply>;

/**
 * A fake server for the app's client: routes by "METHOD path" (path without /api/v1; unknown
 * ones answer 404) and records every request with its headers. Signed in means the start-up
 * refresh (from the cookie) answers a session for `me`.
 */
export function serve(routes: Record<string, unknown>, signedIn = false, me = user()) {
  const calls: Call[] = [];
  const table: Record<string, unknown> = {
    "POST /auth/refresh": signedIn ? session(1, 900, me) : () => unauthorized,
    ...routes,
  };
  const fetchImpl = async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const call = recordCall(String(input).replace(/^\/api\/v1/, ""), init);
    calls.push(call);
    const route = table[`${call.method} ${call.url}`];
    let answer: Reply;
    if (route === undefined) answer = { status: 404, body: { error: { code: "not_found", message: "nope" } } };
    else if (typeof route === "function") answer = await (route as Handler)(call);
    else answer = { status: 200, body: route };
    return jsonResponse(answer);
  };
  const client = testClient(fetchImpl as typeof fetch);
  /** The requests sent as "METHOD path". */
  const sent = () => calls.map((c) => `${c.method} ${c.url}`);
  const find = (key: string) => calls.find((c) => `${c.method} ${c.url}` === key);
  return { client, calls, sent, find };
}

export type Server = ReturnType<typeof serve>;

export function channel(name: string, extra: Partial<Channel> = {}): Channel {
  return {
    name,
    display_name: name[0]!.toUpperCase() + name.slice(1),
    title: "",
    description: "",
    category: "",
    category_slug: null,
    tags: [],
    live: false,
    last_live_at: null,
    ingest_enabled: true,
    avatar_url: null,
    hls_url: `/hls/${name}/master.m3u8`,
    thumbnail_url: null,
    follower_count: 0,
    ...extra,
  };
}

