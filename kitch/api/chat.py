"""Chat: the ``/ws/chat/{channel}`` WebSocket (msgpack frames), history and audit routes.

The rules live in the sans-IO :class:`kitch.chat.Room`; this module owns the sockets, the clock
and the database. One :class:`ChatService` per app (``app.state.chat``) holds the rooms, the
connections and the storage queue:

- every broadcast is encoded once; a room's broadcasts are batched (:class:`ChatChannel`: at
  most one batch per ``BATCH_WINDOW``, sent at once when the room was quiet) and a batch goes
  to every socket of the room as one WebSocket message, the same bytes for all; a frame for
  one socket alone follows the broadcasts made before it;
- each socket's own task reads, and one writer task per socket writes behind a bounded queue;
  a socket whose queue is full is dropped (counted in ``kitch_chat_dropped_total``), so a
  client that does not read never delays the others; a socket that sends nothing for
  ``IDLE_TIMEOUT`` is closed (checked with the presence frames);
- storage actions (messages, moderation, audit) are queued in order and written in one
  transaction every ``FLUSH_INTERVAL`` seconds and at shutdown;
- every ``PRESENCE_INTERVAL`` seconds each room gets a presence frame and the signed-in sockets
  are checked again (a password change or a sign-out closes them; the auth routes also close
  them at once through :meth:`ChatService.revoke_user`);
- an open chat socket counts its client (address + User-Agent) as a viewer of the channel, with
  the player's (``viewers``, shared with the events socket's counts).

The frames are documented in docs/CHAT.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter as Tally
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgpack
from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from kitch.api.auth import current_user, on_sign_out, session_valid, verify_access_token
from kitch.api.errors import ApiError, invalid, not_found
from kitch.api.hosts import HostPolicy
from kitch.api.routing import api_route
from kitch.api.viewers import ViewerCounter
from kitch.chat import (
    Broadcast,
    Chatter,
    Event,
    Kick,
    Message,
    Reply,
    Room,
    RoomState,
    Store,
    message_data,
)
from kitch.chat.room import HISTORY
from kitch.cluster.fanout import TAG_BITS, Fanout
from kitch.db import Database
from kitch.db import chat as store
from kitch.db.queries import get_channel
from kitch.db.users import User, get_user, get_user_by_name

log = logging.getLogger("kitch.chat")

MAX_FRAME = 4096  # bytes of one client frame
SEND_QUEUE = 256 * 1024  # bytes waiting for one socket before it is dropped (shared ones in full)
#: A room's broadcasts are sent at most once per window, several to a WebSocket message: at once
#: when the room's last send is older than this, else when the window ends.
BATCH_WINDOW = 0.025
BATCH_BYTES = 16 * 1024  # a batch this large goes out at once
FLUSH_INTERVAL = 0.5  # seconds between storage batches
PRESENCE_INTERVAL = 5.0
IDLE_TIMEOUT = 60.0  # a socket that sends nothing (not even a ping) for this long is closed
MAX_PER_ADDRESS = 20  # open chat sockets per client address
FLOOD_FRAMES, FLOOD_WINDOW = 150, 10.0  # frames of any type per socket per window
SINCE_LIMIT = 200  # messages a reconnecting client gets at most (more: page the REST history)
PAGE_LIMIT = 100
PRESENCE_NAMES = 100
#: With several nodes (a fan-out through Redis): message ids remembered per room to deliver each
#: once, how far before the last one delivered a resync reads back (ids are milliseconds in
#: their high bits), how long after Redis is back (stored batches of the other nodes land
#: meanwhile) and how many pages of ``SINCE_LIMIT`` at most.
DELIVERED = 4096
RESYNC_MARGIN = 2000 << TAG_BITS
RESYNC_DELAY = 2 * FLUSH_INTERVAL + 0.3
RESYNC_PAGES = 10

DROPPED = Counter("kitch_chat_dropped_total", "Chat sockets dropped for not reading")
RESYNCED = Counter(
    "kitch_chat_resynced_total",
    "Stored chat messages delivered after Redis came back (missed while it was away)",
)
CLOSE_FRAME = b""  # the writer's "close now" marker


def encode(frame: dict[str, Any]) -> bytes:
    data: bytes = msgpack.packb(frame, use_bin_type=True)
    return data


def chatter_of(user: User) -> Chatter:
    return Chatter(user.id, user.username, user.display_name or user.username, user.is_admin)


@dataclass(eq=False, slots=True)
class Conn:
    """One chat socket: who it is, and what waits to be written to it.

    The socket's own task (:meth:`ChatService.serve`) reads; a writer task
    (:meth:`write_loop`) writes what is pushed, which waits in ``pending``: at most
    ``SEND_QUEUE`` bytes, else the socket is dropped.
    """

    ws: WebSocket
    address: str
    channel: ChatChannel
    reader: asyncio.Task[Any] | None = None  # the socket's own task
    writer: asyncio.Task[None] | None = None
    chatter: Chatter | None = None
    version: int = 0
    session: str = ""
    expires: float = 0.0
    pending: list[bytes] = field(default_factory=list)
    queued: int = 0  # bytes pushed and not yet written
    closing: bool = False  # the close marker is queued: nothing more is
    closed: bool = False  # the writer closed the socket
    dropped: bool = False
    reading: bool = False  # the reader waits for the client (a safe place to stop it)
    sending: bool = False  # the writer is in a send (a full socket blocks it there)
    waiter: asyncio.Future[None] | None = None
    #: frames held while a welcome is being built: (bytes, message id or None)
    holding: list[tuple[bytes, int | None]] | None = None
    held: int = 0  # bytes in ``holding``
    frames: list[float] = field(default_factory=list)
    seen: float = field(default_factory=time.monotonic)  # when the client last sent a frame

    def send(self, data: bytes, message_id: int | None = None) -> None:
        """Queue a frame for this socket alone, after the room's broadcasts made before it."""
        self.channel.catch_up(self)
        self.push(data, message_id)

    def push(self, data: bytes, message_id: int | None = None) -> None:
        if self.closing:
            return
        if self.holding is not None:
            self.holding.append((data, message_id))
            self.held += len(data)
            if self.held > SEND_QUEUE:
                self.drop()  # as if its queue were full
            return
        self.queued += len(data)
        if self.queued > SEND_QUEUE:
            self.drop()
            return
        self.pending.append(data)
        if data == CLOSE_FRAME:
            self.closing = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close_soon(self) -> None:
        """Close after what is queued."""
        self.send(CLOSE_FRAME)

    def drop(self) -> None:
        """The client does not read: close it now, without writing what waits."""
        if self.dropped:
            return
        self.dropped = self.closing = True
        self.pending = []
        DROPPED.inc()
        log.info("chat socket from %s dropped: it does not read", self.address)
        # Both tasks are stopped where they wait for the client, never inside a handler.
        if self.writer is not None and (self.sending or self.waiter is not None):
            self.writer.cancel()
        if self.reader is not None and self.reading:
            self.reader.cancel()

    async def write_loop(self) -> None:
        """Write what is pushed; after the close marker, close the socket (which ends the
        reader's wait too)."""
        send = self.ws.send_bytes
        loop = asyncio.get_running_loop()
        while True:
            while self.pending:
                batch, self.pending = self.pending, []
                for data in batch:
                    if data == CLOSE_FRAME:
                        self.sending = True
                        await self.ws.close(code=1000)
                        self.closed = True
                        return
                    self.sending = True
                    await send(data)
                    self.sending = False
                    self.queued -= len(data)
                del batch, data  # an idle socket keeps nothing it was sent (a welcome is large)
            self.waiter = loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None


