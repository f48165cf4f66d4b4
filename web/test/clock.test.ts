import { describe, expect, it } from "vitest";
import { DATE_STALE_MS, ServerClock } from "../src/api/clock";

const date = (ms: number) => new Date(ms).toUTCString();

describe("ServerClock", () => {
  it("is 0 with no observation or without a usable header", () => {
    const c = new ServerClock();
    c.observe(null, null, 0, 10);
    c.observe("garbage", "garbage", 0, 10);
    c.observe("-5", undefined, 0, 10);
    expect(c.offsetMs()).toBe(0);
    expect(c.now(1234)).toBe(1234);
  });

  describe("from Kitch-Time", () => {
    it("reads 0 when the clocks agree within the round trip", () => {
      const c = new ServerClock();
      const t = Date.UTC(2025, 0, 1, 12, 0, 0, 400);
      c.observe(String(t + 15), null, t, t + 40);
      expect(c.offsetMs()).toBe(0);
    });

    it("narrows the interval over several responses and starts over when the clock jumps", () => {
      const c = new ServerClock();
      c.observe("100500", null, 100_000, 100_400); // offset in [99, 501]
      c.observe("200300", null, 200_000, 200_100); // offset in [199, 301]
      expect(c.offsetMs()).toBe(199);
      c.observe("300000", null, 400_000, 400_010); // [-100011, -99999]: outside, start over
      expect(c.offsetMs()).toBe(-99_999);
    });

    it("drops what Date headers said once it is seen, and ignores them after", () => {
      const c = new ServerClock();
      const t = Date.UTC(2025, 0, 1, 12, 0, 0, 0);
      c.observe(null, date(t + 60_000), t, t + 10);
      expect(c.offsetMs()).toBe(60_000 - 10);
      c.observe(String(t + 2_000), date(t + 60_000), t, t + 10);
      expect(c.offsetMs()).toBe(1_989);
      c.observe(null, date(t - 60_000), t, t + 10);
      expect(c.offsetMs()).toBe(1_989);
    });
  });

  describe("from the Date header alone", () => {
    it("reads 0 when the clocks agree within the header's resolution", () => {
      const c = new ServerClock();
      const t = Date.UTC(2025, 0, 1, 12, 0, 0, 400);
      c.observe(null, date(t), t - 20, t + 20);
      expect(c.offsetMs()).toBe(0);
    });

    it("does not read a cached Date header as a clock that is behind", () => {
      const c = new ServerClock();
      const t = Date.UTC(2030, 0, 1, 0, 0, 10, 900);
      // same clocks; the server last refreshed its Date header 1.4 s ago (second 9)
      c.observe(undefined, date(t - 1400), t - 20, t);
      expect(c.offsetMs()).toBe(0);
    });

    it("finds a server that is ahead by 5 s", () => {
      const c = new ServerClock();
      const client = Date.UTC(2025, 0, 1, 12, 0, 0, 0);
      const server = client + 5_300; // header says 12:00:05
      c.observe(null, date(server), client - 10, client + 10);
      // offset is in [5000-10, 6000+stale+10]: smallest magnitude is 4990
      expect(c.offsetMs()).toBe(4_990);
      expect(c.now(client)).toBe(client + 4_990);
    });

    it("finds a server that is behind by more than the header's staleness", () => {
      const c = new ServerClock();
      const base = Date.UTC(2025, 0, 1, 12, 0, 0, 0);
      // server = client - 5.5 s: floor 11:59:54 -> [-6010, -5000 + stale]
      c.observe(null, date(base - 5_500), base, base + 10);
      expect(c.offsetMs()).toBe(-5_000 + DATE_STALE_MS);
      // floor 11:59:55 -> [-5710, -4700 + stale]
      c.observe(null, date(base + 700 - 5_500), base + 700, base + 710);
      expect(c.offsetMs()).toBe(-5_000 + DATE_STALE_MS);
    });

    it("starts over when the clock jumps", () => {
      const c = new ServerClock();
      const t = Date.UTC(2025, 0, 1, 12, 0, 0, 0);
      c.observe(null, date(t), t, t + 1);
      c.observe(null, date(t + 3_600_000), t, t + 1);
      expect(c.offsetMs()).toBeGreaterThan(3_500_000);
    });
  });
});
