"""The parts of the fan-out that need no Redis: a room replaying another node's decisions, and
viewer counts summed with the other nodes'."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from kitch.api.events import LIVE_GRACE, Events
from kitch.api.viewers import ViewerCounter
from kitch.chat import Broadcast, Chatter, Room, RoomState, Store, message_data
from kitch.cluster.fanout import Fanout
from kitch.config import ConfigError, load_settings

OWNER = Chatter(1, "streamer", "Streamer")
ALICE = Chatter(3, "alice", "Alice")
BOB = Chatter(4, "bob", "Bob")
T0 = 1_000_000.0


def twin_rooms() -> tuple[Room, Room]:
    ids = itertools.count(1)
    return tuple(  # type: ignore[return-value]
        Room(RoomState("streamer", 10, OWNER.id), ids.__next__) for _ in range(2)
    )


def replay_all(events: list[Any], into: Room) -> None:
    """What a node does with another node's payload: replay the state, as published."""
    for event in events:
        if isinstance(event, Store) and event.kind != "audit":
            data = event.data
            if event.kind == "message":
                data = {"message": message_data(data["message"])}
            into.replay(event.kind, data)


def test_a_replayed_room_decides_as_the_deciding_one() -> None:
    a, b = twin_rooms()
    replay_all(a.say(ALICE, "hello", T0), b)
    assert [m.text for m in b.history] == ["hello"]
    replay_all(a.mode(OWNER, 10, None, T0), b)
    assert (b.slow, b.followers_only) == (10, None)
    replay_all(a.set_blocked_terms(OWNER, ["Spoiler"], T0), b)
    assert b.blocked_terms == ["spoiler"]
    replay_all(a.appoint(OWNER, BOB, True, T0), b)
    assert b.privileged(BOB)
    replay_all(a.timeout(OWNER, ALICE, 60, "calm", T0), b)
    assert b.say(ALICE, "again", T0 + 1)[0].frame["code"] == "timed_out"
    replay_all(a.unban(OWNER, ALICE, T0 + 2), b)
    assert isinstance(b.say(ALICE, "back", T0 + 40)[0], Broadcast)
    replay_all(a.ban(OWNER, ALICE, "spam", T0 + 41), b)
    assert b.say(ALICE, "still", T0 + 100)[0].frame["code"] == "banned"
    first = a.history[0].id
    replay_all(a.delete(OWNER, first, T0, ALICE), b)
    assert first not in [m.id for m in b.history]
    replay_all(a.clear(OWNER, T0), b)
    assert not b.history
    replay_all(a.appoint(OWNER, BOB, False, T0), b)
    assert not b.privileged(BOB)


def test_a_message_replayed_again_moves_to_the_end_once() -> None:
    a, _ = twin_rooms()
    first = a.say(ALICE, "one", T0)
    a.say(BOB, "two", T0)
    # its own message comes back from Redis after the other's: the history follows delivery
    replay_all(first, a)
    assert [m.text for m in a.history] == ["two", "one"]


def test_viewer_counts_add_the_other_nodes() -> None:
    counter = ViewerCounter(30.0)
    scope = {"client": ("10.0.0.1", 1), "headers": [(b"user-agent", b"x")]}
    counter.seen("alice", scope)
    counter.chat_opened("bob", scope)
    assert counter.local_counts() == {"alice": 1, "bob": 1}
    others = {"alice": 4, "carol": 2}
    counter.remote = lambda name: others.get(name, 0)
    assert (counter.count("alice"), counter.count("bob"), counter.count("carol")) == (5, 1, 2)
    assert counter.local_counts() == {"alice": 1, "bob": 1}  # what this node reports: its own


def test_live_channels_of_other_nodes_are_reconciled() -> None:
    t = time.monotonic()  # the clock LiveChannel.since is read from
    events = Events()
    fanout = Fanout("redis://127.0.0.1:1/0")
    events.attach(fanout)
    fanout.connected, fanout.exchanged_at = True, t
    fanout.remote_live = {"alice": [7, "title", "games"]}
    fanout.remote_viewers = {"alice": 4}
    # a channel live on another node since before this node started: learnt from the lists
    events.reconcile(t + 1)
    assert events.viewer_count("alice") == 4 and not events.live["alice"].local
    # its node stops listing it (the node died): offline here once the grace is over
    fanout.remote_live = {}
    events.reconcile(t + 1)
    assert "alice" in events.live
    events.live["alice"].since -= LIVE_GRACE + 1
    fanout.exchanged_at = t + 2
    events.reconcile(t + 2)
    assert events.viewer_count("alice") is None
    # an offline received through Redis is not undone by a list that still names the broadcast
    fanout.remote_live = {"alice": [8, "again", "games"]}
    events.reconcile(t + 2)
    assert events.live["alice"].broadcast_id == 8
    events._went_offline("alice", 8)
    events.reconcile(t + 2)
    assert "alice" not in events.live
    # stale lists (Redis away, or not read lately) change nothing
    fanout.remote_live = {"bob": [9, "", ""]}
    events.reconcile(t + 2 + 3 * events.tick)
    assert "bob" not in events.live
    # this node's own live channels are what it writes for the others
    events._went_live("carol", 10, "mine", "", [], True)
    assert fanout.local_live is not None and fanout.local_live() == {"carol": [10, "mine", ""]}


def test_the_redis_setting() -> None:
    assert load_settings(env={}, dotenv=None).redis is None  # one node alone
    found = load_settings(env={"KITCH_REDIS": "redis://10.0.0.5:6379/2"}, dotenv=None)
    assert found.redis == "redis://10.0.0.5:6379/2"
    cli = load_settings({"redis": "rediss://cache:6380/0"}, env={"KITCH_REDIS": "x"}, dotenv=None)
    assert cli.redis == "rediss://cache:6380/0"  # the flag wins
    with pytest.raises(ConfigError, match="redis"):
        load_settings(env={"KITCH_REDIS": "http://10.0.0.5:6379"}, dotenv=None)
    with pytest.raises(ConfigError, match="bad port"):
        load_settings(env={"KITCH_REDIS": "redis://10.0.0.5:sixty/0"}, dotenv=None)


def test_the_logged_url_hides_the_password() -> None:
    assert Fanout("redis://:s3cret@cache:6379/0").shown == "redis://***@cache:6379/0"
    assert Fanout("rediss://kitch:s3cret@cache/1").shown == "rediss://***@cache/1"
    assert Fanout("redis://cache:6379/0").shown == "redis://cache:6379/0"
