"""Channel lease rules on a real SQLite file: take, refuse, expire, renew, release, races
between two connections, and the start-up clean-up that spares other nodes' channels."""

from __future__ import annotations

import asyncio
import platform
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kitch.cluster import leases
from kitch.cluster.nodes import (
    RESUME_MSN_MARGIN,
    ClusterNode,
    NodeIdInUseError,
    node_id_from,
    node_url_from,
)
from kitch.config import ConfigError, Settings
from kitch.db import Database, open_database
from kitch.db.queries import channel_for_stream_key, get_channel, start_broadcast
from kitch.db.users import create_user
from kitch.hls import HlsRegistry, HlsSettings
from kitch.ingest.hub import ALREADY_LIVE, Broadcast
from kitch.server.ingest import IngestHub
from tests.ingest.peers import Peer

TTL = 5.0
URL_A = "http://a.test:8000"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The shared database: an SQLite file, or a PostgreSQL database (each test runs on both)."""
    database = await open_database(database_url)
    yield database
    await database.close()


@pytest.fixture
async def other(database_url: str, db: Database) -> AsyncIterator[Database]:
    """A second connection to the same database (another node's process)."""
    database = await open_database(database_url)
    yield database
    await database.close()


async def channel(db: Database, name: str) -> int:
    _, key = await create_user(db, name, f"{name}@example.test", "x")
    ref = await channel_for_stream_key(db, key)
    assert ref is not None
    return ref.channel_id


async def node(db: Database, node_id: str, now: float, incarnation: str = "i") -> None:
    await leases.register_node(db, node_id, f"http://{node_id}.test:8000", incarnation, now)


async def test_free_lease_is_taken_kept_by_its_holder_and_refused_to_others(db: Database) -> None:
    cid = await channel(db, "alice")
    assert await leases.acquire(db, cid, "alice", "a", 100.0, TTL) is None
    assert await leases.acquire(db, cid, "alice", "a", 101.0, TTL) is None  # its own again
    assert await leases.acquire(db, cid, "alice", "b", 102.0, TTL) == "a"
    row = await db.fetchone(
        "SELECT node_id, expires_at FROM channel_leases WHERE channel_id = ?", (cid,)
    )
    assert row is not None and tuple(row) == ("a", 106.0)  # B's refusal changed nothing


async def test_expired_lease_goes_to_the_next_node(db: Database) -> None:
    cid = await channel(db, "alice")
    assert await leases.acquire(db, cid, "alice", "a", 100.0, TTL) is None
    assert await leases.acquire(db, cid, "alice", "b", 104.99, TTL) == "a"
    assert await leases.acquire(db, cid, "alice", "b", 105.0, TTL) is None  # expires_at <= now
    assert await leases.acquire(db, cid, "alice", "a", 106.0, TTL) == "b"


async def test_renewal_extends_every_lease_and_reports_the_lost(db: Database) -> None:
    c1, c2 = await channel(db, "alice"), await channel(db, "bob")
    await node(db, "a", 100.0)
    await node(db, "b", 100.0)
    await leases.acquire(db, c1, "alice", "a", 100.0, TTL)
    await leases.acquire(db, c2, "bob", "a", 100.0, TTL)
    renewal = await leases.renew(db, "a", URL_A, "i", {c1: "alice", c2: "bob"}, 104.0, TTL)
    assert renewal.owned and not renewal.lost
    # renewed: B is still refused after the first expiry would have passed
    assert await leases.acquire(db, c1, "alice", "b", 107.0, TTL) == "a"
    # A stalls past its lease: B takes bob; A's next beat learns it lost bob, keeps alice
    assert await leases.acquire(db, c2, "bob", "b", 109.5, TTL) is None
    renewal = await leases.renew(db, "a", URL_A, "i", {c1: "alice", c2: "bob"}, 110.0, TTL)
    assert renewal.owned and renewal.lost == frozenset({c2})
    assert await leases.holder(db, "alice", 110.0) == leases.Holder("a", "http://a.test:8000")
    assert await leases.holder(db, "bob", 110.0) == leases.Holder("b", "http://b.test:8000")
    row = await db.fetchone("SELECT heartbeat_at FROM nodes WHERE id = 'a'")
    assert row is not None and row[0] == 110.0


async def test_renewal_drops_leases_the_node_does_not_hold(db: Database) -> None:
    c1, c2 = await channel(db, "alice"), await channel(db, "bob")
    await node(db, "a", 100.0)
    await leases.acquire(db, c1, "alice", "a", 100.0, TTL)
    await leases.acquire(db, c2, "bob", "a", 100.0, TTL)
    renewal = await leases.renew(db, "a", URL_A, "i", {c1: "alice"}, 101.0, TTL)
    assert not renewal.lost
    assert await leases.holder(db, "bob", 101.0) is None
    assert await leases.holder(db, "alice", 101.0) is not None


async def test_a_second_incarnation_of_a_node_id_stops_the_first_renewing(db: Database) -> None:
    cid = await channel(db, "alice")
    await node(db, "a", 100.0, "first")
    await leases.acquire(db, cid, "alice", "a", 100.0, TTL)
    await node(db, "a", 101.0, "second")
    renewal = await leases.renew(db, "a", URL_A, "first", {cid: "alice"}, 102.0, TTL)
    assert not renewal.owned
    row = await db.fetchone("SELECT expires_at FROM channel_leases")
    assert row is not None and row[0] == 105.0  # not renewed by the stale incarnation


async def test_release_is_the_holders_alone(db: Database) -> None:
    cid = await channel(db, "alice")
    await node(db, "a", 100.0)
    await leases.acquire(db, cid, "alice", "a", 100.0, TTL)
    await leases.release(db, cid, "b")
    assert await leases.holder(db, "alice", 100.0) is not None
    await leases.release(db, cid, "a")
    assert await leases.holder(db, "alice", 100.0) is None
    assert await leases.acquire(db, cid, "alice", "b", 100.5, TTL) is None


async def test_releasing_a_node_frees_all_its_channels_and_its_row(db: Database) -> None:
    c1, c2, c3 = [await channel(db, n) for n in ("alice", "bob", "carol")]
    await node(db, "a", 100.0)
    await node(db, "b", 100.0)
    for cid, name in ((c1, "alice"), (c2, "bob")):
        await leases.acquire(db, cid, name, "a", 100.0, TTL)
    await leases.acquire(db, c3, "carol", "b", 100.0, TTL)
    await leases.release_node(db, "a", "i")
    assert await leases.holder(db, "alice", 100.0) is None
    assert await leases.holder(db, "bob", 100.0) is None
    assert await leases.holder(db, "carol", 100.0) is not None
    assert [r[0] for r in await leases.node_rows(db)] == ["b"]


async def test_holder_ignores_expired_leases_and_unknown_names(db: Database) -> None:
    cid = await channel(db, "alice")
    await node(db, "a", 100.0)
    await leases.acquire(db, cid, "alice", "a", 100.0, TTL)
    assert await leases.holder(db, "alice", 104.9) is not None
    assert await leases.holder(db, "alice", 105.0) is None
    assert await leases.holder(db, "nobody", 100.0) is None


async def test_start_up_closes_orphans_but_not_other_live_nodes_channels(db: Database) -> None:
    c1, c2, c3 = [await channel(db, n) for n in ("alice", "bob", "carol")]
    await node(db, "a", 100.0)
    await node(db, "b", 100.0)
    for cid in (c1, c2, c3):
        await start_broadcast(db, cid, {}, now=100.0)
    await leases.acquire(db, c1, "alice", "b", 100.0, TTL)  # live on B, which runs on
    await leases.acquire(db, c2, "bob", "a", 100.0, TTL)  # A's own, from before its crash
    # carol: no lease at all (a crash before leases, or one long expired)
    await node(db, "gone", 90.0)  # a node silent for longer than a lease: its row goes
    closed = await leases.close_orphans(db, "a", 101.0, TTL)
    assert [r[0] for r in await leases.node_rows(db)] == ["a", "b"]
    assert closed == 2
    live = {n: (await get_channel(db, n)).live for n in ("alice", "bob", "carol")}  # type: ignore[union-attr]
    assert live == {"alice": True, "bob": False, "carol": False}
    rows = await db.fetchall(
        "SELECT channel_id, ended_at IS NULL, end_reason FROM broadcast_sessions "
        "ORDER BY channel_id"
    )
    assert [tuple(r) for r in rows] == [
        (c1, 1, None),
        (c2, 0, "server_restart"),
        (c3, 0, "server_restart"),
    ]
    assert await leases.holder(db, "bob", 101.0) is None  # A's stale lease is gone


async def test_two_connections_racing_for_one_channel_never_both_win(
    db: Database, other: Database
) -> None:
    cid = await channel(db, "alice")
    for round_ in range(20):
        now = 1000.0 + 10 * round_  # the previous round's lease has expired
        results = await asyncio.gather(
            *(
                leases.acquire(conn, cid, "alice", node_id, now, TTL)
                for conn, node_id in ((db, "a"), (other, "b"), (db, "c"), (other, "d"))
            )
        )
        winners = [r for r in results if r is None]
        assert len(winners) == 1, results
        held = {r for r in results if r is not None}
        assert len(held) == 1  # every loser names the same winner
        row = await db.fetchone("SELECT node_id FROM channel_leases WHERE channel_id = ?", (cid,))
        assert row is not None and {row[0]} == held


async def test_a_channel_taken_over_numbers_on_from_its_old_holders_last_heartbeat(
    db: Database, other: Database
) -> None:
    """The holder writes where each channel's HLS numbering stands with its heartbeats (only
    when it moved); the node that takes the channel over after the holder died starts past it,
    one discontinuity later. The same node taking its own channel again, or a channel whose
    lease was given up (a broadcast that ended), starts afresh."""
    cid = await channel(db, "alice")
    bob = await channel(db, "bob")
    a = ClusterNode(db, "a", "http://a.test:1", heartbeat=60, lease=0.3)
    b = ClusterNode(other, "b", "http://b.test:2", heartbeat=60, lease=0.3)
    await a.start()
    await b.start()
    at = {"alice": (40, 2), "bob": (7, 1)}
    a.positions = lambda: dict(at)
    try:
        assert await a.acquire(cid, "alice") is None
        assert await a.acquire(bob, "bob") is None
        assert a.resume("alice") is None  # a free lease: nothing to number on from
        await a.beat()
        assert await leases.position(db, cid) == leases.Position("a", 40, 2)
        at["alice"] = (41, 2)
        await a.beat()
        assert await leases.position(db, cid) == leases.Position("a", 41, 2)
        assert await a.acquire(cid, "alice") is None and a.resume("alice") is None  # its own
        await a.release("bob")  # bob's broadcast ended: his next one starts afresh anywhere
        assert await b.acquire(bob, "bob") is None and b.resume("bob") is None
        await asyncio.sleep(0.35)  # A stops beating (killed): its lease expires
        assert await b.acquire(cid, "alice") is None
        assert b.resume("alice") == (41 + RESUME_MSN_MARGIN, 3)
        assert b.resume("alice") is None  # once
    finally:
        await a.stop()
        await b.stop()


async def test_node_locates_other_holders_from_its_heartbeat_and_ends_lost_channels(
    db: Database, other: Database
) -> None:
    cid = await channel(db, "alice")
    a = ClusterNode(db, "a", "http://a.test:1/", heartbeat=0.05, lease=0.5)
    b = ClusterNode(other, "b", "http://b.test:2", heartbeat=0.05, lease=0.5)
    await a.start()
    await b.start()
    lost: list[str] = []

    async def on_lost(name: str) -> None:
        lost.append(name)

    b.on_lost = on_lost
    try:
        assert await b.acquire(cid, "alice") is None
        assert await a.acquire(cid, "alice") == "b"
        await asyncio.sleep(0.1)  # A's next heartbeat reads the table
        assert await a.locate("alice") == "http://b.test:2"
        assert await b.locate("alice") is None  # held here: served here
        assert await a.locate("../etc") is None
        await asyncio.sleep(0.7)  # beats keep renewing past the lease
        assert await a.acquire(cid, "alice") == "b"
        assert a.peer_origins == ("http://b.test:2",)
        await b.release("alice")
        assert await a.locate("alice") == "http://b.test:2"  # until A's next heartbeat
        await asyncio.sleep(0.2)
        assert await a.locate("alice") is None
        # B holds it again, but stalls (no beats) past the lease: A takes it, B hears of it
        assert await b.acquire(cid, "alice") is None
        assert b._task is not None
        b._task.cancel()
        await asyncio.sleep(0.6)
        assert await a.acquire(cid, "alice") is None
        await b.beat()
        assert lost == ["alice"] and cid not in b.held
    finally:
        await a.stop()
        await b.stop()
    assert await leases.node_rows(db) == []
    assert await leases.holder(db, "alice", 0.0) is None


async def test_a_node_id_in_use_by_a_running_node_is_refused(db: Database, other: Database) -> None:
    a = ClusterNode(db, "same", "http://a.test:1", heartbeat=0.05, lease=0.3)
    await a.start()
    try:  # a live process on this host: refused at once
        with pytest.raises(NodeIdInUseError, match="in use by another running node"):
            await ClusterNode(other, "same", "http://b.test:2", heartbeat=0.05, lease=0.3).start()
    finally:
        await a.stop()
    # from another host: its heartbeat is watched, and advances
    remote = ClusterNode(db, "far", "http://r.test:1", heartbeat=0.05, lease=0.3)
    remote.incarnation = "elsewhere.test/1/abcd"
    await remote.start()
    try:
        with pytest.raises(NodeIdInUseError, match=r"a node on elsewhere\.test"):
            await ClusterNode(other, "far", "http://b.test:2", heartbeat=0.05, lease=0.3).start()
    finally:
        await remote.stop()


async def test_a_crashed_nodes_fresh_row_does_not_stop_its_successor(
    db: Database, other: Database
) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    now = time.time()
    await leases.register_node(
        db, "here", "http://a.test:1", f"{platform.node()}/{dead.pid}/x", now
    )
    t0 = time.monotonic()
    successor = ClusterNode(other, "here", "http://a.test:1", heartbeat=0.05, lease=0.3)
    await successor.start()
    assert time.monotonic() - t0 < 0.2  # same host, process gone: no wait
    await successor.stop()
    # another host's row that stops beating: the successor waits, then starts
    await leases.register_node(db, "far", "http://a.test:1", "elsewhere.test/1/x", time.time())
    t0 = time.monotonic()
    successor = ClusterNode(other, "far", "http://a.test:1", heartbeat=0.05, lease=0.3)
    await successor.start()
    assert time.monotonic() - t0 >= 0.15
    await successor.stop()


@pytest.fixture
async def two_hubs(
    tmp_path: Path, db: Database, other: Database
) -> AsyncIterator[list[tuple[IngestHub, ClusterNode]]]:
    """Two nodes' ingest hubs, each on its own connection to one file, with their leases."""
    pairs = []
    for name, conn in (("a", db), ("b", other)):
        node_ = ClusterNode(conn, name, f"http://{name}.test:1", heartbeat=0.05, lease=0.3)
        await node_.start()
        settings = Settings(data_dir=tmp_path, reconnect_grace=0.5)
        hub = IngestHub(conn, HlsRegistry(HlsSettings()), settings, leases=node_)
        node_.on_lost = hub.lease_lost
        hub.start()
        pairs.append((hub, node_))
    yield pairs
    for hub, node_ in pairs:
        await hub.stop()
        await node_.stop()


async def test_hubs_on_two_nodes_take_give_up_and_lose_a_channel(
    db: Database, two_hubs: list[tuple[IngestHub, ClusterNode]]
) -> None:
    (hub_a, node_a), (hub_b, node_b) = two_hubs
    assert node_a.held == {} and node_b.held == {}
    _, key = await create_user(db, "dana", "dana@example.test", "x")
    pa, pb = Peer("a-encoder"), Peer("b-encoder")
    first = await hub_a.begin(key, pa)
    assert isinstance(first, Broadcast)
    assert await hub_b.begin(key, pb) == ALREADY_LIVE  # as a second publisher on one node
    assert await leases.holder(db, "dana", time.time()) == leases.Holder("a", "http://a.test:1")
    await hub_a.unpublished(first, pa)  # the end gives the lease up at once
    assert await leases.holder(db, "dana", time.time()) is None
    second = await hub_b.begin(key, pb)
    assert isinstance(second, Broadcast)
    # B stalls past its lease; A takes the channel; B's next heartbeat ends its broadcast
    assert node_b._task is not None
    node_b._task.cancel()
    await asyncio.sleep(0.4)
    pa2 = Peer("a-encoder-again")
    third = await hub_a.begin(key, pa2)
    assert isinstance(third, Broadcast)
    await node_b.beat()
    assert pb.kicked == "taken by another node" and "dana" not in hub_b.live
    assert "dana" in hub_a.live and pa2.kicked is None
    channel_row = await get_channel(db, "dana")
    assert channel_row is not None and channel_row.live  # A's broadcast, still open
    rows = await db.fetchall("SELECT end_reason FROM broadcast_sessions ORDER BY id")
    assert [r[0] for r in rows] == ["unpublished", "superseded", None]


def test_node_settings_and_their_defaults(tmp_path: Path) -> None:
    for bad in ({"node_id": "a b"}, {"node_id": "x" * 65}, {"node_id": ""}):
        with pytest.raises(ConfigError, match="node_id"):
            Settings(data_dir=tmp_path, **bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="node_url"):
        Settings(data_dir=tmp_path, node_url="ftp://a")
    with pytest.raises(ConfigError, match="node_heartbeat"):
        Settings(data_dir=tmp_path, node_heartbeat=5.0, node_lease=5.0)
    assert node_id_from(Settings(data_dir=tmp_path, node_id="edge-1.a_b")) == "edge-1.a_b"
    made = node_id_from(Settings(data_dir=tmp_path))
    assert made.startswith(platform.node()[:10]) or made.startswith("node-")
    assert (tmp_path / "node-id").read_text().strip() == made
    assert node_id_from(Settings(data_dir=tmp_path)) == made  # stable across starts
    assert node_url_from(Settings(data_dir=tmp_path, node_url="http://n:1/")) == "http://n:1"
    public = Settings(data_dir=tmp_path, public_url="https://tv.example.test")
    assert node_url_from(public) == "https://tv.example.test"
    assert node_url_from(Settings(data_dir=tmp_path, http="127.0.0.1:8123")) == (
        "http://127.0.0.1:8123"
    )
    assert node_url_from(Settings(data_dir=tmp_path, http="0.0.0.0:80")) == (
        f"http://{platform.node()}:80"
    )


async def test_a_pruned_row_comes_back_with_the_next_heartbeat(db: Database) -> None:
    """A stalled node whose row a starting node pruned writes it again and goes on."""
    cid = await channel(db, "alice")
    await node(db, "a", 100.0)
    await leases.acquire(db, cid, "alice", "a", 100.0, TTL)
    await leases.close_orphans(db, "b", 120.0, TTL)  # B starts while A is stalled
    assert await leases.node_rows(db) == []
    renewal = await leases.renew(db, "a", URL_A, "i", {cid: "alice"}, 121.0, TTL)
    assert renewal.owned and not renewal.lost  # its expired lease was deleted: free, retaken
    assert await leases.node_rows(db) == [("a", URL_A, 121.0, "i")]
    assert await leases.holder(db, "alice", 121.0) == leases.Holder("a", URL_A)


async def test_an_idle_lease_goes_to_the_next_publish_anywhere(db: Database) -> None:
    cid = await channel(db, "alice")
    await node(db, "a", 100.0)
    await leases.acquire(db, cid, "alice", "a", 100.0, TTL)
    await leases.idle(db, cid, "b")  # only the holder marks it
    assert await leases.acquire(db, cid, "alice", "b", 101.0, TTL) == "a"
    await leases.idle(db, cid, "a")  # A's publisher dropped: the grace runs there
    assert await leases.holder(db, "alice", 101.0) is not None  # still routed to A
    assert await leases.acquire(db, cid, "alice", "b", 101.0, TTL) is None
    assert await leases.acquire(db, cid, "alice", "a", 102.0, TTL) == "b"  # B's is publishing
    renewal = await leases.renew(db, "a", URL_A, "i", {cid: "alice"}, 103.0, TTL)
    assert renewal.lost == frozenset({cid})


async def test_a_publisher_that_drops_may_come_back_on_another_node(
    db: Database, two_hubs: list[tuple[IngestHub, ClusterNode]]
) -> None:
    (hub_a, node_a), (hub_b, _) = two_hubs
    _, key = await create_user(db, "erin", "erin@example.test", "x")
    pa = Peer("a-encoder")
    first = await hub_a.begin(key, pa)
    assert isinstance(first, Broadcast)
    await hub_a.publisher_gone(first, pa, "connection reset")  # grace 0.5 s starts on A
    assert "erin" in hub_a.live
    second = await hub_b.begin(key, Peer("b-encoder"))  # at once, not after the grace
    assert isinstance(second, Broadcast)
    # the encoder comes back to A within A's grace: refused there, A's broadcast ends
    assert await hub_a.begin(key, Peer("a-again")) == ALREADY_LIVE
    assert "erin" not in hub_a.live and "erin" in hub_b.live
    assert not node_a.held
    row = await get_channel(db, "erin")
    assert row is not None and row.live


async def test_a_channel_released_during_a_heartbeat_is_not_taken_again(db: Database) -> None:
    """The broadcast ends while a beat is under way: the beat must not take back the lease
    the end just gave up (another node could not publish the channel until the next beat)."""
    cid = await channel(db, "frank")
    a = ClusterNode(db, "a", "http://a.test:1", heartbeat=60, lease=TTL)
    await a.start()
    try:
        assert await a.acquire(cid, "frank") is None
        ending = asyncio.create_task(a.release("frank"))  # runs at the beat's first await
        await a.beat()
        await ending
        assert await leases.holder(db, "frank", time.time()) is None
        assert await leases.acquire(db, cid, "frank", "b", time.time(), TTL) is None
    finally:
        await a.stop()


async def test_a_heartbeat_reads_the_other_nodes_and_their_channels(db: Database) -> None:
    cid = await channel(db, "gina")
    await channel(db, "hugo")
    for name in ("a", "b", "c"):
        await node(db, name, 100.0)
    await leases.acquire(db, cid, "gina", "b", 100.0, TTL)
    found = await leases.others(db, "a", 101.0)
    assert [p[0] for p in found.peers] == ["b", "c"]  # a node without a channel is a peer too
    assert found.routes == {"gina": "http://b.test:8000"}
    assert (await leases.others(db, "a", 100.0 + TTL)).routes == {}  # expired: routed nowhere
    assert (await leases.others(db, "b", 101.0)).routes == {}  # its own channel is not a route


async def test_a_node_warns_at_start_up_when_another_node_has_its_url(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await node(db, "b", time.time())  # URL http://b.test:8000
    a = ClusterNode(db, "a", "http://b.test:8000/", heartbeat=60, lease=TTL)
    with caplog.at_level("WARNING", logger="kitch"):
        await a.start()
    await a.stop()
    assert "node b has the same URL http://b.test:8000 as this node a" in caplog.text
