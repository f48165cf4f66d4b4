import { describe, expect, it } from "vitest";
import { refreshDelayMs, sessionFrom } from "../src/api/session";
import { session, user } from "./helpers";

describe("sessionFrom", () => {
  it("keeps the access token, its expiry and the user; never a refresh token", () => {
    const s = sessionFrom({ ...session(1, 60), refresh_token: "should-not-be-kept" }, 5_000);
    expect(s).toEqual({ accessToken: "access-1", expiresAt: 65_000, user: user() });
  });
});

describe("refreshDelayMs", () => {
  const s = (expiresAt: number) => ({ expiresAt });

  it("refreshes 60 s before a 15 min token expires", () => {
    expect(refreshDelayMs(s(900_000), 0)).toBe(840_000);
  });

  it("keeps a 20 % margin for short tokens, at least 5 s", () => {
    expect(refreshDelayMs(s(100_000), 0)).toBe(80_000);
    expect(refreshDelayMs(s(10_000), 0)).toBe(5_000);
  });

  it("is due at once when (nearly) expired", () => {
    expect(refreshDelayMs(s(3_000), 0)).toBe(0);
    expect(refreshDelayMs(s(1_000), 5_000)).toBe(0);
  });
});
