-- Kitch schema 10: where a live channel's HLS numbering stands, written by the lease holder with
-- every heartbeat. A node that takes the channel over from another (the holder died, or its
-- publisher came back elsewhere) numbers its playlists on from there, so players following the
-- channel read forward through a discontinuity instead of seeing the media sequence go back.
-- Portable SQL (SQLite and PostgreSQL).
ALTER TABLE channel_leases ADD COLUMN next_msn INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channel_leases ADD COLUMN discontinuity_sequence INTEGER NOT NULL DEFAULT 0;
