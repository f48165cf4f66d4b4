import { describe, expect, it } from "vitest";
import { ServerClock } from "../src/api/clock";

const date = (ms: number) => new Date(ms).toUTCString();

describe("ServerClock", () => {
  it("is 0 with no observation or without a Date header", () => {
    const c = new ServerClock();
    c.observe(null, 0, 10);
    c.observe("garbage", 0, 10);
    expect(c.offsetMs()).toBe(0);
    expect(c.now(1234)).toBe(1234);
  });

  it("reads 0 when the clocks agree within the header's resolution", () => {
    const c = new ServerClock();
    const t = Date.UTC(2025, 0, 1, 12, 0, 0, 400);
    c.observe(date(t), t - 20, t + 20);
    expect(c.offsetMs()).toBe(0);
  });

  it("finds a server that is ahead by 5 s", () => {
    const c = new ServerClock();
    const client = Date.UTC(2025, 0, 1, 12, 0, 0, 0);
    const server = client + 5_300; // header says 12:00:05
    c.observe(date(server), client - 10, client + 10);
    // offset is in [5000-10, 6000+10]: smallest magnitude is 4990
    expect(c.offsetMs()).toBe(4_990);
    expect(c.now(client)).toBe(client + 4_990);
  });

  it("finds a server that is behind and narrows with more samples", () => {
    const c = new ServerClock();
    const base = Date.UTC(2025, 0, 1, 12, 0, 0, 0);
    // server = client - 3.5 s
    c.observe(date(base - 3_500), base, base + 10); // server floor 11:59:56 -> [-4010, -3000]
    expect(c.offsetMs()).toBe(-3_000);
    c.observe(date(base + 700 - 3_500), base + 700, base + 710); // floor 11:59:57 -> [-3710, -2700]
    expect(c.offsetMs()).toBe(-3_000);
    c.observe(date(base + 900 - 3_500), base + 900, base + 905); // [-3905, -2900]
    expect(c.offsetMs()).toBe(-3_000);
  });

  it("starts over when the clock jumps", () => {
    const c = new ServerClock();
    const t = Date.UTC(2025, 0, 1, 12, 0, 0, 0);
    c.observe(date(t), t, t + 1);
    c.observe(date(t + 3_600_000), t, t + 1);
    expect(c.offsetMs()).toBeGreaterThan(3_500_000);
  });
});