@dataclass(eq=False)
class ChatChannel:
    """A room and its sockets; its broadcasts wait in ``outbox`` until the batch is sent."""

    id: int
    name: str
    room: Room
    conns: set[Conn] = field(default_factory=set)
    outbox: list[bytes] = field(default_factory=list)  # encoded frames, each once
    ids: list[int | None] = field(default_factory=list)  # their message ids
    size: int = 0  # bytes in ``outbox``
    #: sockets that joined or got a frame of their own since the last batch: the index in
    #: ``outbox`` of the first frame they still need
    offsets: dict[Conn, int] = field(default_factory=dict)
    holding: int = 0  # sockets building a welcome
    last_flush: float = float("-inf")  # loop time
    timer: asyncio.Handle | None = None
    #: with a fan-out: the message ids delivered lately (each is delivered once), the highest,
    #: and the id after which a resync reads (set while Redis is away)
    delivered: deque[int] = field(default_factory=deque)
    delivered_set: set[int] = field(default_factory=set)
    high: int = 0
    mark: int | None = None

    def first_delivery(self, message_id: int) -> bool:
        """Remember ``message_id`` as delivered; False when it already was."""
        if message_id in self.delivered_set:
            return False
        self.delivered.append(message_id)
        self.delivered_set.add(message_id)
        if len(self.delivered) > DELIVERED:
            self.delivered_set.discard(self.delivered.popleft())
        self.high = max(self.high, message_id)
        return True

    def join(self, conn: Conn) -> None:
        self.conns.add(conn)
        if self.outbox:
            self.offsets[conn] = len(self.outbox)  # what was broadcast before is not for it

    def leave(self, conn: Conn) -> None:
        self.conns.discard(conn)
        self.offsets.pop(conn, None)

    def broadcast(self, data: bytes, message_id: int | None) -> None:
        self.outbox.append(data)
        self.ids.append(message_id)
        self.size += len(data)
        loop = asyncio.get_running_loop()
        if self.size >= BATCH_BYTES:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = loop.call_soon(self.flush)
        elif self.timer is None:
            due = self.last_flush + BATCH_WINDOW
            if due <= loop.time():
                self.timer = loop.call_soon(self.flush)
            else:
                self.timer = loop.call_at(due, self.flush)

    def flush(self) -> None:
        """Send the batch: one WebSocket message, the same bytes to every socket."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        outbox, ids, offsets = self.outbox, self.ids, self.offsets
        if not outbox:
            return
        self.outbox, self.ids, self.offsets, self.size = [], [], {}, 0
        self.last_flush = asyncio.get_running_loop().time()
        whole = outbox[0] if len(outbox) == 1 else b"".join(outbox)
        if not offsets and not self.holding:
            for conn in self.conns:
                conn.push(whole)
            return
        for conn in self.conns:
            start = offsets.get(conn, 0)
            if conn.holding is not None:
                for data, message_id in zip(outbox[start:], ids[start:], strict=True):
                    conn.push(data, message_id)
            elif start == 0:
                conn.push(whole)
            elif start < len(outbox):
                conn.push(b"".join(outbox[start:]))

    def catch_up(self, conn: Conn) -> None:
        """Queue to ``conn`` now the broadcasts of the batch it has not got yet (before a frame
        of its own, which must follow them)."""
        n = len(self.outbox)
        if not n:
            return
        start = self.offsets.get(conn, 0)
        if start < n:
            if conn.holding is not None:
                for data, message_id in zip(self.outbox[start:], self.ids[start:], strict=True):
                    conn.push(data, message_id)
            else:
                conn.push(b"".join(self.outbox[start:]))
        self.offsets[conn] = n


class ChatService:
    """The rooms, sockets and storage queue of one app."""

    def __init__(self, db: Database, secret: bytes, hosts: HostPolicy) -> None:
        self.db = db
        self.secret = secret
        self.hosts = hosts
        #: the app's live viewer counts (chat sockets count as watchers); None: not counted
        self.viewers: ViewerCounter | None = None
        self.channels: dict[str, ChatChannel] = {}
        self.pending: list[store.Action] = []
        self._queued = asyncio.Event()  # set when ``pending`` gets its first action
        self.addresses: Tally[str] = Tally()
        self.dropped = 0
        self._next = 0
        self._started = False
        self._start_lock = asyncio.Lock()
        self._load_lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        #: the fan-out to the other nodes (None: this node alone); see :meth:`attach`
        self.fanout: Fanout | None = None
        self._tick = 0  # with a fan-out: the millisecond part of the last message id
        self._floor: int | None = None  # with a fan-out: the first id made while Redis was away
        self._away_tag = 0  # and the node's tag then (set from Redis at the first connect)
        self._generation = 0  # Redis losses so far
        self._resyncs: set[asyncio.Task[None]] = set()
        self._resync_waiting = False  # a resync of the rooms' marks is scheduled, not begun

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        async with self._start_lock:
            if self._started:
                return
            # Ids increase across restarts, even past messages a crash lost: a client that saw
            # one of those still gets every later message when it asks for what follows it.
            highest = await store.max_message_id(self.db)
            self._next = max(highest + 1, int(time.time() * 1000))
            self._tick = max(self._tick, highest >> TAG_BITS)
            self._tasks = [
                asyncio.create_task(self._flush_loop(), name="chat-flush"),
                asyncio.create_task(self._presence_loop(), name="chat-presence"),
            ]
            self._started = True

    async def stop(self) -> None:
        for task in [*self._tasks, *self._resyncs]:
            task.cancel()
        for task in [*self._tasks, *self._resyncs]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for channel in self.channels.values():
            channel.flush()
            for conn in channel.conns:
                conn.close_soon()
        await self.flush()

    def next_id(self) -> int:
        if self.fanout is not None:
            # unique across nodes (the node's tag in the low bits), in time order across them
            self._tick = max(self._tick + 1, int(time.time() * 1000))
            return (self._tick << TAG_BITS) | self.fanout.tag
        value = self._next
        self._next += 1
        return value

    async def flush(self) -> None:
        async with self._flush_lock:
            batch, self.pending = self.pending, []
            if not batch:
                return
            try:
                await store.write_batch(self.db, batch)
            except Exception:
                log.exception(
                    "chat batch of %d action(s) failed; writing them one by one", len(batch)
                )
                for action in batch:  # one bad action (a deleted channel) must not block the rest
                    try:
                        await store.write_batch(self.db, [action])
                    except Exception:
                        log.exception(
                            "chat %s action for channel %d dropped", action.kind, action.channel_id
                        )

    def _store(self, action: store.Action) -> None:
        self.pending.append(action)
        self._queued.set()

    async def _flush_loop(self) -> None:
        """Write what was queued ``FLUSH_INTERVAL`` after the first of it (a quiet server does
        not wake for this)."""
        while True:
            await self._queued.wait()
            await asyncio.sleep(FLUSH_INTERVAL)
            self._queued.clear()
            await self.flush()

    async def _presence_loop(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_INTERVAL)
            try:
                await self._recheck_sessions()
            except Exception:
                log.exception("chat session check failed")
            now = time.time()
            for channel in list(self.channels.values()):
                channel.room.prune(now)
                if channel.conns:
                    self.broadcast(channel, self.presence(channel))
                    self._close_idle(channel)

    @staticmethod
    def _close_idle(channel: ChatChannel) -> None:
        """Close the sockets that sent nothing for ``IDLE_TIMEOUT``; drop those still not
        closed ``IDLE_TIMEOUT`` later (their client reads nothing, not even the close)."""
        now = time.monotonic()
        for conn in list(channel.conns):
            idle = now - conn.seen
            if idle > 2 * IDLE_TIMEOUT:
                conn.drop()
            elif idle > IDLE_TIMEOUT and not conn.closing:
                conn.send(encode(_error("idle_timeout", "nothing received for too long")))
                conn.close_soon()

    def presence(self, channel: ChatChannel) -> dict[str, Any]:
        names = sorted({c.chatter.name for c in channel.conns if c.chatter is not None})
        anonymous = sum(1 for c in channel.conns if c.chatter is None)
        viewers = len(channel.conns) if self.viewers is None else self.viewers.count(channel.name)
        chatters = len(names)
        if self.fanout is not None:  # with the other nodes' sockets
            others = self.fanout.remote_presence.get(channel.name.lower(), [])
            known, complete = set(names), True
            for other_chatters, other_anonymous, other_names in others:
                anonymous += other_anonymous
                known.update(other_names)
                complete = complete and len(other_names) >= other_chatters
                chatters += other_chatters
            if complete:  # every node's names known: a user on two nodes counts once
                chatters = len(known)
            names = sorted(known)
        return {
            "type": "presence",
            "viewers": viewers,
            "chatters": chatters,
            "anonymous": anonymous,
            "users": names[:PRESENCE_NAMES],
        }

    def local_presence(self) -> dict[str, Any]:
        """This node's chat presence per room with sockets (for the other nodes):
        ``[chatters, anonymous, up to PRESENCE_NAMES names]``."""
        found: dict[str, Any] = {}
        for key, channel in self.channels.items():
            if channel.conns:
                names = sorted({c.chatter.name for c in channel.conns if c.chatter is not None})
                anonymous = sum(1 for c in channel.conns if c.chatter is None)
                found[key] = [len(names), anonymous, names[:PRESENCE_NAMES]]
        return found

    async def _recheck_sessions(self) -> None:
        """Close the signed-in sockets whose session was revoked or password changed."""
        verdicts: dict[tuple[int, int, str], bool] = {}
        for channel in list(self.channels.values()):
            for conn in list(channel.conns):
                if conn.chatter is None:
                    continue
                key = (conn.chatter.id, conn.version, conn.session)
                if key not in verdicts:
                    verdicts[key] = await session_valid(self.db, *key)
                if not verdicts[key]:
                    self.sign_out(conn, "the session was signed out or the password changed")

    def sign_out(self, conn: Conn, message: str) -> None:
        conn.send(encode({"type": "error", "code": "signed_out", "message": message}))
        conn.chatter = None
        conn.close_soon()

    def channel_moderated_by(self, channel: ChatChannel, user: User) -> bool:
        return channel.room.privileged(chatter_of(user))

    def revoke_user(self, user_id: int, session: str | None = None) -> None:
        """Close the chat sockets of ``user_id`` signed in with ``session`` now (None: of every
        session: signed out everywhere, the password changed, the account deleted)."""
        message = (
            "signed out everywhere, or the password changed"
            if session is None
            else "the session was signed out"
        )
        for channel in self.channels.values():
            for conn in channel.conns:
                if (
                    conn.chatter is not None
                    and conn.chatter.id == user_id
                    and (session is None or conn.session == session)
                ):
                    self.sign_out(conn, message)

    # -- rooms -------------------------------------------------------------------------------

    async def channel(self, name: str) -> ChatChannel | None:
        key = name.lower()
        found = self.channels.get(key)
        if found is not None:
            return found
        async with self._load_lock:
            found = self.channels.get(key)
            if found is not None:
                return found
            info = await get_channel(self.db, key)
            if info is None:
                return None
            record = await store.load_room(self.db, info.id, time.time())
            state = RoomState(
                channel=info.name,
                channel_id=info.id,
                owner_id=info.user_id,
                moderators=record.moderators,
                bans=record.bans,
                slow=record.slow,
                followers_only=record.followers_only,
                blocked_terms=record.blocked_terms,
            )
            room = Room(state, self.next_id)
            stored = await store.messages(self.db, info.id, limit=HISTORY)
            room.history.extend(self.message(room, m) for m in stored)
            found = self.channels[key] = ChatChannel(info.id, info.name, room)
            if self.fanout is not None:
                for message in room.history:  # the welcome gives them: never again
                    found.first_delivery(message.id)
                # what another node said just before (not stored yet) or during the load (not
                # delivered to a room not loaded) is read back once stored
                found.mark = max(0, found.high - RESYNC_MARGIN)
                if self.fanout.connected:
                    self._schedule_resync(None, None)
            return found

    @staticmethod
    def message(room: Room, stored: store.StoredMessage) -> Message:
        author = Chatter(stored.user_id or 0, stored.username, stored.display_name)
        role = room.role(author).value if stored.user_id is not None else "viewer"
        return Message(
            stored.id,
            stored.user_id,
            stored.username,
            stored.display_name,
            author.color,
            role,
            stored.text,
            stored.created_at,
        )

    async def history(
        self, channel: ChatChannel, *, before: int | None = None, after: int | None = None,
        limit: int = HISTORY,
    ) -> list[Message]:  # fmt: skip
        await self.flush()  # what is queued is part of the history
        stored = await store.messages(self.db, channel.id, before=before, after=after, limit=limit)
        return [self.message(channel.room, m) for m in stored]

    def broadcast(self, channel: ChatChannel, frame: dict[str, Any]) -> None:
        message_id = frame["id"] if frame["type"] == "message" else None
        channel.broadcast(encode(frame), message_id)  # encoded once, for every socket

    def apply(self, channel: ChatChannel, conn: Conn | None, events: list[Event]) -> None:
        if self.fanout is not None:
            self._apply_fanned(channel, conn, events)
            return
        for event in events:
            if isinstance(event, Broadcast):
                self.broadcast(channel, event.frame)
            elif isinstance(event, Reply):
                if conn is not None:
                    conn.send(encode(event.frame))
            elif isinstance(event, Kick):
                data = None if event.frame is None else encode(event.frame)
                self._kick(channel, event.user_id, data, event.close)
            elif isinstance(event, Store):
                self._store(store.Action(channel.id, event.kind, event.data))

    @staticmethod
    def _kick(channel: ChatChannel, user_id: int, data: bytes | None, close: bool) -> None:
        for other in list(channel.conns):
            if other.chatter is not None and other.chatter.id == user_id:
                if data is not None:
                    other.send(data)
                if close:
                    other.close_soon()

    # -- several nodes (a fan-out through Redis; docs/CLUSTER.md) -----------------------------

    def attach(self, fanout: Fanout) -> None:
        """Share the rooms with the other nodes through ``fanout``."""
        self.fanout = fanout
        self._floor = (int(time.time() * 1000) << TAG_BITS) - RESYNC_MARGIN
        self._away_tag = fanout.tag
        fanout.on("chat", self._received)
        fanout.local_presence = self.local_presence
        fanout.up_hooks.append(self._redis_up)
        fanout.down_hooks.append(self._redis_down)

    def _apply_fanned(self, channel: ChatChannel, conn: Conn | None, events: list[Event]) -> None:
        """Apply a room's decisions through the fan-out: replies and storage here; broadcasts,
        kicks and the room's new state published once, delivered by every node (this one when
        it gets them back), each broadcast encoded once."""
        assert self.fanout is not None
        entries: list[list[Any]] = []
        for event in events:
            if isinstance(event, Broadcast):
                frame = event.frame
                message_id = frame["id"] if frame["type"] == "message" else None
                entries.append(["b", encode(frame), message_id])
            elif isinstance(event, Reply):
                if conn is not None:
                    conn.send(encode(event.frame))
            elif isinstance(event, Kick):
                data = None if event.frame is None else encode(event.frame)
                entries.append(["k", event.user_id, data, event.close])
            elif isinstance(event, Store):
                self._store(store.Action(channel.id, event.kind, event.data))
                if event.kind == "message":
                    entries.append(
                        ["s", "message", {"message": message_data(event.data["message"])}]
                    )
                elif event.kind != "audit":
                    entries.append(["s", event.kind, event.data])
        if not entries:
            return
        payload = {"n": self.fanout.node, "c": channel.name.lower(), "e": entries}
        if not self.fanout.publish("chat", encode(payload)):
            self._deliver(channel, entries, own=True)  # Redis is away: this node's sockets

    def _received(self, data: bytes) -> None:
        """A payload of the chat topic (from any node, this one included)."""
        assert self.fanout is not None
        payload = msgpack.unpackb(data, raw=False)
        own = payload.get("n") == self.fanout.node
        if "resync" in payload:
            if own:
                self._schedule_resync(None, None)
            else:
                self._schedule_resync(int(payload["resync"]), int(payload["tag"]))
            return
        entries = payload["e"]
        if not own:
            for entry in entries:  # later ids of this node follow the other nodes' ones
                if entry[0] == "b" and entry[2] is not None:
                    self._tick = max(self._tick, entry[2] >> TAG_BITS)
        channel = self.channels.get(payload["c"])
        if channel is not None:  # a room not loaded here reads its state when it loads
            self._deliver(channel, entries, own=own)

    def _deliver(self, channel: ChatChannel, entries: list[list[Any]], *, own: bool) -> None:
        for entry in entries:
            kind = entry[0]
            if kind == "b":
                data, message_id = entry[1], entry[2]
                if message_id is not None and not channel.first_delivery(message_id):
                    continue
                channel.broadcast(data, message_id)
            elif kind == "k":
                self._kick(channel, entry[1], entry[2], entry[3])
            elif kind == "s" and (not own or entry[1] == "message"):
                # the sender's room decided it already; its history follows the delivery order
                channel.room.replay(entry[1], entry[2])

    def _redis_down(self) -> None:
        self._generation += 1
        if self._floor is None:
            self._floor = (self._tick << TAG_BITS) - RESYNC_MARGIN
            self._away_tag = self.fanout.tag if self.fanout is not None else 0
        for channel in self.channels.values():
            if channel.mark is None:
                channel.mark = max(0, channel.high - RESYNC_MARGIN)

    async def _redis_up(self) -> None:
        """Redis is back: store what this node said meanwhile, tell the other nodes to read it
        back, and read back what they said (pub/sub dropped it)."""
        assert self.fanout is not None
        await self.flush()
        if self._floor is not None:
            floor, self._floor = self._floor, None
            notice = {"n": self.fanout.node, "resync": floor, "tag": self._away_tag}
            self.fanout.publish("chat", encode(notice))
        self._schedule_resync(None, None)

    def _schedule_resync(self, since: int | None, tag: int | None) -> None:
        """In ``RESYNC_DELAY`` s, deliver the stored messages this node may have missed: after
        each room's mark (its last delivery before Redis went away) and, for another node's
        notice, that node's (its ``tag`` in their low bits) after ``since`` (the first id it
        made while away)."""
        if since is None:
            if self._resync_waiting:  # the one waiting reads every room's mark when it begins
                return
            self._resync_waiting = True
        task = asyncio.ensure_future(self._resync(since, tag))
        self._resyncs.add(task)
        task.add_done_callback(self._resyncs.discard)

    async def _resync(self, since: int | None, tag: int | None) -> None:
        mask = (1 << TAG_BITS) - 1
        try:
            await asyncio.sleep(RESYNC_DELAY)
        finally:
            if since is None:
                self._resync_waiting = False
        generation = self._generation  # a loss from now on keeps the marks for the next one
        await self.flush()
        for channel in list(self.channels.values()):
            # a room without sockets too: its history is the next welcome
            marks = [m for m in (channel.mark, since) if m is not None]
            if not marks:
                continue
            after, count, mark = min(marks), 0, channel.mark
            try:
                for _ in range(RESYNC_PAGES):
                    stored = await store.messages(
                        self.db, channel.id, after=after, limit=SINCE_LIMIT
                    )
                    for m in stored:
                        missed = (mark is not None and m.id > mark) or (m.id & mask) == tag
                        if missed and channel.first_delivery(m.id):
                            message = self.message(channel.room, m)
                            channel.room.replay("message", {"message": message_data(message)})
                            channel.broadcast(encode(message.frame()), m.id)
                            count += 1
                    if len(stored) < SINCE_LIMIT:
                        break
                    after = stored[-1].id
            except Exception:
                log.exception("chat resync of %s failed", channel.name)
                continue
            if count:
                RESYNCED.inc(count)
                log.info("chat resync of %s: %d message(s) delivered", channel.name, count)
            if self._generation == generation and self.fanout is not None and self.fanout.connected:
                channel.mark = None

    async def welcome(self, channel: ChatChannel, conn: Conn, since: int | None) -> None:
        """Queue the welcome (recent history, or what followed ``since``), then what was
        broadcast while it was being built, without duplicates."""
        channel.catch_up(conn)  # what was broadcast before comes first
        conn.holding, conn.held = [], 0
        channel.holding += 1
        try:
            if since is None:
                history = list(channel.room.history)
            else:
                history = await self.history(channel, after=since, limit=SINCE_LIMIT)
        finally:
            channel.catch_up(conn)  # into ``holding``
            held, conn.holding = conn.holding, None
            channel.holding -= 1
        frame = channel.room.welcome(conn.chatter, history)
        if since is not None:
            frame["since"] = since
        conn.push(encode(frame))
        last = history[-1].id if history else (since or 0)
        for data, message_id in held:
            if message_id is None or message_id > last:
                conn.push(data, message_id)

    # -- frames ------------------------------------------------------------------------------

    async def authenticate(self, conn: Conn, token: Any) -> str | None:
        """Sign the socket in; an error message when the token is not good."""
        if not isinstance(token, str) or len(token) > 2048:
            return "token must be a string"
        found = await verify_access_token(self.db, self.secret, token)
        if found == "invalid_token":
            return "the access token is invalid or expired"
        if isinstance(found, str):
            return "the access token has been revoked"
        conn.chatter = chatter_of(found.user)
        conn.version, conn.session = found.version, found.session
        conn.expires = float(found.expires_at)
        return None

    async def _target(self, name: Any) -> Chatter | None:
        if not isinstance(name, str) or not name or len(name) > 64:
            return None
        user = await get_user_by_name(self.db, name.lower())
        return None if user is None else chatter_of(user)

    async def handle(self, channel: ChatChannel, conn: Conn, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        room = channel.room
        now = time.time()
        if kind == "ping":
            conn.send(encode({"type": "pong"}))
            return
        if kind == "auth":
            since = frame.get("since")
            if since is not None and (not isinstance(since, int) or isinstance(since, bool)):
                conn.send(encode(_error("bad_frame", "since must be a message id")))
                return
            problem = await self.authenticate(conn, frame.get("token"))
            if problem is not None:
                conn.send(encode(_error("invalid_token", problem)))
                return
            await self.welcome(channel, conn, since)
            return
        actor = conn.chatter
        if actor is not None and conn.expires <= now:
            nonce = frame.get("nonce") if kind == "say" else None
            error = _error("token_expired", "the access token expired: send a new auth frame")
            if isinstance(nonce, str):
                error["nonce"] = nonce
            conn.send(encode(error))
            return
        events: list[Event]
        if kind == "say":
            nonce = frame.get("nonce")
            nonce = nonce[:64] if isinstance(nonce, str) else None
            followed = None
            if room.needs_follow_age(actor):
                assert actor is not None
                followed = await store.follow_time(self.db, channel.id, actor.id)
            events = room.say(actor, frame.get("text"), now, nonce=nonce, followed_at=followed)
        elif kind == "delete":
            message_id = frame.get("id")
            if not isinstance(message_id, int) or isinstance(message_id, bool):
                events = [Reply(_error("bad_frame", "id must be a message id"))]
            else:
                author_id = room.author_of(message_id)
                found = author_id is not None
                if not found:
                    await self.flush()
                    found, author_id = await store.message_author(self.db, channel.id, message_id)
                if not found:
                    events = [Reply(_error("no_such_message", "there is no such message"))]
                else:
                    author = await get_user(self.db, author_id) if author_id else None
                    chatter = chatter_of(author) if author else None
                    events = room.delete(actor, message_id, now, chatter)
        elif kind == "timeout":
            target = await self._target(frame.get("user"))
            events = room.timeout(actor, target, frame.get("seconds"), frame.get("reason"), now)
        elif kind == "ban":
            target = await self._target(frame.get("user"))
            events = room.ban(actor, target, frame.get("reason"), now)
        elif kind == "unban":
            events = room.unban(actor, await self._target(frame.get("user")), now)
        elif kind == "clear":
            events = room.clear(actor, now)
        elif kind == "mode":
            events = room.mode(actor, frame.get("slow", 0), frame.get("followers_only"), now)
        elif kind in ("mod", "unmod"):
            events = room.appoint(actor, await self._target(frame.get("user")), kind == "mod", now)
        elif kind == "blocked_terms":
            if "terms" in frame:
                events = room.set_blocked_terms(actor, frame["terms"], now)
            else:
                events = room.blocked_terms_frame(actor)
        else:
            events = [Reply(_error("unknown_type", f"unknown frame type {kind!r}"))]
        self.apply(channel, conn, events)

    def origin_allowed(self, websocket: WebSocket) -> bool:
        origin = websocket.headers.get("origin")
        if origin is None:
            return True  # not a browser: nothing of a signed-in page to abuse
        parts = urlsplit(origin)
        return (
            parts.scheme in ("http", "https")
            and bool(parts.netloc)
            and self.hosts.allows(parts.netloc)
        )

    async def serve(self, websocket: WebSocket) -> None:
        await self.start()
        if not self.origin_allowed(websocket):
            await websocket.close(code=1008)  # before the handshake: an HTTP 403
            return
        address = websocket.client.host if websocket.client else "unknown"
        await websocket.accept()
        if self.addresses[address] >= MAX_PER_ADDRESS:
            await _refuse(websocket, "too_many_connections", "too many chat sockets", 1008)
            return
        channel = await self.channel(websocket.path_params["channel"])
        if channel is None:
            await _refuse(websocket, "no_such_channel", "there is no such channel", 4404)
            return
        since = websocket.query_params.get("since")
        conn = Conn(websocket, address, channel, asyncio.current_task())
        self.addresses[address] += 1
        channel.join(conn)
        watcher = (
            None
            if self.viewers is None
            else self.viewers.chat_opened(channel.name, websocket.scope)
        )
        try:
            await self.welcome(channel, conn, _message_id(since))
            conn.writer = asyncio.create_task(self._write(conn))
            await self._read(channel, conn)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not conn.dropped or task is None:
                raise
            task.uncancel()  # Conn.drop() stopped the wait for a client that does not read
        finally:
            conn.reader = None
            conn.closing = True
            channel.leave(conn)
            if watcher is not None and self.viewers is not None:
                self.viewers.chat_closed(channel.name, watcher)
            self.addresses[address] -= 1
            if self.addresses[address] <= 0:
                del self.addresses[address]
            if conn.writer is not None:
                conn.writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await conn.writer
            if not (conn.closed or conn.dropped):  # a dropped client would not read the close
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(websocket.close(code=1000), 1.0)

    @staticmethod
    async def _write(conn: Conn) -> None:
        """The socket's writer task."""
        try:
            await conn.write_loop()
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away during a send
        except Exception:
            log.exception("chat socket from %s: a send failed", conn.address)

    async def _read(self, channel: ChatChannel, conn: Conn) -> None:
        """Read and handle the client's frames until it goes away; once the socket is told it
        will be closed, what the client sends is read and ignored until the close."""
        receive = conn.ws.receive
        while not conn.dropped:
            conn.reading = True
            try:
                message = await receive()
            finally:
                conn.reading = False
            if message["type"] == "websocket.disconnect":
                return
            if conn.closing:
                continue
            now = conn.seen = time.monotonic()
            conn.frames = [t for t in conn.frames if t > now - FLOOD_WINDOW]
            conn.frames.append(now)
            if len(conn.frames) > FLOOD_FRAMES:
                conn.send(encode(_error("flood", "too many frames")))
                conn.close_soon()
                continue
            data = message.get("bytes")
            if data is None:
                conn.send(encode(_error("bad_frame", "frames are msgpack in binary messages")))
                continue
            if len(data) > MAX_FRAME:
                conn.send(
                    encode(_error("frame_too_large", f"a frame has at most {MAX_FRAME} bytes"))
                )
                conn.close_soon()
                continue
            try:
                frame = msgpack.unpackb(data, raw=False, strict_map_key=True)
            except (ValueError, TypeError, msgpack.UnpackException):
                frame = None
            if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
                conn.send(encode(_error("bad_frame", "a frame is a msgpack map with a type")))
                continue
            await self.handle(channel, conn, frame)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


