/**
 * The JSON API client: bearer tokens, silent refresh, errors as `ApiError`.
 *
 * Access tokens are refreshed shortly before they expire (see `refreshDelayMs`) and, once, when a
 * request answers 401. Refreshes are single-flight and shared between tabs through localStorage.
 */
import { ServerClock, serverClock } from "./clock";
import {
  isTokenResponse,
  loadSession,
  refreshDelayMs,
  saveSession,
  SESSION_KEY,
  sessionFromTokens,
  type Session,
  type TokenResponse,
} from "./session";

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

/** Turn any response body into an ApiError, reading `{"error": {"code", "message"}}` if present. */
export function errorFromBody(status: number, body: unknown): ApiError {
  if (typeof body === "object" && body !== null && "error" in body) {
    const err = (body as { error: unknown }).error;
    if (typeof err === "object" && err !== null) {
      const e = err as Record<string, unknown>;
      const code = typeof e.code === "string" ? e.code : `http_${status}`;
      const message = typeof e.message === "string" ? e.message : `Request failed (${status})`;
      return new ApiError(status, code, message);
    }
    if (typeof err === "string") return new ApiError(status, `http_${status}`, err);
  }
  if (typeof body === "object" && body !== null && "detail" in body) {
    const d = (body as { detail: unknown }).detail;
    if (typeof d === "string") return new ApiError(status, `http_${status}`, d);
  }
  return new ApiError(status, `http_${status}`, `Request failed (${status})`);
}

export interface RequestOptions {
  /** JSON-serialisable body, or a Blob/File sent as-is with its own type. */
  body?: unknown;
  /** Send the bearer token (default true when signed in). */
  auth?: boolean;
  /** Abort signal. */
  signal?: AbortSignal;
}

type Listener = (session: Session | null) => void;

export interface ApiClientOptions {
  /** Default "/api/v1". */
  base?: string;
  /** Default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Default window.localStorage (or an in-memory store when unavailable). */
  storage?: Storage;
  /** Client clock in epoch ms; default Date.now. */
  now?: () => number;
  /** Where Date headers are recorded; default the shared `serverClock`. */
  clock?: ServerClock;
  /** Default window.setTimeout / clearTimeout. */
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

function memoryStorage(): Storage {
  const map = new Map<string, string>();
  return {
    get length() {
      return map.size;
    },
    clear: () => map.clear(),
    getItem: (k) => map.get(k) ?? null,
    key: (i) => [...map.keys()][i] ?? null,
    removeItem: (k) => void map.delete(k),
    setItem: (k, v) => void map.set(k, String(v)),
  };
}

function defaultStorage(): Storage {
  try {
    if (typeof window !== "undefined" && window.localStorage) return window.localStorage;
  } catch {
    // access denied (sandboxed iframe, privacy mode)
  }
  return memoryStorage();
}

export class ApiClient {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;
  private readonly storage: Storage;
  private readonly now: () => number;
  private readonly clock: ServerClock;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private current: Session | null;
  private refreshing: Promise<Session | null> | null = null;
  private timer: unknown = null;
  private readonly listeners = new Set<Listener>();

  constructor(options: ApiClientOptions = {}) {
    this.base = options.base ?? "/api/v1";
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.storage = options.storage ?? defaultStorage();
    this.now = options.now ?? (() => Date.now());
    this.clock = options.clock ?? serverClock;
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer =
      options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
    this.current = loadSession(this.storage);
    this.schedule();
  }

