"""The ingest hub's live session rules and races, on a real SQLite database and HLS registry.

The publishers here are stand-ins for RTMP connections (the hub only needs a peer name and a
way to drop one); the end-to-end tests in test_publish_e2e.py run the same rules over sockets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from kitch.config import Settings
from kitch.db import Database
from kitch.db.queries import get_channel
from kitch.db.users import create_user, rotate_stream_key
from kitch.hls import HlsRegistry, HlsSettings
from kitch.ingest.hub import REJECTED, TAKEOVER_SILENCE, Broadcast, Refusal
from kitch.server.ingest import IngestHub
from tests.ingest.peers import Peer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def hub(db: Database, clock: Clock, tmp_path: Path) -> AsyncIterator[IngestHub]:
    settings = Settings(data_dir=tmp_path, reconnect_grace=0.5)
    ingest = IngestHub(db, HlsRegistry(HlsSettings()), settings, clock=clock)
    ingest.start()
    yield ingest
    await ingest.stop()


async def wait_until(condition: Callable[[], bool], seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def is_live(db: Database, name: str) -> bool:
    info = await get_channel(db, name)
    assert info is not None
    return info.live


async def test_two_publishers_at_once_one_wins(db: Database, hub: IngestHub) -> None:
    _, key = await create_user(db, "duo", "duo@example.test", "x")
    a, b = Peer("a"), Peer("b")
    results = await asyncio.gather(hub.begin(key, a), hub.begin(key, b))
    won = [r for r in results if isinstance(r, Broadcast)]
    lost = [r for r in results if isinstance(r, Refusal)]
    assert len(won) == 1 and len(lost) == 1, results
    assert lost[0].code == REJECTED
    assert a.kicked is None and b.kicked is None
    rows = await db.fetchall("SELECT id FROM broadcast_sessions")
    assert len(rows) == 1


async def test_takeover_while_the_old_key_is_rechecked_keeps_the_newcomer(
    db: Database, hub: IngestHub, clock: Clock
) -> None:
    """A key re-check that looked up the old key must not drop the publisher that took the
    broadcast over with the new key while the lookup was in flight."""
    user, old_key = await create_user(db, "rota", "rota@example.test", "x")
    first = Peer("first")
    b = await hub.begin(old_key, first)
    assert isinstance(b, Broadcast)
    new_key = await rotate_stream_key(db, user.id)
    clock.now += TAKEOVER_SILENCE + 1  # the first publisher went silent
    second = Peer("second")
    # The newcomer's lookup is queued first, the re-check's (of the old key) right after it.
    begun = asyncio.create_task(hub.begin(new_key, second))
    await asyncio.sleep(0)
    await asyncio.gather(begun, hub.recheck_keys())
    assert first.kicked is not None
    assert second.kicked is None, f"the new key's publisher was dropped: {second.kicked}"
    live = hub.live.get("rota")
    assert live is not None and live.publisher is second and not live.ended
    assert await is_live(db, "rota")


async def test_begin_in_flight_at_shutdown_is_refused(db: Database, hub: IngestHub) -> None:
    """A publish whose key lookup is still running when the hub stops must not open a
    broadcast that nothing will ever end."""
    _, key = await create_user(db, "late", "late@example.test", "x")
    pending = asyncio.create_task(hub.begin(key, Peer("late")))
    await asyncio.sleep(0)
    await hub.stop()
    result = await pending
    assert isinstance(result, Refusal), result
    assert hub.live == {}
    assert not await is_live(db, "late")
    open_rows = await db.fetchall("SELECT id FROM broadcast_sessions WHERE ended_at IS NULL")
    assert open_rows == []


async def test_shutdown_during_the_grace_ends_the_broadcast_once(
    db: Database, hub: IngestHub, clock: Clock
) -> None:
    _, key = await create_user(db, "gr", "gr@example.test", "x")
    pub = Peer("p")
    b = await hub.begin(key, pub)
    assert isinstance(b, Broadcast)
    await hub.publisher_gone(b, pub, "closed by peer")
    assert b.grace_until is not None and await is_live(db, "gr")
    await hub.stop()
    clock.now += 1  # past the 0.5 s grace: the stopped timer must not end it again
    await asyncio.sleep(0.6)
    row = await db.fetchone("SELECT ended_at, end_reason FROM broadcast_sessions")
    assert row is not None and row["ended_at"] is not None
    assert row["end_reason"] == "server shutdown"
    assert not await is_live(db, "gr")


async def test_reconnect_within_the_grace_resumes_and_past_it_ends(
    db: Database, hub: IngestHub, clock: Clock
) -> None:
    _, key = await create_user(db, "bob", "bob@example.test", "x")
    one = Peer("one")
    b = await hub.begin(key, one)
    assert isinstance(b, Broadcast)
    await hub.publisher_gone(b, one, "closed by peer")
    clock.now += 0.4
    await asyncio.sleep(0.6)  # the timer runs, but the grace (on the hub's clock) is not over
    two = Peer("two")
    assert await hub.begin(key, two) is b
    await hub.publisher_gone(b, two, "closed by peer")
    clock.now += 0.4
    await asyncio.sleep(0.1)
    assert not b.ended and await is_live(db, "bob")
    clock.now += 0.2  # 0.6 s since the second publisher left
    await wait_until(lambda: b.ended)
    async with hub._lock:  # the end is recorded under the lock the timer took to end it
        assert "bob" not in hub.live
    assert not await is_live(db, "bob")
    rows = await db.fetchall("SELECT end_reason FROM broadcast_sessions")
    assert [r["end_reason"] for r in rows] == ["publisher did not come back"]
