-- Kitch schema 4: per-channel transcoding ladder settings, read when a broadcast starts.
-- ladder_enabled: 0 = passthrough only; ladder_rungs: JSON list of the rung names to encode
-- (a subset of "720p", "480p", "360p"; rungs at or above the source height are skipped anyway).

ALTER TABLE channels ADD COLUMN ladder_enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE channels ADD COLUMN ladder_rungs TEXT NOT NULL DEFAULT '["720p", "480p", "360p"]';
