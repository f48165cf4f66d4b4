/**
 * The JSON API client: one per app, handed to every page through React context (`useApi`).
 *
 * The access token lives in memory only. The refresh token is the server's HttpOnly
 * `kitch_refresh` cookie, which page scripts can neither read nor send by hand: refresh and
 * logout send the `X-Kitch-CSRF: 1` header that a cookie-authenticated call needs, and on load
 * the app calls refresh once (`restore`) so a reloaded tab stays signed in. Access tokens are
 * refreshed shortly before they expire (see `refreshDelayMs`) and, once, when a request answers
 * 401; refreshes are single-flight. Signing out in one tab signs out the others (a
 * BroadcastChannel message that carries no secret).
 */
import { ServerClock, serverClock } from "./clock";
import type { ChatHistory, FollowState, MarkRead, NotificationList } from "./community";
import { refreshDelayMs, sessionFrom, type Session } from "./session";
import type {
  AnalyticsList,
  AnswerOf,
  ApiErrorBody,
  BodyOf,
  BroadcastAnalytics,
  CategoryList,
  CategoryPage,
  Channel,
  ChannelHealth,
  ChannelList,
  ChannelSchedule,
  ChatAudit,
  ChatBans,
  IngestState,
  PrivateUser,
  ScheduledStream,
  SearchResults,
  ServerInfo,
  SessionAnswer,
  StreamKey,
  TagPage,
  UpcomingSchedule,
} from "./types";

/** The header the server wants on refresh and logout when the refresh token is the cookie. */
export const CSRF_HEADER = "X-Kitch-CSRF";

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** The API's one error shape, `{"error": {"code", "message"}}`; anything else (a proxy's HTML
 * page, an empty body) becomes a generic error with the status. */
export function errorFromBody(status: number, body: unknown): ApiError {
  const error = (body as Partial<ApiErrorBody> | null)?.error;
  if (typeof error?.code === "string" && typeof error.message === "string") {
    return new ApiError(status, error.code, error.message);
  }
  return new ApiError(status, `http_${status}`, `Request failed (${status})`);
}

/** Paging of the discovery lists: `limit` 1-50 (default 20), `offset`, `live` only. */
export interface PageOptions {
  limit?: number;
  offset?: number;
  live?: boolean;
  signal?: AbortSignal;
}

function pageQuery(options: PageOptions, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams(extra);
  if (options.limit !== undefined) q.set("limit", String(options.limit));
  if (options.offset) q.set("offset", String(options.offset));
  if (options.live) q.set("live", "true");
  const text = q.toString();
  return text ? `?${text}` : "";
}

export interface RequestOptions {
  /** JSON-serialisable body, or a Blob/File sent as-is with its own type. */
  body?: unknown;
  /** Send the bearer token (default true when signed in). */
  auth?: boolean;
  /** Abort signal: aborting cancels the request (the promise rejects with an AbortError). */
  signal?: AbortSignal;
}

/** What other tabs are told: only that someone signed in or out, never a token. */
export type TabMessage = "signed-in" | "signed-out";

/** A message bus between the tabs of one origin (a BroadcastChannel in browsers). */
export interface TabBus {
  post(message: TabMessage): void;
  listen(handler: (message: TabMessage) => void): () => void;
  close(): void;
}

export function broadcastChannelBus(name = "kitch.auth"): TabBus | null {
  if (typeof BroadcastChannel === "undefined") return null;
  const channel = new BroadcastChannel(name);
  return {
    post: (message) => channel.postMessage(message),
    listen(handler) {
      const onMessage = (e: MessageEvent): void => {
        if (e.data === "signed-in" || e.data === "signed-out") handler(e.data);
      };
      channel.addEventListener("message", onMessage);
      return () => channel.removeEventListener("message", onMessage);
    },
    close: () => channel.close(),
  };
}

/** The client's auth state: `restored` turns true once the start-up refresh has answered. */
export interface AuthSnapshot {
  session: Session | null;
  restored: boolean;
}

export interface ApiClientOptions {
  /** Default "/api/v1". */
  base?: string;
  /** Default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Client clock in epoch ms; default Date.now. */
  now?: () => number;
  /** Where Date headers are recorded; default the shared `serverClock`. */
  clock?: ServerClock;
  /** Default window.setTimeout / clearTimeout. */
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** Opens the bus to other tabs (default a BroadcastChannel; null: no other tabs). */
  tabs?: (() => TabBus | null) | null;
}

export class ApiClient {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly clock: ServerClock;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private readonly openTabs: () => TabBus | null;
  private tabs: TabBus | null = null;
  private state: AuthSnapshot = { session: null, restored: false };
  /** Bumped on every sign-in/out, so an answer to an older refresh cannot undo it. */
  private generation = 0;
  private refreshing: Promise<Session | null> | null = null;
  private restoring: Promise<Session | null> | null = null;
  private timer: unknown = null;
  private readonly listeners = new Set<() => void>();

