/**
 * Server clock offset estimated from HTTP `Date` headers.
 *
 * A `Date` header has one-second resolution: the server's clock read some time during the
 * request, truncated to the second. Each response therefore bounds the offset
 * (server - client, in ms) to an interval; intervals from several responses are intersected.
 * The estimate is the offset of smallest magnitude inside the interval, so a client whose clock
 * agrees with the server's to within the header's resolution gets exactly 0.
 */
export class ServerClock {
  private lo = -Infinity;
  private hi = Infinity;

  /** Feed one response: `sentAt`/`receivedAt` are client epoch ms around the request. */
  observe(dateHeader: string | null | undefined, sentAt: number, receivedAt: number): void {
    if (!dateHeader) return;
    const server = Date.parse(dateHeader);
    if (Number.isNaN(server)) return;
    // server time at answer is in [server, server + 1000); the answer happened in [sentAt, receivedAt]
    const lo = server - receivedAt;
    const hi = server + 1000 - sentAt;
    if (lo > this.hi || hi < this.lo) {
      // the clock jumped: start over from this sample
      this.lo = lo;
      this.hi = hi;
      return;
    }
    this.lo = Math.max(this.lo, lo);
    this.hi = Math.min(this.hi, hi);
  }

  /** Best estimate of server - client in ms (0 when nothing was observed). */
  offsetMs(): number {
    if (this.lo === -Infinity && this.hi === Infinity) return 0;
    if (this.lo <= 0 && this.hi >= 0) return 0;
    return this.lo > 0 ? this.lo : this.hi;
  }

  /** The server's current time in epoch ms. */
  now(clientNow: number = Date.now()): number {
    return clientNow + this.offsetMs();
  }
}

export const serverClock = new ServerClock();