async def _refuse(websocket: WebSocket, code: str, message: str, close: int) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_bytes(encode(_error(code, message)))
        await websocket.close(code=close)


def service(app: Starlette) -> ChatService:
    found: ChatService | None = getattr(app.state, "chat", None)
    if found is None:
        found = ChatService(
            app.state.db, app.state.secret, HostPolicy.from_settings(app.state.settings)
        )
        events = getattr(app.state, "events", None)
        found.viewers = None if events is None else events.viewers
        fanout: Fanout | None = getattr(app.state, "fanout", None)
        if fanout is not None:
            found.attach(fanout)
            if events is not None:  # another node's sign-out closes the sockets here too
                events.revoke_hooks.append(found.revoke_user)
        app.state.chat = found
        on_sign_out(app, found.revoke_user)
    return found


async def close(app: Starlette) -> None:
    """At shutdown: write what is queued and stop the background loops."""
    found: ChatService | None = getattr(app.state, "chat", None)
    if found is not None:
        await found.stop()


async def chat_socket(websocket: WebSocket) -> None:
    await service(websocket.app).serve(websocket)


class ChatAhead:
    """ASGI middleware: hands a ``/ws/chat/{channel}`` WebSocket to the chat ahead of the router
    (as ``HlsAhead`` does for ``/hls``). A chat socket lives for hours: behind the router, each
    one holds the router's and the exception middleware's frames and wrappers (about 4 KiB) and
    every message it is sent passes them."""

    PREFIX = "/ws/chat/"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            path: str = scope["path"][len(scope.get("root_path", "")) :]
            name = path[len(self.PREFIX) :]
            if path.startswith(self.PREFIX) and name and "/" not in name:
                scope["path_params"] = {"channel": name}
                await chat_socket(WebSocket(scope, receive, send))
                return
        await self.app(scope, receive, send)


