"""The chat room's rules on a fake clock (no sockets, no database)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from kitch.chat import Broadcast, Chatter, Event, Kick, Reply, Role, Room, RoomState, Store
from kitch.chat.room import normalise_text

OWNER = Chatter(1, "streamer", "Streamer")
MOD = Chatter(2, "mod", "Mod")
MOD2 = Chatter(5, "mod2", "Mod2")
ALICE = Chatter(3, "alice", "Alice")
BOB = Chatter(4, "bob", "Bob")
ADMIN = Chatter(9, "admin", "Admin", is_admin=True)
T0 = 1_000_000.0


def room(**changes: Any) -> Room:
    state = RoomState("streamer", 10, OWNER.id, moderators={MOD.id, MOD2.id})
    for key, value in changes.items():
        setattr(state, key, value)
    return Room(state, itertools.count(1).__next__)


def errors(events: list[Event]) -> list[dict[str, Any]]:
    return [e.frame for e in events if isinstance(e, Reply) and e.frame["type"] == "error"]


def code(events: list[Event]) -> str | None:
    found = errors(events)
    return found[0]["code"] if found else None


def broadcasts(events: list[Event]) -> list[dict[str, Any]]:
    return [e.frame for e in events if isinstance(e, Broadcast)]


def stores(events: list[Event]) -> list[str]:
    return [e.kind for e in events if isinstance(e, Store)]


def test_roles() -> None:
    r = room()
    assert r.role(None) is Role.ANONYMOUS
    assert r.role(ALICE) is Role.VIEWER
    assert r.role(MOD) is Role.MODERATOR
    assert r.role(OWNER) is Role.BROADCASTER
    assert r.role(ADMIN) is Role.MODERATOR
    assert r.welcome(ALICE)["you"] == {"user": "alice", "role": "viewer", "color": ALICE.color}


def test_say_broadcasts_and_stores() -> None:
    r = room()
    events = r.say(ALICE, "hello", T0)
    [frame] = broadcasts(events)
    assert frame["type"] == "message" and frame["id"] == 1 and frame["text"] == "hello"
    assert frame["user"] == {
        "name": "alice",
        "display_name": "Alice",
        "color": ALICE.color,
        "role": "viewer",
    }
    assert frame["ts"] == T0
    assert stores(events) == ["message"]
    assert [m.id for m in r.history] == [1]


def test_anonymous_cannot_say() -> None:
    assert code(room().say(None, "hi", T0, nonce="n1")) == "auth_required"
    assert errors(room().say(None, "hi", T0, nonce="n1"))[0]["nonce"] == "n1"


def test_normalisation() -> None:
    assert normalise_text("e\u0301") == "\u00e9"  # NFC
    assert normalise_text("a\x00b\x07c\u202edef\u2066") == "abcdef"
    assert normalise_text("  line\nbreak\t ") == "line break"
    assert normalise_text("👍\u200d") == "👍\u200d"  # joiners stay (emoji sequences)
    r = room()
    assert code(r.say(ALICE, " \x00\u202e ", T0)) == "empty"
    assert code(r.say(ALICE, "x" * 501, T0)) == "too_long"
    assert broadcasts(r.say(ALICE, "x" * 500, T0))
    assert code(r.say(ALICE, 5, T0 + 1)) == "bad_frame"


def test_rate_limit_viewer_and_retry_after() -> None:
    r = room()
    for i in range(20):
        assert broadcasts(r.say(ALICE, f"m{i}", T0 + i * 0.5)), i
    refused = errors(r.say(ALICE, "one more", T0 + 10))
    assert refused[0]["code"] == "rate_limited"
    assert refused[0]["retry_after"] == pytest.approx(20.0)
    assert code(r.say(ALICE, "later", T0 + 30.01)) is None  # the first left the window


def test_rate_limit_privileged() -> None:
    for who in (MOD, OWNER):
        r = room()
        for i in range(100):
            assert broadcasts(r.say(who, f"m{i}", T0 + i * 0.1)), i
        assert code(r.say(who, "over", T0 + 11)) == "rate_limited"


def test_refused_messages_do_not_count() -> None:
    r = room()
    for i in range(40):
        r.say(ALICE, "x" * 600, T0 + i * 0.1)
    assert code(r.say(ALICE, "fine", T0 + 5)) is None


def test_duplicate_guard() -> None:
    r = room()
    assert code(r.say(ALICE, "same", T0)) is None
    assert code(r.say(ALICE, "SAME", T0 + 5)) == "duplicate"
    assert code(r.say(BOB, "same", T0 + 5)) is None  # another user
    assert code(r.say(ALICE, "same", T0 + 30.5)) is None


def test_slow_mode_and_bypass() -> None:
    r = room(slow=10)
    assert code(r.say(ALICE, "a", T0)) is None
    refused = errors(r.say(ALICE, "b", T0 + 4))
    assert refused[0]["code"] == "slow_mode" and refused[0]["retry_after"] == pytest.approx(6)
    assert code(r.say(ALICE, "c", T0 + 10)) is None
    assert code(r.say(MOD, "a", T0)) is None and code(r.say(MOD, "b", T0 + 1)) is None
    assert code(r.say(OWNER, "a", T0)) is None and code(r.say(OWNER, "b", T0 + 1)) is None


def test_followers_only() -> None:
    r = room(followers_only=600)
    assert r.needs_follow_age(ALICE) and not r.needs_follow_age(MOD)
    assert not r.needs_follow_age(OWNER)
    assert code(r.say(ALICE, "a", T0, followed_at=None)) == "followers_only"
    young = errors(r.say(ALICE, "a", T0, followed_at=T0 - 100))
    assert young[0]["code"] == "followers_only" and young[0]["retry_after"] == pytest.approx(500)
    assert code(r.say(ALICE, "a", T0, followed_at=T0 - 600)) is None
    assert code(r.say(MOD, "a", T0)) is None  # moderators bypass
    zero = room(followers_only=0)
    assert code(zero.say(ALICE, "a", T0, followed_at=T0)) is None


def test_mode_changes() -> None:
    r = room()
    assert code(r.mode(ALICE, 10, None, T0)) == "forbidden"
    assert code(r.mode(MOD, 2, None, T0)) == "bad_frame"
    assert code(r.mode(MOD, 121, None, T0)) == "bad_frame"
    assert code(r.mode(MOD, 0, -1, T0)) == "bad_frame"
    events = r.mode(MOD, 30, 3600, T0)
    assert broadcasts(events) == [{"type": "mode", "slow": 30, "followers_only": 3600}]
    assert stores(events) == ["settings", "audit"]
    assert r.welcome(None)["room"] == {"channel": "streamer", "slow": 30, "followers_only": 3600}


def test_timeout() -> None:
    r = room()
    assert code(r.timeout(ALICE, BOB, 60, "", T0)) == "forbidden"
    assert code(r.timeout(MOD, BOB, 0, "", T0)) == "bad_frame"
    assert code(r.timeout(MOD, BOB, 14 * 24 * 3600 + 1, "", T0)) == "bad_frame"
    events = r.timeout(MOD, BOB, 60, "spam", T0)
    assert broadcasts(events) == [
        {"type": "timeout", "user": "bob", "until": T0 + 60, "seconds": 60, "reason": "spam"}
    ]
    assert not [e for e in events if isinstance(e, Kick)]  # the broadcast tells them
    assert stores(events) == ["ban", "audit"]
    refused = errors(r.say(BOB, "hi", T0 + 10))
    assert refused[0]["code"] == "timed_out" and refused[0]["retry_after"] == pytest.approx(50)
    assert code(r.say(BOB, "hi", T0 + 60)) is None  # over


def test_ban_unban() -> None:
    r = room()
    events = r.ban(MOD, BOB, "rude", T0)
    assert broadcasts(events) == [{"type": "ban", "user": "bob", "reason": "rude"}]
    assert [e for e in events if isinstance(e, Kick)] == [Kick(BOB.id, None, close=True)]
    assert code(r.say(BOB, "hi", T0 + 10**6)) == "banned"
    assert code(r.unban(ALICE, BOB, T0)) == "forbidden"
    assert broadcasts(r.unban(MOD, BOB, T0)) == [{"type": "unban", "user": "bob"}]
    assert code(r.unban(MOD, BOB, T0)) == "not_banned"
    assert code(r.say(BOB, "hi", T0 + 1)) is None


def test_moderators_cannot_act_against_broadcaster_or_moderators() -> None:
    r = room()
    assert code(r.ban(MOD, OWNER, "", T0)) == "forbidden"
    assert code(r.timeout(MOD, MOD2, 10, "", T0)) == "forbidden"
    assert code(r.ban(MOD, MOD2, "", T0)) == "forbidden"
    assert code(r.ban(ADMIN, OWNER, "", T0)) == "forbidden"
    assert code(r.timeout(OWNER, MOD, 10, "", T0)) is None  # the broadcaster can
    assert code(r.ban(OWNER, OWNER, "", T0)) == "forbidden"
    first = r.say(MOD2, "mine", T0)
    message_id = broadcasts(first)[0]["id"]
    assert code(r.delete(MOD, message_id, T0, MOD2)) == "forbidden"


def test_delete_and_clear() -> None:
    r = room()
    first = broadcasts(r.say(ALICE, "one", T0))[0]["id"]
    broadcasts(r.say(BOB, "two", T0))
    assert r.author_of(first) == ALICE.id
    assert code(r.delete(BOB, first, T0, ALICE)) == "forbidden"
    events = r.delete(MOD, first, T0, ALICE)
    assert broadcasts(events) == [{"type": "deleted", "id": first}]
    assert stores(events) == ["delete", "audit"]
    assert [m.text for m in r.history] == ["two"]
    assert code(r.clear(ALICE, T0)) == "forbidden"
    events = r.clear(MOD, T0)
    assert broadcasts(events) == [{"type": "cleared"}] and stores(events) == ["clear", "audit"]
    assert not r.history


def test_blocked_terms() -> None:
    r = room()
    assert code(r.set_blocked_terms(ALICE, ["bad"], T0)) == "forbidden"
    assert code(r.set_blocked_terms(MOD, "bad", T0)) == "bad_frame"
    events = r.set_blocked_terms(MOD, ["BadWord", " spoiler "], T0)
    assert [e.frame for e in events if isinstance(e, Reply)] == [
        {"type": "blocked_terms", "terms": ["badword", "spoiler"]}
    ]
    assert code(r.say(ALICE, "what a BADWORD!", T0)) == "blocked_term"
    assert code(r.say(ALICE, "fine words", T0)) is None
    assert code(r.say(MOD, "badword", T0)) is None  # moderators are not filtered


def test_appoint_moderators() -> None:
    r = room()
    assert code(r.appoint(MOD, ALICE, True, T0)) == "forbidden"
    assert code(r.appoint(OWNER, OWNER, True, T0)) == "forbidden"
    events = r.appoint(OWNER, ALICE, True, T0)
    assert r.role(ALICE) is Role.MODERATOR
    assert broadcasts(events) == [{"type": "mod", "user": "alice"}]
    assert stores(events) == ["mod", "audit"]
    r.appoint(OWNER, ALICE, False, T0)
    assert r.role(ALICE) is Role.VIEWER


def test_prune_forgets_quiet_users_but_keeps_the_rules() -> None:
    r = room(slow=60)
    r.say(ALICE, "hi", T0)
    r.timeout(MOD, BOB, 10, "", T0)
    r.ban(MOD, Chatter(7, "carol", "Carol"), "", T0)
    r.prune(T0 + 30)
    assert code(r.say(ALICE, "again", T0 + 30)) == "slow_mode"  # still remembered
    r.prune(T0 + 200)
    assert ALICE.id not in r._sent and BOB.id not in r.bans
    assert 7 in r.bans  # a ban has no end
