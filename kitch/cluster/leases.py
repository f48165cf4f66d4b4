"""Channel leases in the shared database: which node a live channel lives on.

A channel is live on at most one node: the one holding its row in ``channel_leases`` until
``expires_at``. A node takes the lease when a publish starts a broadcast (free, expired, or
already its own), renews all of its leases with every heartbeat, and deletes one when the
broadcast ends (all of them at a clean shutdown). A killed node's leases simply expire, so
another node may take its channels a lease period later. See docs/CLUSTER.md, "Nodes".

Plain functions over :class:`~kitch.db.Database`, in portable SQL (SQLite and PostgreSQL):
every time is Unix seconds passed in by the caller (``now``), never the database's clock, and
each decision is one statement (``INSERT .. ON CONFLICT DO UPDATE .. WHERE``), atomic on both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kitch.db import Database, Transaction

__all__ = [
    "Holder",
    "Others",
    "Position",
    "Renewal",
    "acquire",
    "close_orphans",
    "holder",
    "idle",
    "node_rows",
    "others",
    "position",
    "register_node",
    "release",
    "release_node",
    "renew",
]


@dataclass(frozen=True, slots=True)
class Holder:
    """The node holding a channel's lease: its id and URL."""

    node_id: str
    url: str


@dataclass(frozen=True, slots=True)
class Position:
    """Where a channel's HLS numbering stood at its holder's last heartbeat: the next media
    sequence number and the discontinuity sequence a broadcast replacing it should use."""

    node_id: str
    next_msn: int
    discontinuity_sequence: int


@dataclass(frozen=True, slots=True)
class Renewal:
    """What a heartbeat found: ``owned`` False when another process now writes this node's row
    (the same node id started twice); ``lost``: channel ids whose lease another node took."""

    owned: bool
    lost: frozenset[int]


#: Take a lease (channel id, name, node, expiry, now) if it is free, expired, the node's own, or
#: its holder's publisher is gone: one statement, so two nodes racing cannot both win (a row
#: count of 1 means taken).
_TAKE = (
    "INSERT INTO channel_leases (channel_id, channel, node_id, expires_at, publishing) "
    "VALUES (?, ?, ?, ?, 1) ON CONFLICT (channel_id) DO UPDATE SET "
    "channel = excluded.channel, node_id = excluded.node_id, expires_at = excluded.expires_at, "
    "publishing = 1 "
    "WHERE channel_leases.node_id = excluded.node_id OR channel_leases.expires_at <= ? "
    "OR channel_leases.publishing = 0"
)


async def acquire(
    db: Database, channel_id: int, channel: str, node_id: str, now: float, ttl: float
) -> str | None:
    """Take the channel's lease for ``node_id`` until ``now + ttl`` if it is free, expired,
    already this node's, or its holder's publisher is gone (:func:`idle`); it is marked
    publishing. Returns None when taken, else the id of the node holding it."""
    async with db.transaction() as tx:
        _, taken = await tx.execute(_TAKE, (channel_id, channel, node_id, now + ttl, now))
        if taken:
            return None
        row = await tx.fetchone(
            "SELECT node_id FROM channel_leases WHERE channel_id = ?", (channel_id,)
        )
    return str(row[0]) if row is not None else "?"


async def position(db: Database, channel_id: int) -> Position | None:
    """The channel's lease row as its holder last wrote it (expired or not), if any."""
    row = await db.fetchone(
        "SELECT node_id, next_msn, discontinuity_sequence FROM channel_leases WHERE channel_id = ?",
        (channel_id,),
    )
    return None if row is None else Position(str(row[0]), int(row[1]), int(row[2]))


async def idle(db: Database, channel_id: int, node_id: str) -> None:
    """The holder's publisher is gone (its broadcast waits out the reconnect grace): the lease
    stays (the channel is still served there) but any node may take it for a new publish."""
    await db.execute(
        "UPDATE channel_leases SET publishing = 0 WHERE channel_id = ? AND node_id = ?",
        (channel_id, node_id),
    )