# -- REST --------------------------------------------------------------------------------------


def _message_id(raw: str | None) -> int | None:
    """A message id from a query parameter; None when absent or not one."""
    if raw is None or not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        return None
    return int(raw)


def _id_param(params: QueryParams, name: str) -> int | None:
    raw = params.get(name)
    found = _message_id(raw)
    if raw is not None and found is None:
        raise invalid(f"{name} must be a message id")
    return found


def _limit(params: QueryParams) -> int:
    raw = params.get("limit", str(HISTORY))
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 4 or not 1 <= int(raw) <= PAGE_LIMIT:
        raise invalid(f"limit must be an integer between 1 and {PAGE_LIMIT}")
    return int(raw)


async def _channel(request: Request) -> tuple[ChatService, ChatChannel]:
    chat = service(request.app)
    await chat.start()
    channel = await chat.channel(request.path_params["name"])
    if channel is None:
        raise not_found("no such channel")
    return chat, channel


async def chat_history(request: Request) -> Response:
    """Messages of a channel, oldest first: the last ``limit`` before ``before`` (or newest),
    or with ``after`` the first ``limit`` after it."""
    params = request.query_params
    before, after, limit = _id_param(params, "before"), _id_param(params, "after"), _limit(params)
    chat, channel = await _channel(request)
    messages = await chat.history(channel, before=before, after=after, limit=limit)
    return JSONResponse({"messages": [m.frame() for m in messages]})


async def chat_audit(request: Request) -> Response:
    """The moderation log (newest first), for the broadcaster, moderators and admins."""
    user = await current_user(request)
    before, limit = _id_param(request.query_params, "before"), _limit(request.query_params)
    chat, channel = await _channel(request)
    if not chat.channel_moderated_by(channel, user):
        raise ApiError(403, "forbidden", "only the broadcaster and moderators read the audit log")
    await chat.flush()
    entries = await store.audit_entries(chat.db, channel.id, before=before, limit=limit)
    return JSONResponse({"entries": entries})


def routes() -> list[BaseRoute]:
    """The REST routes (under ``/api/v1``)."""
    return [
        api_route("/channels/{name}/chat", GET=chat_history),
        api_route("/channels/{name}/chat/audit", GET=chat_audit),
    ]


def ws_routes() -> list[BaseRoute]:
    """The socket's route (:class:`ChatAhead` answers it first in the app)."""
    return [WebSocketRoute("/ws/chat/{channel}", chat_socket)]
