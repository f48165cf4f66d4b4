"""One channel's chat room, sans-IO: every rule of who may say what, and when.

Times are wall-clock Unix seconds passed in as ``now``. Every method answers a list of events:

- :class:`Broadcast`: a frame for every socket of the room (the glue encodes it once);
- :class:`Reply`: a frame for the socket that asked (an error, or the blocked terms);
- :class:`Kick`: a frame for every socket of one user, and/or closing them;
- :class:`Store`: a storage action (``kind`` and fields), carried out in order by the glue.

Moderators and the broadcaster bypass the room modes (slow, followers-only) and get the higher
rate limit. A moderator cannot act against the broadcaster or another moderator; only the
broadcaster appoints and removes moderators. Site admins act as moderators.
"""

from __future__ import annotations

import enum
import unicodedata
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

MAX_LENGTH = 500
RATE_WINDOW = 30.0
RATE_LIMIT = 20
RATE_LIMIT_PRIVILEGED = 100
DUPLICATE_WINDOW = 30.0
SLOW_MIN, SLOW_MAX = 3, 120
TIMEOUT_MIN, TIMEOUT_MAX = 1, 14 * 24 * 3600
FOLLOWERS_ONLY_MAX = 90 * 24 * 3600
HISTORY = 50
MAX_REASON = 200
MAX_TERMS = 100
MAX_TERM_LENGTH = 50

#: Bidirectional formatting characters (they can reorder a line's text on screen).
BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: Colours of user names, picked from the name so that a user keeps theirs.
COLOURS = (
    "#ff4d4d", "#ff9f1a", "#f5c518", "#4cd964", "#2ec4b6", "#3fa9f5", "#5c7cfa", "#9b5de5",
    "#f15bb5", "#00bbf9", "#00f5d4", "#fb5607", "#8ac926", "#e76f51", "#c77dff", "#ffafcc",
)  # fmt: skip


class Role(enum.Enum):
    ANONYMOUS = "anonymous"
    VIEWER = "viewer"
    MODERATOR = "moderator"
    BROADCASTER = "broadcaster"


@dataclass(frozen=True)
class Chatter:
    """A signed-in user as the room sees them."""

    id: int
    name: str
    display_name: str
    is_admin: bool = False

    @property
    def color(self) -> str:
        return COLOURS[zlib.crc32(self.name.encode()) % len(COLOURS)]


@dataclass
class Message:
    id: int
    user_id: int | None
    name: str
    display_name: str
    color: str
    role: str
    text: str
    ts: float

    def frame(self) -> dict[str, Any]:
        return {
            "type": "message",
            "id": self.id,
            "user": {
                "name": self.name,
                "display_name": self.display_name,
                "color": self.color,
                "role": self.role,
            },
            "text": self.text,
            "ts": self.ts,
        }


def message_data(message: Message) -> dict[str, Any]:
    """A message as plain data (for :meth:`Room.replay` on another node)."""
    return {
        "id": message.id,
        "user_id": message.user_id,
        "name": message.name,
        "display_name": message.display_name,
        "color": message.color,
        "role": message.role,
        "text": message.text,
        "ts": message.ts,
    }


@dataclass(frozen=True)
class Broadcast:
    frame: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    frame: dict[str, Any]


@dataclass(frozen=True)
class Kick:
    """For every socket of one user: ``frame`` (when set), then closed when ``close``."""

    user_id: int
    frame: dict[str, Any] | None
    close: bool


@dataclass(frozen=True)
class Store:
    kind: str
    data: dict[str, Any]


Event = Broadcast | Reply | Kick | Store


@dataclass
class RoomState:
    """What a room starts from (loaded from storage)."""

    channel: str
    channel_id: int
    owner_id: int
    moderators: set[int] = field(default_factory=set)
    #: user id -> until (None: banned; a time: timed out until then)
    bans: dict[int, float | None] = field(default_factory=dict)
    slow: int = 0
    followers_only: int | None = None
    blocked_terms: list[str] = field(default_factory=list)
    history: list[Message] = field(default_factory=list)