  constructor(options: ApiClientOptions = {}) {
    this.base = options.base ?? "/api/v1";
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.now = options.now ?? (() => Date.now());
    this.clock = options.clock ?? serverClock;
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer =
      options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
    const tabs = options.tabs === undefined ? broadcastChannelBus : options.tabs;
    this.openTabs = tabs ?? (() => null);
  }

  get session(): Session | null {
    return this.state.session;
  }

  /** The current state (a new object after each change: fit for useSyncExternalStore). */
  snapshot = (): AuthSnapshot => this.state;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  private update(change: Partial<AuthSnapshot>): void {
    this.state = { ...this.state, ...change };
    for (const l of this.listeners) l();
  }

  private setSession(session: Session | null): void {
    this.generation += 1;
    this.update({ session });
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== null) {
      this.clearTimer(this.timer);
      this.timer = null;
    }
    const s = this.session;
    if (!s) return;
    // Browsers clamp timers above 2^31-1 ms; long-lived tokens are re-checked daily.
    const delay = Math.min(refreshDelayMs(s, this.now()), 86_400_000);
    this.timer = this.setTimer(() => {
      this.timer = null;
      void this.refresh().catch(() => undefined);
    }, delay);
  }

  private scheduleRetry(): void {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = this.setTimer(() => {
      this.timer = null;
      void this.refresh().catch(() => undefined);
    }, 10_000);
  }

  private accept(answer: SessionAnswer): Session {
    const s = sessionFrom(answer, this.now());
    this.setSession(s);
    return s;
  }

  /**
   * Sign in again from the refresh cookie, once per page load. A visitor without a session gets
   * a 401 and stays signed out (no error); `restored` turns true either way.
   */
  restore(): Promise<Session | null> {
    this.restoring ??= this.refresh()
      .catch(() => null)
      .finally(() => this.update({ restored: true }));
    return this.restoring;
  }

  /**
   * Exchange the refresh cookie for a new access token. Single-flight; resolves to null (and
   * signs out) when the server refuses; rejects on network and server errors, keeping the session.
   */
  refresh(): Promise<Session | null> {
    if (this.refreshing) return this.refreshing;
    const run = async (): Promise<Session | null> => {
      const generation = this.generation;
      let res: Response;
      try {
        res = await this.send("POST", "/auth/refresh", { csrf: true });
      } catch (e) {
        if (this.session) this.scheduleRetry();
        throw e;
      }
      const body = await readBody(res);
      // Signed in or out while this refresh was in flight: that newer state wins.
      if (generation !== this.generation) return this.session;
      if (res.ok) return this.accept(body as SessionAnswer);
      if (res.status === 400 || res.status === 401 || res.status === 403) {
        if (this.session) this.setSession(null);
        return null;
      }
      if (this.session) this.scheduleRetry();
      throw errorFromBody(res.status, body);
    };
    this.refreshing = run().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async send(
    method: string,
    path: string,
    { body, token, signal, csrf }: { body?: unknown; token?: string; signal?: AbortSignal; csrf?: boolean },
  ): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json" };
    let payload: BodyInit | undefined;
    if (body instanceof Blob) {
      payload = body;
      headers["Content-Type"] = body.type || "application/octet-stream";
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    if (token) headers.Authorization = `Bearer ${token}`;
    if (csrf) headers[CSRF_HEADER] = "1";
    const sentAt = this.now();
    const res = await this.fetchImpl(this.base + path, {
      method,
      headers,
      body: payload,
      signal,
      credentials: "same-origin",
    });
    this.clock.observe(res.headers.get("Kitch-Time"), res.headers.get("Date"), sentAt, this.now());
    return res;
  }

  /** Perform a request and return its parsed JSON body (undefined for an empty body). */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const { body, signal } = options;
    let session = (options.auth ?? true) ? this.session : null;
    if (session && this.now() >= session.expiresAt) {
      session = await this.refresh().catch(() => session);
    }
    let res = await this.send(method, path, { body, signal, token: session?.accessToken });
    if (res.status === 401 && session) {
      const renewed = await this.refresh();
      if (renewed) res = await this.send(method, path, { body, signal, token: renewed.accessToken });
    }
    const answer = await readBody(res);
    if (!res.ok) throw errorFromBody(res.status, answer);
    return answer as T;
  }

  // ---- sign in and out ----

  async login(username: string, password: string): Promise<Session> {
    const body: BodyOf<"login"> = { username, password };
    const answer = await this.request<AnswerOf<"login">>("POST", "/auth/login", { body, auth: false });
    const s = this.accept(answer);
    this.tabs?.post("signed-in");
    return s;
  }

  async register(username: string, email: string, password: string): Promise<Session> {
    const body: BodyOf<"register"> = { username, email, password };
    const answer = await this.request<AnswerOf<"register">>("POST", "/auth/register", {
      body,
      auth: false,
    });
    const s = this.accept(answer);
    this.tabs?.post("signed-in");
    return s;
  }

  /** Sign out here, on the server (revoking the cookie's session) and in other tabs; never throws. */
  async logout(): Promise<void> {
    const token = this.session?.accessToken;
    this.setSession(null);
    try {
      await this.send("POST", "/auth/logout", { token, csrf: true });
    } catch {
      // offline: the local session is gone, which is what the user asked for
    }
    this.tabs?.post("signed-out");
  }

  /** Forget the session here and in other tabs without telling the server (account deleted). */
  forget(): void {
    this.setSession(null);
    this.tabs?.post("signed-out");
  }

  /**
   * Follow other tabs: one signing out signs this one out, one signing in signs this one in
   * (from the shared cookie). Returns the function that stops listening.
   */
  watchOtherTabs(): () => void {
    const tabs = this.openTabs();
    if (!tabs) return () => undefined;
    this.tabs = tabs;
    const stop = tabs.listen((message) => {
      if (message === "signed-out" && this.session) this.setSession(null);
      if (message === "signed-in" && !this.session) void this.refresh().catch(() => undefined);
    });
    return () => {
      stop();
      tabs.close();
      if (this.tabs === tabs) this.tabs = null;
    };
  }

  // ---- the API's operations, typed from the OpenAPI document ----

  channels(signal?: AbortSignal): Promise<ChannelList> {
    return this.request("GET", "/channels", { auth: false, signal });
  }

  channel(name: string, signal?: AbortSignal): Promise<Channel> {
    return this.request("GET", `/channels/${encodeURIComponent(name)}`, { signal });
  }

  patchChannel(name: string, body: BodyOf<"patch_channel">): Promise<Channel> {
    return this.request("PATCH", `/channels/${encodeURIComponent(name)}`, { body });
  }

  /** Every category, the most watched first. */
  categories(signal?: AbortSignal): Promise<CategoryList> {
    return this.request("GET", "/categories", { auth: false, signal });
  }

  /** A category and a page of its channels (live first, the most watched first). */
  category(slug: string, options: PageOptions = {}): Promise<CategoryPage> {
    const path = `/categories/${encodeURIComponent(slug)}${pageQuery(options)}`;
    return this.request("GET", path, { auth: false, signal: options.signal });
  }

  /** A page of the channels that carry `tag` (matched ignoring case). */
  tagChannels(tag: string, options: PageOptions = {}): Promise<TagPage> {
    const path = `/tags/${encodeURIComponent(tag)}${pageQuery(options)}`;
    return this.request("GET", path, { auth: false, signal: options.signal });
  }

  /** Channels and categories matching `q` (every word, whole or as a word's start). */
  search(q: string, options: PageOptions = {}): Promise<SearchResults> {
    const path = `/search${pageQuery(options, { q })}`;
    return this.request("GET", path, { auth: false, signal: options.signal });
  }

  /** A channel's stream health (its owner or an admin); `{live: false}` while not live. */
  channelHealth(name: string, signal?: AbortSignal): Promise<ChannelHealth> {
    return this.request("GET", `/channels/${encodeURIComponent(name)}/health`, { signal });
  }

  /** Reload the signed-in user's profile into the session. */
  async reloadMe(): Promise<PrivateUser> {
    return this.keepUser(await this.request<AnswerOf<"get_me">>("GET", "/me"));
  }

  async patchMe(body: BodyOf<"patch_me">): Promise<PrivateUser> {
    return this.keepUser(await this.request<AnswerOf<"patch_me">>("PATCH", "/me", { body }));
  }

  private keepUser(user: PrivateUser): PrivateUser {
    const s = this.session;
    if (s && s.user.id === user.id) this.update({ session: { ...s, user } });
    return user;
  }

  /**
   * Change the password: the server signs out every session and starts a new one for this tab
   * (its refresh token as the cookie), answered like a sign-in.
   */
  async changePassword(body: BodyOf<"change_password">): Promise<void> {
    this.accept(await this.request<AnswerOf<"change_password">>("POST", "/me/password", { body }));
  }

  async deleteMe(password: string): Promise<void> {
    const body: BodyOf<"delete_me"> = { password };
    await this.request("DELETE", "/me", { body });
  }

  async putAvatar(image: Blob): Promise<void> {
    await this.request<AnswerOf<"put_avatar">>("PUT", "/me/avatar", { body: image });
    await this.reloadMe();
  }

  /** Show the stream key, or with `rotate` replace it. */
  streamKey(rotate = false, signal?: AbortSignal): Promise<StreamKey> {
    return this.request(rotate ? "POST" : "GET", "/me/stream-key", { signal });
  }

  /** End the broadcast and hold the key off (false), or accept the key again (true). */
  setIngest(enabled: boolean): Promise<IngestState> {
    return this.request("POST", enabled ? "/me/broadcast/enable" : "/me/broadcast/end");
  }

  // ---- community (hand-written types from ./community until the OpenAPI document has them) ----

  /** Follow a channel (true) or stop following it (false). */
  follow(name: string, following: boolean): Promise<FollowState> {
    return this.request(following ? "PUT" : "DELETE", `/channels/${encodeURIComponent(name)}/follow`);
  }

  notifications(signal?: AbortSignal): Promise<NotificationList> {
    return this.request("GET", "/me/notifications", { signal });
  }

  markNotificationsRead(which: MarkRead): Promise<unknown> {
    return this.request("POST", "/me/notifications/read", { body: which });
  }

  /** Older chat messages, before message `before` (newest last). */
  chatHistory(name: string, before?: number, limit?: number, signal?: AbortSignal): Promise<ChatHistory> {
    const q = new URLSearchParams();
    if (before !== undefined) q.set("before", String(before));
    if (limit !== undefined) q.set("limit", String(limit));
    const query = q.size ? `?${q.toString()}` : "";
    return this.request("GET", `/channels/${encodeURIComponent(name)}/chat${query}`, { signal });
  }

  /** The channel's running bans and timeouts (its broadcaster and moderators only). */
  chatBans(name: string, signal?: AbortSignal): Promise<ChatBans> {
    return this.request<AnswerOf<"chat_bans">>("GET", `/channels/${encodeURIComponent(name)}/chat/bans`, { signal });
  }

  /** The channel's moderation log, newest first, before entry `before` (broadcaster and moderators). */
  chatAudit(name: string, before?: number, limit?: number, signal?: AbortSignal): Promise<ChatAudit> {
    const q = new URLSearchParams();
    if (before !== undefined) q.set("before", String(before));
    if (limit !== undefined) q.set("limit", String(limit));
    const query = q.size ? `?${q.toString()}` : "";
    return this.request<AnswerOf<"chat_audit">>("GET", `/channels/${encodeURIComponent(name)}/chat/audit${query}`, {
      signal,
    });
  }

  serverInfo(signal?: AbortSignal): Promise<ServerInfo> {
    return this.request("GET", "/server-info", { auth: false, signal });
  }

  // ---- scheduled streams and analytics ----

  /** A channel's scheduled streams that have not ended, soonest first. */
  channelSchedule(name: string, signal?: AbortSignal): Promise<ChannelSchedule> {
    return this.request("GET", `/channels/${encodeURIComponent(name)}/schedule`, { auth: false, signal });
  }

  createSchedule(name: string, body: BodyOf<"create_schedule">): Promise<ScheduledStream> {
    return this.request("POST", `/channels/${encodeURIComponent(name)}/schedule`, { body });
  }

  patchSchedule(name: string, id: number, body: BodyOf<"patch_schedule">): Promise<ScheduledStream> {
    return this.request("PATCH", `/channels/${encodeURIComponent(name)}/schedule/${id}`, { body });
  }

  cancelSchedule(name: string, id: number): Promise<ScheduledStream> {
    return this.request("DELETE", `/channels/${encodeURIComponent(name)}/schedule/${id}`);
  }

  /** Every channel's scheduled streams, soonest first; pass the page's `next_cursor` for more. */
  upcoming(limit = 20, cursor?: string, signal?: AbortSignal): Promise<UpcomingSchedule> {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cursor) q.set("cursor", cursor);
    return this.request("GET", `/schedule/upcoming?${q.toString()}`, { auth: false, signal });
  }

  /** The signed-in streamer's last broadcasts with their figures. */
  analytics(limit = 20, signal?: AbortSignal): Promise<AnalyticsList> {
    return this.request("GET", `/me/analytics?limit=${limit}`, { signal });
  }

  broadcastAnalytics(id: number, signal?: AbortSignal): Promise<BroadcastAnalytics> {
    return this.request("GET", `/me/analytics/${id}`, { signal });
  }
}

async function readBody(res: Response): Promise<unknown> {
  if (res.status === 204) return undefined;
  const text = await res.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    if (res.ok) throw new ApiError(502, "bad_response", "The server answered something that is not JSON");
    return undefined;
  }
}