async def release(db: Database, channel_id: int, node_id: str) -> None:
    """Give the channel's lease up (only if ``node_id`` still holds it)."""
    await db.execute(
        "DELETE FROM channel_leases WHERE channel_id = ? AND node_id = ?", (channel_id, node_id)
    )


async def register_node(db: Database, node_id: str, url: str, incarnation: str, now: float) -> None:
    """Write this node's row (URL, heartbeat, the running process's ``incarnation``)."""
    await db.execute(
        "INSERT INTO nodes (id, url, heartbeat_at, started_at, incarnation) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET url = excluded.url, "
        "heartbeat_at = excluded.heartbeat_at, started_at = excluded.started_at, "
        "incarnation = excluded.incarnation",
        (node_id, url, now, now, incarnation),
    )


async def node_rows(db: Database) -> list[tuple[str, str, float, str]]:
    """Every node row: (id, url, heartbeat_at, incarnation)."""
    rows = await db.fetchall("SELECT id, url, heartbeat_at, incarnation FROM nodes ORDER BY id")
    return [(str(r[0]), str(r[1]), float(r[2]), str(r[3])) for r in rows]


async def renew(
    db: Database,
    node_id: str,
    url: str,
    incarnation: str,
    held: Mapping[int, str],
    now: float,
    ttl: float,
    positions: Mapping[int, tuple[int, int]] | None = None,
) -> Renewal:
    """One heartbeat: the node row's ``heartbeat_at`` (the row is written
    again if a starting node pruned it while this one was stalled), then every lease
    ``node_id`` holds extended to ``now + ttl``. Leases of this node that it does not hold
    (``held``: the channels live here, id -> name, read as each step needs it, so that a
    channel given up during the beat is not taken again) are deleted; a ``held`` channel whose lease
    is gone (this node was stalled past it) is taken again if still free, and reported lost if
    another node has it. ``positions`` (channel id -> next media sequence number, discontinuity
    sequence) are written to the leases of those held channels. If another process has taken
    this node's row (another incarnation), nothing is written.

    The usual beat (the row is this process's and the leases found are exactly those held) is
    two or three single statements rather than a transaction: each touches only this node's
    rows and is atomic alone, and a transaction costs two more round trips to the database
    (on SQLite, each a hop to its thread: ~0.15 ms of CPU). Anything else is settled in the
    transaction."""
    node_row = (now, node_id, incarnation)
    _, mine = await db.execute(_BEAT, node_row)
    if mine:
        rows = await db.fetchall(_EXTEND, (now + ttl, node_id))
        if {int(r[0]) for r in rows} == held.keys():
            await _write_positions(db, node_id, held, set(), positions)
            return Renewal(True, frozenset())
    async with db.transaction() as tx:
        _, mine = await tx.execute(_BEAT, node_row)
        if not mine:
            row = await tx.fetchone("SELECT incarnation FROM nodes WHERE id = ?", (node_id,))
            if row is not None:
                return Renewal(False, frozenset())
            await tx.execute(
                "INSERT INTO nodes (id, url, heartbeat_at, started_at, incarnation) "
                "VALUES (?, ?, ?, ?, ?)",
                (node_id, url, now, now, incarnation),
            )
        rows = await tx.fetchall(_EXTEND, (now + ttl, node_id))
        found = {int(r[0]) for r in rows}
        for stray in sorted(found - held.keys()):
            await tx.execute(
                "DELETE FROM channel_leases WHERE channel_id = ? AND node_id = ?",
                (stray, node_id),
            )
        lost = set()
        for missing in sorted(held.keys() - found):
            name = held.get(missing)
            if name is None:  # given up meanwhile (``held`` may be the node's own, live)
                continue
            _, taken = await tx.execute(_TAKE, (missing, name, node_id, now + ttl, now))
            if not taken:
                lost.add(missing)
        await _write_positions(tx, node_id, held, lost, positions)
    return Renewal(True, frozenset(lost))


#: A heartbeat of this process's node row (now, node id, incarnation): 0 rows when the row is
#: gone or another process's.
_BEAT = "UPDATE nodes SET heartbeat_at = ? WHERE id = ? AND incarnation = ?"
#: Extend every lease of a node (expiry, node id); the channel ids extended come back.
_EXTEND = "UPDATE channel_leases SET expires_at = ? WHERE node_id = ? RETURNING channel_id"


