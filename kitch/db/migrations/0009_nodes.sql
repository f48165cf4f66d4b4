-- Kitch schema 9: the nodes of a cluster sharing this database, and which node holds each live
-- channel. Portable SQL (SQLite and PostgreSQL); times are Unix seconds (REAL), written by the
-- code, never by the database's clock (see docs/CLUSTER.md, "Nodes").

-- One row per node: its id (--node-id), the HTTP base URL the other nodes and the edge reach it
-- at (--node-url), its last heartbeat, and a token of the running process (a second process
-- started with the same id is told so).
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    url          TEXT NOT NULL,
    heartbeat_at REAL NOT NULL,
    started_at   REAL NOT NULL,
    incarnation  TEXT NOT NULL DEFAULT ''
);

-- A channel is live on at most one node: the holder of its lease until expires_at (the holder
-- renews it with every heartbeat, and deletes it when the broadcast ends). channel is the
-- channel's name, as /hls/{channel}/ spells it, for routing. publishing is 0 while the holder's
-- publisher is gone (the reconnect grace): another node may then take the lease.
CREATE TABLE channel_leases (
    channel_id INTEGER PRIMARY KEY REFERENCES channels(id) ON DELETE CASCADE,
    channel    TEXT NOT NULL,
    node_id    TEXT NOT NULL,
    expires_at REAL NOT NULL,
    publishing INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX channel_leases_by_channel ON channel_leases (channel);
CREATE INDEX channel_leases_by_node ON channel_leases (node_id);
