/**
 * Server clock offset (server - client, in ms), estimated from the responses of API requests.
 *
 * Each response bounds the offset to an interval and the intervals of several responses are
 * intersected. Kitch puts its clock on every API response (`Kitch-Time`, epoch ms read as the
 * response starts): that reading happened between sending the request and receiving the answer.
 * Without it (another server, a proxy that drops it) the `Date` header serves, much more loosely:
 * it has one-second resolution and a server may cache it (uvicorn refreshes it once a second),
 * so it may be up to `DATE_STALE_MS` old as well. The estimate is the offset of smallest
 * magnitude inside the interval, so a client whose clock agrees with the server's to within the
 * measurement gets exactly 0.
 */

/** How old a `Date` header may be when it is sent: one refresh interval and some loop delay. */
export const DATE_STALE_MS = 2000;

export class ServerClock {
  private lo = -Infinity;
  private hi = Infinity;
  private precise = false;

  /**
   * Feed one response: `serverMs` is its `Kitch-Time` header, `dateHeader` its `Date` header,
   * `sentAt`/`receivedAt` are client epoch ms around the request.
   */
  observe(
    serverMs: string | null | undefined,
    dateHeader: string | null | undefined,
    sentAt: number,
    receivedAt: number,
  ): void {
    const exact = serverMs ? Number(serverMs) : NaN;
    if (Number.isFinite(exact) && exact > 0) {
      if (!this.precise) this.reset();
      this.precise = true;
      // the server read its clock (to the ms) while the request was out
      this.bound(exact - receivedAt - 1, exact - sentAt + 1);
      return;
    }
    if (this.precise || !dateHeader) return;
    const server = Date.parse(dateHeader);
    if (Number.isNaN(server)) return;
    // server time at answer is in [server, server + 1000 + DATE_STALE_MS); the answer happened
    // in [sentAt, receivedAt]
    this.bound(server - receivedAt, server + 1000 + DATE_STALE_MS - sentAt);
  }

  private reset(): void {
    this.lo = -Infinity;
    this.hi = Infinity;
  }

  private bound(lo: number, hi: number): void {
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