  get session(): Session | null {
    return this.current;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Adopt a session written by another tab (call from a `storage` event). */
  syncFromStorage(): void {
    const stored = loadSession(this.storage);
    const same =
      stored?.accessToken === this.current?.accessToken &&
      stored?.refreshToken === this.current?.refreshToken;
    if (!same) this.setSession(stored, false);
  }

  private setSession(session: Session | null, persist = true): void {
    this.current = session;
    if (persist) saveSession(this.storage, session);
    this.schedule();
    for (const l of this.listeners) l(session);
  }

  private schedule(): void {
    if (this.timer !== null) {
      this.clearTimer(this.timer);
      this.timer = null;
    }
    const s = this.current;
    if (!s) return;
    const delay = refreshDelayMs(s, this.now());
    // Browsers clamp timers above 2^31-1 ms; long-lived tokens are re-checked daily.
    this.timer = this.setTimer(
      () => {
        this.timer = null;
        void this.refresh().catch(() => undefined);
      },
      Math.min(delay, 86_400_000),
    );
  }

  /** Adopt a token pair answered by login/register/refresh. */
  acceptTokens(tokens: TokenResponse): Session {
    const s = sessionFromTokens(tokens, this.now());
    this.setSession(s);
    return s;
  }

  /**
   * Exchange the refresh token for a new pair. Single-flight; resolves to null (and signs out)
   * when the server refuses the refresh token; rejects on network errors, keeping the session.
   */
  refresh(): Promise<Session | null> {
    if (this.refreshing) return this.refreshing;
    const run = async (): Promise<Session | null> => {
      // Another tab may have refreshed already: use its tokens if they are newer.
      const stored = loadSession(this.storage);
      if (
        stored &&
        this.current &&
        stored.refreshToken !== this.current.refreshToken &&
        refreshDelayMs(stored, this.now()) > 0
      ) {
        this.setSession(stored, false);
        return stored;
      }
      const s = stored ?? this.current;
      if (!s) return null;
      let res: Response;
      try {
        res = await this.send("POST", "/auth/refresh", { refresh_token: s.refreshToken }, null);
      } catch (e) {
        this.scheduleRetry();
        throw e;
      }
      const body = await readBody(res);
      // Signed in again, or given new tokens (password change) while this refresh was in
      // flight: the newer session wins, whatever this answer says.
      if (this.current?.refreshToken !== s.refreshToken) return this.current;
      if (res.ok && isTokenResponse(body)) return this.acceptTokens(body);
      if (res.status === 400 || res.status === 401 || res.status === 403) {
        this.setSession(null);
        return null;
      }
      this.scheduleRetry();
      throw errorFromBody(res.status, body);
    };
    this.refreshing = run().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private scheduleRetry(): void {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = this.setTimer(() => {
      this.timer = null;
      void this.refresh().catch(() => undefined);
    }, 10_000);
  }

  private async send(
    method: string,
    path: string,
    body: unknown,
    token: string | null,
    signal?: AbortSignal,
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
    const sentAt = this.now();
    const res = await this.fetchImpl(this.base + path, {
      method,
      headers,
      body: payload,
      signal,
      credentials: "same-origin",
    });
    this.clock.observe(res.headers.get("Date"), sentAt, this.now());
    return res;
  }

  /** Perform a request and return its parsed JSON body (null for an empty body). */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const useAuth = options.auth ?? true;
    let session = useAuth ? this.current : null;
    if (session && this.now() >= session.expiresAt) {
      session = await this.refresh().catch(() => session);
    }
    let res = await this.send(
      method,
      path,
      options.body,
      session?.accessToken ?? null,
      options.signal,
    );
    if (res.status === 401 && session) {
      const renewed = await this.refresh();
      if (renewed) {
        res = await this.send(method, path, options.body, renewed.accessToken, options.signal);
      }
    }
    const body = await readBody(res);
    if (!res.ok) throw errorFromBody(res.status, body);
    return body as T;
  }

  get<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>("GET", path, options);
  }

  post<T>(path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>("POST", path, { ...options, body });
  }

  patch<T>(path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>("PATCH", path, { ...options, body });
  }

  put<T>(path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>("PUT", path, { ...options, body });
  }

  delete<T>(path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>("DELETE", path, { ...options, body });
  }

  async login(username: string, password: string): Promise<Session> {
    const body = await this.post<unknown>("/auth/login", { username, password }, { auth: false });
    if (!isTokenResponse(body)) throw new ApiError(500, "bad_response", "The server sent no token");
    return this.acceptTokens(body);
  }

  async register(username: string, email: string, password: string): Promise<Session> {
    const body = await this.post<unknown>(
      "/auth/register",
      { username, email, password },
      { auth: false },
    );
    // Register may answer the token pair, or only the new account: then sign in.
    if (isTokenResponse(body)) return this.acceptTokens(body);
    if (typeof body === "object" && body !== null) {
      const b = body as Record<string, unknown>;
      for (const key of ["tokens", "session"]) {
        if (isTokenResponse(b[key])) return this.acceptTokens(b[key]);
      }
    }
    return this.login(username, password);
  }

  /** Sign out here (and on the server when it answers); never throws. */
  async logout(): Promise<void> {
    const s = this.current;
    this.setSession(null);
    if (!s) return;
    try {
      await this.send("POST", "/auth/logout", { refresh_token: s.refreshToken }, s.accessToken);
    } catch {
      // offline: the local session is gone, which is what the user asked for
    }
  }

  /** Forget the session locally without telling the server (e.g. after deleting the account). */
  forget(): void {
    this.setSession(null);
  }

  /** Listen for other tabs signing in, refreshing or signing out. */
  watchOtherTabs(target: Window): () => void {
    const onStorage = (e: StorageEvent): void => {
      if (e.key === SESSION_KEY || e.key === null) this.syncFromStorage();
    };
    target.addEventListener("storage", onStorage);
    return () => target.removeEventListener("storage", onStorage);
  }
}

async function readBody(res: Response): Promise<unknown> {
  if (res.status === 204) return null;
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    if (res.ok) throw new ApiError(502, "bad_response", "The server answered something that is not JSON");
    return { error: { code: `http_${res.status}`, message: text.slice(0, 200) } };
  }
}

export const api = new ApiClient();
