/**
 * A msgpack WebSocket to the server (`/ws/chat/{channel}` or `/ws/events`) that signs itself in
 * and keeps itself open.
 *
 * The access token goes in the first frame (`{"type": "auth", "token"}`), never in the URL, and
 * is sent again on the open socket whenever the API client refreshes it; signing out reconnects
 * anonymously. A dropped connection is reopened after a backoff (1 s doubling to 30 s, with
 * jitter), reset once the server has answered on the new connection.
 *
 * A binary message from the server carries one or more msgpack maps back to back (the chat
 * sends a room's broadcasts of a few milliseconds together); each is handed on in order.
 */
import { decodeMulti, encode } from "@msgpack/msgpack";
import type { ApiClient } from "../api/client";

export type SocketStatus = "connecting" | "open" | "reconnecting" | "closed";

/** The WebSocket members this module uses (a fake in tests). */
export interface SocketLike {
  binaryType: BinaryType;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number): void;
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
}

const OPEN = 1;

export interface LiveSocketOptions<F> {
  /** Path on this origin, e.g. "/ws/chat/alice". */
  path: string;
  client: ApiClient;
  onFrame: (frame: F) => void;
  onStatus?: (status: SocketStatus) => void;
  /** Opens a socket (default `new WebSocket(url)`). */
  open?: (url: string) => SocketLike;
  /** Seconds between keep-alive `{"type": "ping"}` frames (default 30; 0: none). */
  pingSeconds?: number;
  random?: () => number;
  /** Close for good on sign-out instead of reconnecting anonymously (the events socket). */
  signedInOnly?: boolean;
}

/** ws: or wss: URL of `path` on the page's origin. */
export function socketUrl(path: string, location: Pick<Location, "protocol" | "host"> = window.location): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
}

/** The wait before reconnect attempt `attempt` (0-based): 1 s doubling to 30 s, +-20 % jitter. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/**
 * The frames (msgpack maps with a string `type`) of one binary message, in order. Values that
 * are not such maps are skipped; bytes that are not msgpack end the message (what came before
 * them is kept).
 */
export function framesOf(data: Uint8Array): Array<{ type: string }> {
  const frames: Array<{ type: string }> = [];
  try {
    for (const value of decodeMulti(data)) {
      if (typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string") {
        frames.push(value as { type: string });
      }
    }
  } catch {
    // not msgpack from here on: ignore the rest
  }
  return frames;
}

export class LiveSocket<F> {
  private readonly options: LiveSocketOptions<F>;
  private socket: SocketLike | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private ping: ReturnType<typeof setInterval> | undefined;
  private token: string | null = null;
  private stopped = true;
  private unsubscribe: (() => void) | null = null;

  constructor(options: LiveSocketOptions<F>) {
    this.options = options;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe = this.options.client.subscribe(() => this.sessionChanged());
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    clearTimeout(this.timer);
    clearInterval(this.ping);
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onclose = null;
      s.onmessage = null;
      s.onerror = null;
      s.onopen = null;
      s.close(1000);
    }
    this.options.onStatus?.("closed");
  }

  /** Send a frame; false when the socket is not open (the caller keeps what the user typed). */
  send(frame: object): boolean {
    const s = this.socket;
    if (!s || s.readyState !== OPEN) return false;
    s.send(encode(frame));
    return true;
  }

  private connect(): void {
    const { path, open } = this.options;
    const url = socketUrl(path);
    const s = open ? open(url) : (new WebSocket(url) as SocketLike);
    s.binaryType = "arraybuffer";
    this.socket = s;
    this.options.onStatus?.(this.attempt === 0 ? "connecting" : "reconnecting");
    s.onopen = () => {
      this.token = this.options.client.session?.accessToken ?? null;
      if (this.token) this.send({ type: "auth", token: this.token });
      this.options.onStatus?.("open");
      clearInterval(this.ping);
      const every = this.options.pingSeconds ?? 30;
      if (every > 0) this.ping = setInterval(() => this.send({ type: "ping" }), every * 1000);
    };
    s.onmessage = (ev: MessageEvent) => {
      const data = ev.data instanceof ArrayBuffer ? new Uint8Array(ev.data) : ev.data;
      if (!(data instanceof Uint8Array)) return; // a text message: not ours
      for (const frame of framesOf(data)) {
        if (this.socket !== s) return; // a frame closed this socket (e.g. signed out)
        this.attempt = 0;
        this.options.onFrame(frame as F);
      }
    };
    s.onclose = () => {
      clearInterval(this.ping);
      if (this.socket !== s || this.stopped) return;
      this.socket = null;
      this.options.onStatus?.("reconnecting");
      const wait = backoffMs(this.attempt, this.options.random);
      this.attempt += 1;
      this.timer = setTimeout(() => this.connect(), wait);
    };
    s.onerror = () => undefined; // onclose follows and reconnects
  }

  /** A refreshed token is sent on the open socket; signing out reconnects anonymously. */
  private sessionChanged(): void {
    const next = this.options.client.session?.accessToken ?? null;
    if (next === this.token) return;
    const previous = this.token;
    this.token = next;
    if (next) {
      this.send({ type: "auth", token: next });
    } else if (previous && this.options.signedInOnly) {
      this.stop();
    } else if (previous && this.socket) {
      const s = this.socket;
      this.socket = null;
      s.onclose = null;
      s.close(1000);
      clearInterval(this.ping);
      this.attempt = 0;
      this.connect();
    }
  }
}