def normalise_text(text: str) -> str:
    """NFC, line breaks and tabs to spaces, other control and bidi characters dropped, outer
    spaces trimmed."""
    text = unicodedata.normalize("NFC", text)
    out = []
    for ch in text:
        if ch in "\n\r\t":
            out.append(" ")
        elif ch in BIDI or unicodedata.category(ch) == "Cc":
            continue
        else:
            out.append(ch)
    return "".join(out).strip()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def error(code: str, message: str, **extra: Any) -> Reply:
    return Reply({"type": "error", "code": code, "message": message, **extra})


@dataclass
class _Sent:
    """A user's recent messages: times (rate limit) and texts (duplicate guard)."""

    times: deque[float] = field(default_factory=deque)
    texts: deque[tuple[float, str]] = field(default_factory=deque)
    last: float = float("-inf")


class Room:
    """The rules of one channel's chat. ``next_id`` hands out message ids (unique across
    rooms, increasing)."""

    def __init__(self, state: RoomState, next_id: Callable[[], int]) -> None:
        self.channel = state.channel
        self.channel_id = state.channel_id
        self.owner_id = state.owner_id
        self.moderators = set(state.moderators)
        self.bans = dict(state.bans)
        self.slow = state.slow
        self.followers_only = state.followers_only
        self.blocked_terms = list(state.blocked_terms)
        self.history: deque[Message] = deque(state.history[-HISTORY:], maxlen=HISTORY)
        self._next_id = next_id
        self._sent: dict[int, _Sent] = {}

    # -- roles -------------------------------------------------------------------------------

    def role(self, chatter: Chatter | None) -> Role:
        if chatter is None:
            return Role.ANONYMOUS
        if chatter.id == self.owner_id:
            return Role.BROADCASTER
        if chatter.id in self.moderators or chatter.is_admin:
            return Role.MODERATOR
        return Role.VIEWER

    def privileged(self, chatter: Chatter | None) -> bool:
        return self.role(chatter) in (Role.MODERATOR, Role.BROADCASTER)

    def settings_frame(self) -> dict[str, Any]:
        return {"channel": self.channel, "slow": self.slow, "followers_only": self.followers_only}

    def welcome(
        self, chatter: Chatter | None, history: Iterable[Message] | None = None
    ) -> dict[str, Any]:
        return {
            "type": "welcome",
            "room": self.settings_frame(),
            "you": {
                "user": chatter.name if chatter else None,
                "role": self.role(chatter).value,
                "color": chatter.color if chatter else None,
            },
            "history": [m.frame() for m in (self.history if history is None else history)],
        }

    def restriction(self, user_id: int, now: float) -> float | None:
        """None when the user may post; ``inf`` when banned; else the end of their timeout."""
        if user_id not in self.bans:
            return None
        until = self.bans[user_id]
        if until is None:
            return float("inf")
        if until <= now:
            del self.bans[user_id]
            return None
        return until

    def needs_follow_age(self, chatter: Chatter | None) -> bool:
        """True when :meth:`say` needs the chatter's follow time (followers-only mode)."""
        return (
            self.followers_only is not None and chatter is not None and not self.privileged(chatter)
        )

    def prune(self, now: float) -> None:
        """Forget the counters of users quiet for longer than any window or slow mode, and
        timeouts that are over (call now and then)."""
        horizon = now - max(RATE_WINDOW, DUPLICATE_WINDOW, SLOW_MAX)
        for user_id in [u for u, sent in self._sent.items() if sent.last < horizon]:
            del self._sent[user_id]
        for user_id in [u for u, until in self.bans.items() if until is not None and until <= now]:
            del self.bans[user_id]

    # -- saying ------------------------------------------------------------------------------

    def say(
        self,
        chatter: Chatter | None,
        text: Any,
        now: float,
        *,
        nonce: str | None = None,
        followed_at: float | None = None,
    ) -> list[Event]:
        """A chat message; ``followed_at`` is when the chatter followed the channel (None: not a
        follower), needed only when :meth:`needs_follow_age` says so."""
        extra: dict[str, Any] = {} if nonce is None else {"nonce": nonce}
        if chatter is None:
            return [error("auth_required", "sign in to chat", **extra)]
        if not isinstance(text, str):
            return [error("bad_frame", "text must be a string", **extra)]
        text = normalise_text(text)
        if not text:
            return [error("empty", "the message is empty", **extra)]
        if len(text) > MAX_LENGTH:
            return [error("too_long", f"a message has at most {MAX_LENGTH} characters", **extra)]
        restricted = self.restriction(chatter.id, now)
        if restricted == float("inf"):
            return [error("banned", "you are banned from this chat", **extra)]
        if restricted is not None:
            return [error("timed_out", "you are timed out", retry_after=restricted - now, **extra)]
        privileged = self.privileged(chatter)
        sent = self._sent.setdefault(chatter.id, _Sent())
        while sent.times and sent.times[0] <= now - RATE_WINDOW:
            sent.times.popleft()
        while sent.texts and sent.texts[0][0] <= now - DUPLICATE_WINDOW:
            sent.texts.popleft()
        limit = RATE_LIMIT_PRIVILEGED if privileged else RATE_LIMIT
        if len(sent.times) >= limit:
            wait = sent.times[0] + RATE_WINDOW - now
            return [
                error(
                    "rate_limited", f"at most {limit} messages per 30 s", retry_after=wait, **extra
                )
            ]
        if not privileged:
            if self.slow and now - sent.last < self.slow:
                wait = sent.last + self.slow - now
                return [
                    error(
                        "slow_mode",
                        f"slow mode: one message every {self.slow} s",
                        retry_after=wait,
                        **extra,
                    )
                ]
            if self.followers_only is not None:
                if followed_at is None:
                    return [error("followers_only", "this chat is for followers only", **extra)]
                if now - followed_at < self.followers_only:
                    wait = followed_at + self.followers_only - now
                    return [
                        error(
                            "followers_only",
                            "you have not followed this channel for long enough",
                            retry_after=wait,
                            **extra,
                        )
                    ]
        folded = text.casefold()
        if not privileged and any(term in folded for term in self.blocked_terms):
            return [error("blocked_term", "the message contains a blocked term", **extra)]
        if any(previous == folded for _, previous in sent.texts):
            return [error("duplicate", "you sent that message less than 30 s ago", **extra)]
        sent.times.append(now)
        sent.texts.append((now, folded))
        sent.last = now
        message = Message(
            id=self._next_id(),
            user_id=chatter.id,
            name=chatter.name,
            display_name=chatter.display_name,
            color=chatter.color,
            role=self.role(chatter).value,
            text=text,
            ts=now,
        )
        self.history.append(message)
        return [
            Broadcast(message.frame()),
            Store("message", {"message": message}),
        ]

    # -- another node's decisions -------------------------------------------------------------

    def replay(self, kind: str, data: dict[str, Any]) -> None:
        """Apply what another node's room of this channel decided (the data of its
        :class:`Store` event of ``kind``, with a message as :func:`message_data`), so both
        rooms keep the same bans, moderators, modes and recent history. A message replayed
        again (its own room's, once delivered) moves to the end of the history."""
        if kind == "message":  # delivered now: last in the history (which keeps that order)
            message = Message(**data["message"])
            for found in [m for m in self.history if m.id == message.id]:
                self.history.remove(found)
            self.history.append(message)
        elif kind == "ban":
            self.bans[data["user_id"]] = data["until"]
        elif kind == "unban":
            self.bans.pop(data["user_id"], None)
        elif kind == "delete":
            for message in [m for m in self.history if m.id == data["id"]]:
                self.history.remove(message)
        elif kind == "clear":
            self.history.clear()
        elif kind == "settings":
            self.slow = data["slow"]
            self.followers_only = data["followers_only"]
            self.blocked_terms = list(data["blocked_terms"])
        elif kind == "mod":
            self.moderators.add(data["user_id"])
        elif kind == "unmod":
            self.moderators.discard(data["user_id"])

    # -- moderation --------------------------------------------------------------------------

    def _may_moderate(self, actor: Chatter | None, target: Chatter | None) -> Reply | None:
        role = self.role(actor)
        if role not in (Role.MODERATOR, Role.BROADCASTER):
            return error("forbidden", "only moderators and the broadcaster can do that")
        if target is None:
            return None
        target_role = self.role(target)
        if target_role is Role.BROADCASTER:
            return error("forbidden", "nobody can act against the broadcaster")
        if target_role is Role.MODERATOR and role is not Role.BROADCASTER:
            return error("forbidden", "a moderator cannot act against another moderator")
        return None

    def _audit(
        self, actor: Chatter, action: str, now: float, *, target: Chatter | None = None,
        message_id: int | None = None, reason: str = "", data: dict[str, Any] | None = None,
    ) -> Store:  # fmt: skip
        return Store(
            "audit",
            {
                "actor_id": actor.id,
                "action": action,
                "target_id": target.id if target else None,
                "message_id": message_id,
                "reason": reason,
                "data": data or {},
                "ts": now,
            },
        )

    @staticmethod
    def _reason(reason: Any) -> str | Reply:
        if reason is None:
            return ""
        if not isinstance(reason, str):
            return error("bad_frame", "reason must be a string")
        return normalise_text(reason)[:MAX_REASON]

    def _against(self, actor: Chatter | None, target: Chatter | None) -> Reply | None:
        """Why ``actor`` may not act against ``target`` (a user name that was looked up)."""
        refused = self._may_moderate(actor, target)
        if refused is None and target is None:
            return error("no_such_user", "there is no such user")
        return refused

    def _restrict(
        self, actor: Chatter | None, target: Chatter | None, seconds: int | None, reason: Any,
        now: float,
    ) -> list[Event]:  # fmt: skip
        """A timeout of ``seconds``, or (None) a ban."""
        refused = self._against(actor, target)
        if refused is not None:
            return [refused]
        assert actor is not None and target is not None
        text = self._reason(reason)
        if isinstance(text, Reply):
            return [text]
        until = None if seconds is None else now + seconds
        self.bans[target.id] = until
        events: list[Event]
        if seconds is None:
            frame: dict[str, Any] = {"type": "ban", "user": target.name, "reason": text}
            # after the broadcast: the user's sockets are told, then closed
            events = [Broadcast(frame), Kick(target.id, None, close=True)]
            audit = self._audit(actor, "ban", now, target=target, reason=text)
        else:
            frame = {
                "type": "timeout",
                "user": target.name,
                "until": until,
                "seconds": seconds,
                "reason": text,
            }
            events = [Broadcast(frame)]  # the user's own sockets are told with everyone
            audit = self._audit(
                actor, "timeout", now, target=target, reason=text, data={"seconds": seconds}
            )
        row = {"user_id": target.id, "until": until, "reason": text, "by": actor.id, "ts": now}
        return [*events, Store("ban", row), audit]

    def timeout(
        self, actor: Chatter | None, target: Chatter | None, seconds: Any, reason: Any, now: float
    ) -> list[Event]:
        if self._may_moderate(actor, target) is None and not (
            _is_int(seconds) and TIMEOUT_MIN <= seconds <= TIMEOUT_MAX
        ):
            return [error("bad_frame", f"seconds must be {TIMEOUT_MIN}..{TIMEOUT_MAX}")]
        return self._restrict(actor, target, seconds, reason, now)

    def ban(
        self, actor: Chatter | None, target: Chatter | None, reason: Any, now: float
    ) -> list[Event]:
        return self._restrict(actor, target, None, reason, now)

    def unban(self, actor: Chatter | None, target: Chatter | None, now: float) -> list[Event]:
        refused = self._against(actor, target)
        if refused is not None:
            return [refused]
        assert actor is not None and target is not None
        if self.bans.pop(target.id, False) is False:
            return [error("not_banned", f"{target.name} is neither banned nor timed out")]
        return [
            Broadcast({"type": "unban", "user": target.name}),
            Store("unban", {"user_id": target.id}),
            self._audit(actor, "unban", now, target=target),
        ]

    def delete(
        self, actor: Chatter | None, message_id: Any, now: float, author: Chatter | None
    ) -> list[Event]:
        """Delete a message; ``author`` is who wrote it (None: unknown, or a deleted account)."""
        refused = self._may_moderate(actor, author)
        if refused is not None:
            return [refused]
        assert actor is not None
        if not _is_int(message_id):
            return [error("bad_frame", "id must be an integer")]
        for message in list(self.history):
            if message.id == message_id:
                self.history.remove(message)
        return [
            Broadcast({"type": "deleted", "id": message_id}),
            Store("delete", {"id": message_id, "by": actor.id, "ts": now}),
            self._audit(actor, "delete", now, target=author, message_id=message_id),
        ]

    def author_of(self, message_id: int) -> int | None:
        for message in self.history:
            if message.id == message_id:
                return message.user_id
        return None

    def clear(self, actor: Chatter | None, now: float) -> list[Event]:
        refused = self._may_moderate(actor, None)
        if refused is not None:
            return [refused]
        assert actor is not None
        self.history.clear()
        return [
            Broadcast({"type": "cleared"}),
            Store("clear", {"by": actor.id, "ts": now}),
            self._audit(actor, "clear", now),
        ]

    def mode(
        self, actor: Chatter | None, slow: Any, followers_only: Any, now: float
    ) -> list[Event]:
        refused = self._may_moderate(actor, None)
        if refused is not None:
            return [refused]
        assert actor is not None
        if not (_is_int(slow) and (slow == 0 or SLOW_MIN <= slow <= SLOW_MAX)):
            return [error("bad_frame", f"slow must be 0 (off) or {SLOW_MIN}..{SLOW_MAX}")]
        if followers_only is not None and not (
            _is_int(followers_only) and 0 <= followers_only <= FOLLOWERS_ONLY_MAX
        ):
            return [error("bad_frame", f"followers_only must be null or 0..{FOLLOWERS_ONLY_MAX}")]
        self.slow = slow
        self.followers_only = followers_only
        data = {"slow": slow, "followers_only": followers_only}
        return [
            Broadcast({"type": "mode", **data}),
            Store("settings", self._settings()),
            self._audit(actor, "mode", now, data=data),
        ]

    def _settings(self) -> dict[str, Any]:
        return {
            "slow": self.slow,
            "followers_only": self.followers_only,
            "blocked_terms": list(self.blocked_terms),
        }

    def set_blocked_terms(self, actor: Chatter | None, terms: Any, now: float) -> list[Event]:
        refused = self._may_moderate(actor, None)
        if refused is not None:
            return [refused]
        assert actor is not None
        if (
            not isinstance(terms, list)
            or len(terms) > MAX_TERMS
            or not all(isinstance(t, str) and 0 < len(t) <= MAX_TERM_LENGTH for t in terms)
        ):
            return [
                error("bad_frame", f"terms must be a list of at most {MAX_TERMS} short strings")
            ]
        cleaned = sorted({normalise_text(t).casefold() for t in terms} - {""})
        self.blocked_terms = cleaned
        return [
            Reply({"type": "blocked_terms", "terms": cleaned}),
            Store("settings", self._settings()),
            self._audit(actor, "blocked_terms", now, data={"terms": cleaned}),
        ]

    def blocked_terms_frame(self, actor: Chatter | None) -> list[Event]:
        refused = self._may_moderate(actor, None)
        if refused is not None:
            return [refused]
        return [Reply({"type": "blocked_terms", "terms": list(self.blocked_terms)})]

    def appoint(
        self, actor: Chatter | None, target: Chatter | None, add: bool, now: float
    ) -> list[Event]:
        if self.role(actor) is not Role.BROADCASTER:
            return [error("forbidden", "only the broadcaster appoints moderators")]
        assert actor is not None
        if target is None:
            return [error("no_such_user", "there is no such user")]
        if target.id == self.owner_id:
            return [error("forbidden", "the broadcaster is not a moderator")]
        if add:
            self.moderators.add(target.id)
        else:
            self.moderators.discard(target.id)
        action = "mod" if add else "unmod"
        return [
            Broadcast({"type": action, "user": target.name}),
            Kick(target.id, {"type": "role", "role": self.role(target).value}, close=False),
            Store(action, {"user_id": target.id, "by": actor.id, "ts": now}),
            self._audit(actor, action, now, target=target),
        ]
