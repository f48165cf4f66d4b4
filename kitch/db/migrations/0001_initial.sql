-- Kitch schema 1: accounts, stream keys, channels, broadcast sessions, refresh tokens.
-- Times are Unix seconds (REAL, UTC).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE CHECK (username = lower(username)),
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    display_name  TEXT NOT NULL DEFAULT '',
    bio           TEXT NOT NULL DEFAULT '',
    is_admin      INTEGER NOT NULL DEFAULT 0,
    token_version INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL
);

CREATE TABLE avatars (
    user_id      INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    content_type TEXT NOT NULL,
    data         BLOB NOT NULL,
    updated_at   REAL NOT NULL
);

-- One key per user. key_hash (SHA-256 hex) is what ingest looks up; key_plain is kept so the
-- owner can see the key again in the dashboard and is only ever returned to the owner.
CREATE TABLE stream_keys (
    user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    key_hash   TEXT NOT NULL UNIQUE,
    key_plain  TEXT NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE channels (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    title          TEXT NOT NULL DEFAULT '',
    description    TEXT NOT NULL DEFAULT '',
    category       TEXT NOT NULL DEFAULT '',
    tags           TEXT NOT NULL DEFAULT '[]',
    live           INTEGER NOT NULL DEFAULT 0,
    last_live_at   REAL,
    ingest_enabled INTEGER NOT NULL DEFAULT 1,
    created_at     REAL NOT NULL
);

CREATE INDEX channels_live ON channels (live DESC, last_live_at DESC);

CREATE TABLE broadcast_sessions (
    id               INTEGER PRIMARY KEY,
    channel_id       INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    started_at       REAL NOT NULL,
    ended_at         REAL,
    end_reason       TEXT,
    title            TEXT NOT NULL DEFAULT '',
    metadata         TEXT NOT NULL DEFAULT '{}',
    stats            TEXT NOT NULL DEFAULT '{}',
    stats_updated_at REAL
);

CREATE INDEX broadcast_sessions_open ON broadcast_sessions (channel_id, ended_at);

CREATE TABLE refresh_tokens (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family      TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL,
    used_at     REAL,
    revoked_at  REAL
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
