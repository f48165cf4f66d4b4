import { describe, expect, it } from "vitest";
import {
  DEFAULT_EXPIRES_IN_S,
  loadSession,
  refreshDelayMs,
  saveSession,
  SESSION_KEY,
  sessionFromTokens,
} from "../src/api/session";
import { memoryStorage, tokens } from "./helpers";

describe("session storage", () => {
  it("round-trips through storage", () => {
    const storage = memoryStorage();
    const s = sessionFromTokens(tokens(1), 1_000);
    saveSession(storage, s);
    expect(loadSession(storage)).toEqual(s);
    saveSession(storage, null);
    expect(loadSession(storage)).toBeNull();
  });

  it("treats corrupt or partial entries as signed out", () => {
    const storage = memoryStorage();
    storage.setItem(SESSION_KEY, "{not json");
    expect(loadSession(storage)).toBeNull();
    storage.setItem(SESSION_KEY, JSON.stringify({ accessToken: "a" }));
    expect(loadSession(storage)).toBeNull();
  });

  it("computes expiry from expires_in, defaulting to 900 s", () => {
    expect(sessionFromTokens(tokens(1, 60), 5_000).expiresAt).toBe(65_000);
    const { expires_in: _drop, ...noExpiry } = tokens(1);
    expect(sessionFromTokens(noExpiry, 0).expiresAt).toBe(DEFAULT_EXPIRES_IN_S * 1000);
  });
});

describe("refreshDelayMs", () => {
  const s = (expiresAt: number) => ({ accessToken: "a", refreshToken: "r", expiresAt });

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
