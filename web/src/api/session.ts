/**
 * The signed-in session as the web app keeps it: in memory only. The access token never goes to
 * storage and the refresh token is never seen at all (it is the server's HttpOnly
 * `kitch_refresh` cookie). Pure helpers, no I/O.
 */
import type { PrivateUser, SessionAnswer } from "./types";

export interface Session {
  accessToken: string;
  /** Epoch milliseconds (client clock) at which the access token expires. */
  expiresAt: number;
  user: PrivateUser;
}

export function sessionFrom(answer: SessionAnswer, now: number): Session {
  return {
    accessToken: answer.access_token,
    expiresAt: now + answer.expires_in * 1000,
    user: answer.user,
  };
}

/**
 * Milliseconds from `now` until the access token should be refreshed: a margin before expiry of
 * 20 % of its remaining life, at least 5 s and at most 60 s. Zero when already due.
 */
export function refreshDelayMs(session: Pick<Session, "expiresAt">, now: number): number {
  const remaining = session.expiresAt - now;
  if (remaining <= 0) return 0;
  const margin = Math.min(60_000, Math.max(5_000, remaining * 0.2));
  return Math.max(0, remaining - margin);
}
