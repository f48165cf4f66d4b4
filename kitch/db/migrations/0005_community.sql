-- Kitch schema 5: the community: follows, notifications, chat messages, moderation.
-- Times are Unix seconds (REAL, UTC).

CREATE TABLE follows (
    follower_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel_id  INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    created_at  REAL NOT NULL,
    PRIMARY KEY (follower_id, channel_id)
);
CREATE INDEX follows_by_channel ON follows (channel_id, created_at);

-- kind: "live" (a followed channel went live; broadcast_id says which broadcast).
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    channel_id   INTEGER REFERENCES channels(id) ON DELETE CASCADE,
    broadcast_id INTEGER,
    data         TEXT NOT NULL DEFAULT '{}',
    created_at   REAL NOT NULL,
    read_at      REAL,
    UNIQUE (user_id, kind, broadcast_id)
);
CREATE INDEX notifications_by_user ON notifications (user_id, id);

CREATE TABLE chat_messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id    INTEGER REFERENCES users(id) ON DELETE SET NULL,
    username   TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at REAL NOT NULL,
    deleted_at REAL,
    deleted_by INTEGER
);
CREATE INDEX chat_messages_by_channel ON chat_messages (channel_id, id);

CREATE TABLE chat_moderators (
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    added_by   INTEGER,
    created_at REAL NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);

-- A ban (until NULL) or a timeout (until a time).
CREATE TABLE chat_bans (
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    until      REAL,
    reason     TEXT NOT NULL DEFAULT '',
    by_user_id INTEGER,
    created_at REAL NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);

-- slow_seconds 0 = off; followers_only_seconds NULL = off (0 = any follower); blocked_terms a
-- JSON list of lower-case terms.
CREATE TABLE chat_settings (
    channel_id             INTEGER PRIMARY KEY REFERENCES channels(id) ON DELETE CASCADE,
    slow_seconds           INTEGER NOT NULL DEFAULT 0,
    followers_only_seconds INTEGER,
    blocked_terms          TEXT NOT NULL DEFAULT '[]'
);

-- Every moderation action: action is ban, unban, timeout, delete, clear, mod, unmod, mode,
-- blocked_terms.
CREATE TABLE chat_audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    actor_id   INTEGER,
    action     TEXT NOT NULL,
    target_id  INTEGER,
    message_id INTEGER,
    reason     TEXT NOT NULL DEFAULT '',
    data       TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE INDEX chat_audit_by_channel ON chat_audit (channel_id, id);