async def _write_positions(
    tx: Database | Transaction,
    node_id: str,
    held: Mapping[int, str],
    lost: set[int],
    positions: Mapping[int, tuple[int, int]] | None,
) -> None:
    for channel_id, (msn, discontinuity) in sorted((positions or {}).items()):
        if channel_id in held and channel_id not in lost:
            await tx.execute(
                "UPDATE channel_leases SET next_msn = ?, discontinuity_sequence = ? "
                "WHERE channel_id = ? AND node_id = ?",
                (msn, discontinuity, channel_id, node_id),
            )


async def release_node(db: Database, node_id: str, incarnation: str) -> None:
    """A clean shutdown: every lease of ``node_id`` goes, and its row (if still this
    incarnation's)."""
    async with db.transaction() as tx:
        await tx.execute("DELETE FROM channel_leases WHERE node_id = ?", (node_id,))
        await tx.execute(
            "DELETE FROM nodes WHERE id = ? AND incarnation = ?", (node_id, incarnation)
        )


async def holder(db: Database, channel: str, now: float) -> Holder | None:
    """The node whose lease on ``channel`` (by name) has not expired at ``now``, if any."""
    row = await db.fetchone(
        "SELECT l.node_id, n.url FROM channel_leases l JOIN nodes n ON n.id = l.node_id "
        "WHERE l.channel = ? AND l.expires_at > ?",
        (channel, now),
    )
    return Holder(str(row[0]), str(row[1])) if row is not None else None


@dataclass(frozen=True, slots=True)
class Others:
    """The other nodes as one heartbeat reads them: ``peers``, each node other than the
    reader with its URL and ``heartbeat_at``; ``routes``, every channel such a node holds (an
    unexpired lease): name -> that node's URL."""

    peers: tuple[tuple[str, str, float], ...]
    routes: dict[str, str]


async def others(db: Database, node_id: str, now: float) -> Others:
    """The nodes other than ``node_id`` and the channels they hold at ``now``, in one query
    (it runs at every heartbeat of every node)."""
    rows = await db.fetchall(
        "SELECT n.id, n.url, n.heartbeat_at, l.channel FROM nodes n "
        "LEFT JOIN channel_leases l ON l.node_id = n.id AND l.expires_at > ? "
        "WHERE n.id <> ? ORDER BY n.id",
        (now, node_id),
    )
    peers: dict[str, tuple[str, str, float]] = {}
    routes = {}
    for r in rows:
        peers.setdefault(str(r[0]), (str(r[0]), str(r[1]), float(r[2])))
        if r[3] is not None:
            routes[str(r[3])] = str(r[1])
    return Others(tuple(peers.values()), routes)


async def close_orphans(db: Database, node_id: str, now: float, ttl: float) -> int:
    """At a node's start-up: its own leases from an earlier run and every expired lease go,
    and the rows of nodes silent for longer than a lease (``ttl``); then the broadcast sessions
    left open (by a crash) on channels that no node holds now are closed (ended at their last
    stats time, reason ``server_restart``) and those channels marked offline. Channels live on
    another running node are left alone. Returns how many sessions were closed."""
    async with db.transaction() as tx:
        await tx.execute(
            "DELETE FROM channel_leases WHERE node_id = ? OR expires_at <= ?", (node_id, now)
        )
        await tx.execute(
            "DELETE FROM nodes WHERE id <> ? AND heartbeat_at <= ?", (node_id, now - ttl)
        )
        _, closed = await tx.execute(
            "UPDATE broadcast_sessions SET ended_at = CASE WHEN stats_updated_at > started_at "
            "THEN stats_updated_at ELSE started_at END, end_reason = 'server_restart' "
            "WHERE ended_at IS NULL AND channel_id NOT IN (SELECT channel_id FROM channel_leases)"
        )
        await tx.execute(
            "UPDATE channels SET live = 0 WHERE live = 1 "
            "AND id NOT IN (SELECT channel_id FROM channel_leases)"
        )
    return closed
