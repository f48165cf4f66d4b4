/** A fake WebSocket for the chat and events sockets: frames are msgpack, like the server's. */
import { decode, encode } from "@msgpack/msgpack";

export class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  /** Every socket opened, oldest first. */
  static all: FakeWebSocket[] = [];

  readonly url: string;
  binaryType: BinaryType = "blob";
  readyState = FakeWebSocket.CONNECTING;
  /** The frames the app sent, decoded. */
  sent: Array<Record<string, unknown>> = [];
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;

  constructor(url: string) {
    this.url = url;
    FakeWebSocket.all.push(this);
  }

  send(data: Uint8Array): void {
    if (this.readyState !== FakeWebSocket.OPEN) throw new Error("send on a socket that is not open");
    this.sent.push(decode(data) as Record<string, unknown>);
  }

  close(): void {
    if (this.readyState === FakeWebSocket.CLOSED) return;
    this.readyState = FakeWebSocket.CLOSED;
    this.onclose?.(new Event("close") as CloseEvent);
  }

  // ---- the server's side ----

  accept(): void {
    this.readyState = FakeWebSocket.OPEN;
    this.onopen?.(new Event("open"));
  }

  push(frame: object): void {
    this.pushMany([frame]);
  }

  /** Several frames in one binary message, back to back (as the chat sends a room's batch). */
  pushMany(frames: object[], tail: Uint8Array = new Uint8Array()): void {
    const parts = [...frames.map((f) => encode(f)), tail];
    const data = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.byteLength;
    }
    this.onmessage?.(new MessageEvent("message", { data: data.buffer }));
  }

  /** The server drops the connection. */
  drop(): void {
    this.close();
  }

  static reset(): void {
    FakeWebSocket.all = [];
  }

  static last(path?: string): FakeWebSocket {
    const list = path ? FakeWebSocket.all.filter((s) => s.url.endsWith(path)) : FakeWebSocket.all;
    const s = list[list.length - 1];
    if (!s) throw new Error(`no socket${path ? ` for ${path}` : ""}`);
    return s;
  }
}
