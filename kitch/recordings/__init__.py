"""Recordings (past broadcasts) on disk: the writer thread, VOD playlists, crash recovery and the
retention plan. Blocking file work only; the recorder sink (:mod:`kitch.ingest.recorder`) feeds
it, the server glue (:mod:`kitch.server.recordings`) keeps the database in step."""
