"""The queries the RTMP server calls: key lookup, broadcast lifecycle, crash clean-up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kitch.db import Database
from kitch.db.queries import (
    channel_for_stream_key,
    close_stale_broadcasts,
    end_broadcast,
    get_channel,
    ladder_settings,
    set_ingest_enabled,
    start_broadcast,
    update_broadcast_stats,
    update_channel,
)
from kitch.db.users import create_user, rotate_stream_key
from kitch.keys import generate_stream_key


async def test_key_lookup(db: Database) -> None:
    user, key = await create_user(db, "ann", "ann@example.com", "x")
    ref = await channel_for_stream_key(db, key)
    assert ref is not None
    assert (ref.user_id, ref.username) == (user.id, "ann")
    stored = await db.fetchone("SELECT key_hash FROM stream_keys")
    assert stored is not None and key not in stored[0]
    for wrong in ("", key[:-1], key + "x", key.upper(), generate_stream_key(), "x" * 100_000):
        assert await channel_for_stream_key(db, wrong) is None
    assert await channel_for_stream_key(db, None) is None  # type: ignore[arg-type]
    assert await channel_for_stream_key(db, "' OR 1=1 --") is None


async def test_keys_have_enough_entropy_and_are_unique(db: Database) -> None:
    keys = {generate_stream_key() for _ in range(1000)}
    assert len(keys) == 1000
    assert all(k.startswith("live_") and len(k) - 5 >= 32 for k in keys)  # >= 192 bits


async def test_rotation_and_disable(db: Database) -> None:
    _, old = await create_user(db, "bea", "bea@example.com", "x")
    ref = await channel_for_stream_key(db, old)
    assert ref is not None
    new = await rotate_stream_key(db, ref.user_id)
    assert await channel_for_stream_key(db, old) is None
    assert await channel_for_stream_key(db, new) == ref
    await set_ingest_enabled(db, ref.channel_id, False)
    assert await channel_for_stream_key(db, new) is None
    await set_ingest_enabled(db, ref.channel_id, True)
    assert await channel_for_stream_key(db, new) == ref


async def test_broadcast_lifecycle(db: Database) -> None:
    _, key = await create_user(db, "cid", "cid@example.com", "x")
    ref = await channel_for_stream_key(db, key)
    assert ref is not None
    await db.execute("UPDATE channels SET title = 'First' WHERE id = ?", (ref.channel_id,))
    bid = await start_broadcast(db, ref.channel_id, {"app": "live", "encoder": "obs"}, now=1000.0)
    await db.execute("UPDATE channels SET title = 'Renamed' WHERE id = ?", (ref.channel_id,))
    await update_broadcast_stats(db, bid, {"video_codec": "h264", "fps": 30})
    channel = await get_channel(db, "cid")
    assert channel is not None and channel.live and channel.last_live_at == 1000.0
    assert channel.stream is not None
    assert channel.stream.title == "First"  # the title at go-live
    assert channel.stream.stats == {"video_codec": "h264", "fps": 30}
    assert channel.stream.metadata["encoder"] == "obs"
    await end_broadcast(db, bid, "publisher_closed", now=1060.0)
    await end_broadcast(db, bid, "again", now=2000.0)  # idempotent
    row = await db.fetchone(
        "SELECT ended_at, end_reason FROM broadcast_sessions WHERE id = ?", (bid,)
    )
    assert row is not None and tuple(row) == (1060.0, "publisher_closed")
    channel = await get_channel(db, "cid")
    assert channel is not None and not channel.live and channel.stream is None


async def test_start_closes_a_session_left_open(db: Database) -> None:
    _, key = await create_user(db, "dan", "dan@example.com", "x")
    ref = await channel_for_stream_key(db, key)
    assert ref is not None
    first = await start_broadcast(db, ref.channel_id, {})
    second = await start_broadcast(db, ref.channel_id, {})
    open_rows = await db.fetchall("SELECT id FROM broadcast_sessions WHERE ended_at IS NULL")
    assert [r[0] for r in open_rows] == [second]
    await end_broadcast(db, first, "late")  # ending the superseded one keeps the channel live
    channel = await get_channel(db, "dan")
    assert channel is not None and channel.live


async def test_close_stale_broadcasts(db: Database) -> None:
    refs = []
    for name in ("eve", "fay"):
        _, key = await create_user(db, name, f"{name}@example.com", "x")
        ref = await channel_for_stream_key(db, key)
        assert ref is not None
        refs.append(ref)
    a = await start_broadcast(db, refs[0].channel_id, {}, now=100.0)
    await start_broadcast(db, refs[1].channel_id, {}, now=200.0)
    await update_broadcast_stats(db, a, {"bitrate_kbps": 1})
    assert await close_stale_broadcasts(db) == 2
    assert await close_stale_broadcasts(db) == 0
    rows = await db.fetchall("SELECT end_reason, ended_at >= started_at FROM broadcast_sessions")
    assert all(tuple(r) == ("server_restart", 1) for r in rows)
    live = await db.fetchone("SELECT count(*) FROM channels WHERE live = 1")
    assert live is not None and live[0] == 0


async def test_stats_are_json(db: Database) -> None:
    _, key = await create_user(db, "gus", "gus@example.com", "x")
    ref = await channel_for_stream_key(db, key)
    assert ref is not None
    bid = await start_broadcast(db, ref.channel_id, {"odd": Path("/x")})
    await update_broadcast_stats(db, bid, {"encoder": 'obs\u00e9 "quoted"'})
    row = await db.fetchone("SELECT metadata, stats FROM broadcast_sessions WHERE id = ?", (bid,))
    assert row is not None
    assert json.loads(row[0]) == {"odd": "/x"}
    assert json.loads(row[1])["encoder"] == 'obs\u00e9 "quoted"'


async def test_ladder_settings(db: Database) -> None:
    _, key = await create_user(db, "lia", "lia@example.com", "x")
    ref = await channel_for_stream_key(db, key)
    assert ref is not None
    assert await ladder_settings(db, ref.channel_id) == (True, ["720p", "480p", "360p"])
    await update_channel(db, ref.channel_id, {"ladder_enabled": False, "ladder_rungs": ["360p"]})
    assert await ladder_settings(db, ref.channel_id) == (False, ["360p"])
    channel = await get_channel(db, "lia")
    assert channel is not None
    assert (channel.ladder_enabled, channel.ladder_rungs) == (False, ["360p"])
    # stored highest first whatever the order given; unknown names are refused
    await update_channel(db, ref.channel_id, {"ladder_rungs": ["360p", "720p"]})
    assert await ladder_settings(db, ref.channel_id) == (False, ["720p", "360p"])
    with pytest.raises(ValueError, match="1080p"):
        await update_channel(db, ref.channel_id, {"ladder_rungs": ["1080p"]})
    # odd stored data (edited by hand) reads as the known names it holds
    await db.execute('UPDATE channels SET ladder_rungs = \'["480p", 7, "4k"]\'')
    assert await ladder_settings(db, ref.channel_id) == (False, ["480p"])
    await db.execute("UPDATE channels SET ladder_rungs = 'not json'")
    assert await ladder_settings(db, ref.channel_id) == (False, ["720p", "480p", "360p"])
    assert await ladder_settings(db, 999_999) == (True, ["720p", "480p", "360p"])
