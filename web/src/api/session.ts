/** Session tokens kept in localStorage, and when to refresh them. Pure helpers, no I/O. */

export interface Session {
  accessToken: string;
  refreshToken: string;
  /** Epoch milliseconds (client clock) at which the access token expires. */
  expiresAt: number;
}

export const SESSION_KEY = "kitch.session";

/** The token pair the API answers to login, register and refresh. */
export interface TokenResponse {
  access_token: string;
  refresh_token: string;
  token_type?: string;
  expires_in?: number;
}

/** Default access-token lifetime when the server omits `expires_in` (900 s, the server default). */
export const DEFAULT_EXPIRES_IN_S = 900;

export function isTokenResponse(value: unknown): value is TokenResponse {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.access_token === "string" && typeof v.refresh_token === "string";
}

export function sessionFromTokens(tokens: TokenResponse, now: number): Session {
  const expiresIn =
    typeof tokens.expires_in === "number" && tokens.expires_in > 0
      ? tokens.expires_in
      : DEFAULT_EXPIRES_IN_S;
  return {
    accessToken: tokens.access_token,
    refreshToken: tokens.refresh_token,
    expiresAt: now + expiresIn * 1000,
  };
}

export function loadSession(storage: Pick<Storage, "getItem">): Session | null {
  let raw: string | null;
  try {
    raw = storage.getItem(SESSION_KEY);
  } catch {
    return null;
  }
  if (!raw) return null;
  try {
    const v = JSON.parse(raw) as Partial<Session>;
    if (
      typeof v.accessToken === "string" &&
      typeof v.refreshToken === "string" &&
      typeof v.expiresAt === "number"
    ) {
      return { accessToken: v.accessToken, refreshToken: v.refreshToken, expiresAt: v.expiresAt };
    }
  } catch {
    // fall through: a corrupt entry is the same as none
  }
  return null;
}

export function saveSession(
  storage: Pick<Storage, "setItem" | "removeItem">,
  session: Session | null,
): void {
  try {
    if (session) storage.setItem(SESSION_KEY, JSON.stringify(session));
    else storage.removeItem(SESSION_KEY);
  } catch {
    // storage full or disabled (private mode): the session lives in memory only
  }
}

/**
 * Milliseconds from `now` until the access token should be refreshed: a margin before expiry of
 * 20 % of its remaining life, at least 5 s and at most 60 s. Zero when already due.
 */
export function refreshDelayMs(session: Session, now: number): number {
  const remaining = session.expiresAt - now;
  if (remaining <= 0) return 0;
  const margin = Math.min(60_000, Math.max(5_000, remaining * 0.2));
  return Math.max(0, remaining - margin);
}
