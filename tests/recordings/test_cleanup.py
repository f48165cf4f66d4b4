"""The retention cleanup on a real database and real directories (its clock passed in)."""

from __future__ import annotations

from pathlib import Path

from kitch.config import Settings
from kitch.db import open_database
from kitch.db import recordings as rows
from kitch.db.queries import get_channel, start_broadcast
from kitch.db.users import create_user
from kitch.recordings.retention import DAY
from kitch.server.recordings import Recordings

NOW = 1000 * DAY


async def test_expired_then_oldest_over_the_quota_then_stray_directories(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        secret="s" * 40,
        recording_retention_days=14,
        recording_quota_bytes=2500,
    )
    db = await open_database(tmp_path / "kitch.db")
    try:
        await create_user(db, "ann", "ann@example.com", "x")
        channel = await get_channel(db, "ann")
        assert channel is not None
        root = settings.recordings_root
        made = {}
        for name, ended_days_ago in (("old", 20), ("older_kept", 3), ("new", 1), ("live", None)):
            bid = await start_broadcast(db, channel.id, {})
            path = f"ann/{bid}"
            rid = await rows.create_recording(db, channel.id, bid, path, now=NOW - 30 * DAY)
            (root / path).mkdir(parents=True)
            (root / path / "s0.m4s").write_bytes(b"x" * 1000)
            await rows.update_recording(
                db,
                rid,
                state="recording" if ended_days_ago is None else "ended",
                reason=None,
                segments=1,
                size=1000,
                duration=2.0,
                ended_at=None if ended_days_ago is None else NOW - ended_days_ago * DAY,
            )
            made[name] = (rid, root / path)
        (root / "ghost" / "99").mkdir(parents=True)  # a deleted account's leftovers
        (root / "ghost" / "99" / "s0.m4s").write_bytes(b"x")
        (root / "photos" / "2024").mkdir(parents=True)  # not a recording: never touched
        (root / "photos" / "2024" / "me.jpg").write_bytes(b"x")
        recordings = Recordings(db, settings, clock=lambda: NOW)
        deleted = await recordings.cleanup()
        # "old" is past 14 days; then 3,000 bytes (the live one counts) > 2,500: the oldest
        # finished one goes too
        assert deleted == [made["old"][0], made["older_kept"][0]]
        for name, (rid, directory) in made.items():
            gone = name in ("old", "older_kept")
            assert (await rows.get_recording(db, rid) is None) == gone, name
            assert directory.exists() != gone, name
        assert not (root / "ghost").exists()
        assert (root / "photos" / "2024" / "me.jpg").exists()
        assert await recordings.cleanup() == []  # nothing more to do
        assert await rows.bytes_used(db, channel.id) == 2000
    finally:
        await db.close()
