-- Kitch schema 3: sign-in sessions. A session is one sign-in: its id is the refresh-token family
-- and every access token names it (claim "sid"). Signing out, or presenting a used refresh token
-- again after the grace, revokes the session: its refresh tokens and its access tokens stop
-- working at once. A session goes away with the last of its refresh tokens.

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at REAL NOT NULL,
    revoked_at REAL
);

CREATE INDEX sessions_user ON sessions (user_id);

INSERT INTO sessions (id, user_id, created_at, revoked_at)
    SELECT family, min(user_id), min(created_at), max(revoked_at)
    FROM refresh_tokens GROUP BY family;
