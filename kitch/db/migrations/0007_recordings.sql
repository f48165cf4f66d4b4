-- Kitch schema 7: recordings (past broadcasts) and the per-channel recording switch.
-- state: recording (being written), ended (the broadcast ended; closed as VOD), stopped (stopped
-- before the broadcast ended: disk full or too slow; playable up to that point, reason says
-- why), failed (nothing playable). path: the recording's directory, relative to the recordings
-- directory ("channel/broadcast id"). duration in seconds, bytes on disk, segments listed.

ALTER TABLE channels ADD COLUMN recording_enabled INTEGER NOT NULL DEFAULT 1;

CREATE TABLE recordings (
    id           INTEGER PRIMARY KEY,
    channel_id   INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    broadcast_id INTEGER UNIQUE REFERENCES broadcast_sessions(id) ON DELETE SET NULL,
    title        TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL DEFAULT 'recording'
                 CHECK (state IN ('recording', 'ended', 'stopped', 'failed')),
    reason       TEXT,
    path         TEXT NOT NULL UNIQUE,
    started_at   REAL NOT NULL,
    ended_at     REAL,
    updated_at   REAL NOT NULL,
    duration     REAL NOT NULL DEFAULT 0,
    bytes        INTEGER NOT NULL DEFAULT 0,
    segments     INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX recordings_channel ON recordings (channel_id, started_at DESC);
CREATE INDEX recordings_state ON recordings (state, ended_at);
