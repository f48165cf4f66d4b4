-- Kitch schema 9: scheduled streams, their follower notifications, and the broadcast each one
-- became. Times are Unix seconds (REAL, UTC).

-- status: 'scheduled' or 'cancelled'. timezone: the IANA zone the streamer chose (display and
-- the iCalendar feed); starts_at is the instant. sequence counts the edits (iCalendar SEQUENCE).
-- reminded_at / start_notified_at: when the "starting soon" / "starting now" notifications were
-- stored (or skipped), each set in the same transaction as the notifications, so a restart never
-- sends one twice. broadcast_id: the broadcast linked to it (started near starts_at).
CREATE TABLE scheduled_streams (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id        INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    title             TEXT NOT NULL,
    category          TEXT NOT NULL DEFAULT '',
    starts_at         REAL NOT NULL,
    timezone          TEXT NOT NULL,
    duration          INTEGER NOT NULL,
    status            TEXT NOT NULL DEFAULT 'scheduled',
    sequence          INTEGER NOT NULL DEFAULT 0,
    broadcast_id      INTEGER UNIQUE REFERENCES broadcast_sessions(id) ON DELETE SET NULL,
    reminded_at       REAL,
    start_notified_at REAL,
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL,
    cancelled_at      REAL
);
CREATE INDEX scheduled_streams_by_channel ON scheduled_streams (channel_id, starts_at);
CREATE INDEX scheduled_streams_by_start ON scheduled_streams (status, starts_at);

-- Notifications about a scheduled stream name it; one of each kind per follower and stream.
ALTER TABLE notifications ADD COLUMN schedule_id INTEGER
    REFERENCES scheduled_streams(id) ON DELETE CASCADE;
CREATE UNIQUE INDEX notifications_once_per_schedule ON notifications (user_id, kind, schedule_id)
    WHERE schedule_id IS NOT NULL;

-- Broadcast analytics count a channel's chat messages by time.
CREATE INDEX chat_messages_by_channel_time ON chat_messages (channel_id, created_at);
