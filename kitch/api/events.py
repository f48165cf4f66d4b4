"""The events socket ``/ws/events``: live notifications and channel changes, pushed.

Frames are msgpack maps with a ``type`` (binary WebSocket frames). The client may send
``{"type": "auth", "token": ACCESS_JWT}`` (first, and again later to refresh an expired token)
and ``{"type": "ping"}``. The server sends::

    {"type": "hello", "user": str | None}                          after connect and after auth
    {"type": "notification", "id", "kind", "channel", "title", "ts"}   to its user
        kind "live" (a followed channel went live), "schedule_reminder" / "schedule_start" (a
        scheduled stream starts soon / now: with "schedule_id" and "starts_at", Unix seconds)
    {"type": "channel", "name", "live": bool, "title", "category", "viewers": int | None}
        (a change made with ``PATCH channels/{name}`` that touched the tags adds "tags": [str])
    {"type": "error", "code", "message"}
    {"type": "ping"} (every HEARTBEAT s when nothing else was sent) / {"type": "pong"}

``channel`` frames go to every socket (signed in or not) for live channels, so a directory page
updates without a reload: go-live, offline, a title or category change, and the viewer count
every ``TICK`` seconds when it changed. A title or category change of a channel that is not live
goes only to the sockets of users who follow it. The viewer count is
:class:`~kitch.api.viewers.ViewerCounter`'s: distinct clients with the player or the chat open.

A signed-in socket closes (code 4001) as soon as its session is signed out (the auth routes call
:meth:`Events.revoke_user`), and the session is checked again every ``HEARTBEAT`` seconds.

Each socket has a bounded send queue: a client that does not read is dropped (close code 4008)
and never delays anyone else. A frame is encoded once for all sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import msgpack
from prometheus_client import Counter, Gauge
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from kitch.api.auth import SignedIn, session_valid, verify_access_token
from kitch.api.hosts import origin_allowed
from kitch.api.viewers import ViewerCounter
from kitch.cluster.fanout import Fanout
from kitch.db import Database
from kitch.db.follows import Notification, followed_names, record_viewers

log = logging.getLogger("kitch.events")

#: Frames waiting per socket before the client counts as too slow and is dropped.
QUEUE_SIZE = 256
#: Largest frame a client may send (bytes).
MAX_FRAME = 4096
#: Seconds between heartbeats on a quiet socket (and between revocation checks).
HEARTBEAT = 25.0
#: Seconds between viewer-count pushes (the default of the ``viewer_tick`` setting).
TICK = 5.0
#: Viewer samples kept per broadcast (one per TICK: 12 h at 5 s).
MAX_SAMPLES = 8640
#: Seconds a channel announced live (or offline) by another node is trusted before the lists
#: the nodes share in Redis are (they lag by a few seconds).
LIVE_GRACE = 15.0
#: Close codes.
CLOSE_TOO_SLOW = 4008
CLOSE_REVOKED = 4001

SOCKETS = Gauge("kitch_events_sockets", "Open /ws/events sockets")
DROPPED = Counter("kitch_events_dropped_total", "Events sockets dropped for not reading")


def encode(frame: dict[str, Any]) -> bytes:
    data: bytes = msgpack.packb(frame, use_bin_type=True)
    return data


@dataclass(eq=False)
class Subscriber:
    """One open events socket."""

    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    user_id: int | None = None
    username: str | None = None
    session: str | None = None  # the session of the access token it signed in with
    follows: set[str] = field(default_factory=set)
    too_slow: asyncio.Event = field(default_factory=asyncio.Event)
    revoked: asyncio.Event = field(default_factory=asyncio.Event)  # its user signed out

    def push(self, frame: bytes) -> None:
        if self.too_slow.is_set():
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            DROPPED.inc()
            self.too_slow.set()


@dataclass
class LiveChannel:
    name: str
    broadcast_id: int
    title: str
    category: str
    viewers: int = 0
    peak: int = 0
    series: list[tuple[float, int]] = field(default_factory=list)
    #: announced by this node (its ingest): this node records the viewers
    local: bool = True
    since: float = field(default_factory=time.monotonic)


class Events:
    """The publish side: the ingest hub and the channel routes tell it what changed; it pushes
    frames to the open sockets and keeps the live channels' viewer counts."""

    def __init__(self, viewer_window: float = 30.0, tick: float = TICK) -> None:
        self.viewers = ViewerCounter(viewer_window)
        self.tick = tick
        self.live: dict[str, LiveChannel] = {}
        self.sockets: set[Subscriber] = set()
        self.db: Database | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        #: the fan-out to the other nodes (None: this node alone); see :meth:`attach`
        self.fanout: Fanout | None = None
        #: called when another node signs a user out (the chat closes its sockets)
        self.revoke_hooks: list[Callable[[int, str | None], None]] = []
        #: with a fan-out: the last broadcast of each channel that went offline (not announced
        #: again from a lagging list of another node)
        self._ended: dict[str, int] = {}

    # -- several nodes (a fan-out through Redis; docs/CLUSTER.md) ----------------------------

    def attach(self, fanout: Fanout) -> None:
        """Share what happens with the other nodes through ``fanout``: each change is published
        once and every node (this one when it gets it back) pushes it to its own sockets; the
        viewer counts become the sum of every node's."""
        self.fanout = fanout
        fanout.on("events", self._received)
        fanout.local_viewers = self.viewers.local_counts
        fanout.local_live = self._local_live
        self.viewers.remote = lambda name: fanout.remote_viewers.get(name, 0)

    def _local_live(self) -> dict[str, Any]:
        return {
            c.name: [c.broadcast_id, c.title, c.category] for c in self.live.values() if c.local
        }

    def reconcile(self, now: float) -> None:
        """Match the live channels of the other nodes with what they last wrote to Redis: one
        this node missed (it started later, or Redis was away at the go-live) is announced here;
        one whose node stopped listing it (the node died) goes offline here. A go-live or an
        offline just received is left alone for ``LIVE_GRACE`` s (the lists lag behind)."""
        fanout = self.fanout
        if fanout is None or not fanout.connected or now - fanout.exchanged_at > 2 * self.tick:
            return
        remote = fanout.remote_live
        for name, (broadcast_id, title, category) in remote.items():
            if name in self.live or self._ended.get(name) == broadcast_id:
                continue
            self.live[name] = LiveChannel(name, broadcast_id, title, category, local=False)
            self._send(self._channel_frame(name, True, title, category), list(self.sockets))
        for channel in list(self.live.values()):
            if channel.local or channel.name in remote or now - channel.since < LIVE_GRACE:
                continue
            del self.live[channel.name]
            self.viewers.forget(channel.name)
            self._ended[channel.name] = channel.broadcast_id
            frame = self._channel_frame(channel.name, False, channel.title, channel.category)
            self._send(frame, list(self.sockets))

    def _fan(self, kind: str, *args: Any) -> bool:
        """Publish a change for every node; False when it must be applied here alone (one
        node, or Redis is away)."""
        if self.fanout is None:
            return False
        payload = encode({"n": self.fanout.node, "k": kind, "a": list(args)})
        return self.fanout.publish("events", payload)

    def _received(self, data: bytes) -> None:
        assert self.fanout is not None
        payload = msgpack.unpackb(data, raw=False)
        own = payload["n"] == self.fanout.node
        kind, args = payload["k"], payload["a"]
        if kind == "live":
            name, broadcast_id, title, category, notes = args
            self._went_live(
                name, broadcast_id, title, category, [Notification(**n) for n in notes], own
            )
        elif kind == "notify":
            self._notify([Notification(**n) for n in args[0]])
        elif kind == "offline":
            self._went_offline(*args)
        elif kind == "changed":
            self._channel_changed(*args)
        elif kind == "followed":
            self._followed(*args)
        elif kind == "revoke":
            self._revoke_user(*args)
            if not own:
                for hook in self.revoke_hooks:
                    hook(*args)

    # -- lifecycle (the app's lifespan) ------------------------------------------------------

    def start(self, db: Database) -> None:
        self.db = db
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick(), name="events-viewers")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        await asyncio.gather(*self._writes, return_exceptions=True)
        for channel in list(self.live.values()):
            if channel.local:
                await self._record(channel)

    def revoke_user(self, user_id: int, session: str | None = None) -> None:
        """Close ``user_id``'s sockets signed in with ``session`` now (that session signed out);
        with None every one of them (password change, sign-out everywhere, account deleted)."""
        if not self._fan("revoke", user_id, session):
            self._revoke_user(user_id, session)

    def _revoke_user(self, user_id: int, session: str | None) -> None:
        for sub in self.sockets:
            if sub.user_id == user_id and (session is None or sub.session == session):
                sub.revoked.set()

    # -- what happened -----------------------------------------------------------------------

    def _send(self, frame: dict[str, Any], to: Iterable[Subscriber]) -> None:
        data = encode(frame)
        for sub in to:
            sub.push(data)

    def _channel_frame(self, name: str, live: bool, title: str, category: str) -> dict[str, Any]:
        found = self.live.get(name)
        return {
            "type": "channel",
            "name": name,
            "live": live,
            "title": title,
            "category": category,
            "viewers": found.viewers if live and found is not None else None,
        }

    def went_live(
        self,
        name: str,
        broadcast_id: int,
        title: str,
        category: str,
        notifications: Iterable[Notification],
    ) -> None:
        """A new broadcast started: tell every socket, and each follower its notification.
        Playlist readers seen since the broadcast started count (the previous broadcast's were
        forgotten when it went offline)."""
        notes = list(notifications)
        if not self._fan("live", name, broadcast_id, title, category, [asdict(n) for n in notes]):
            self._went_live(name, broadcast_id, title, category, notes, True)

    def _went_live(
        self,
        name: str,
        broadcast_id: int,
        title: str,
        category: str,
        notifications: Iterable[Notification],
        local: bool,
    ) -> None:
        self.live[name] = LiveChannel(name, broadcast_id, title, category, local=local)
        self._send(self._channel_frame(name, True, title, category), list(self.sockets))
        by_user: dict[int, Notification] = {n.user_id: n for n in notifications}
        if not by_user:
            return
        for sub in list(self.sockets):
            note = by_user.get(sub.user_id) if sub.user_id is not None else None
            if note is not None:
                sub.push(encode(notification_frame(note)))

    def notify(self, notifications: Iterable[Notification]) -> None:
        """Push stored notifications (a scheduled stream's) to their users' open sockets."""
        notes = list(notifications)
        if not self._fan("notify", [asdict(n) for n in notes]):
            self._notify(notes)

    def _notify(self, notifications: Iterable[Notification]) -> None:
        by_user: dict[int, list[bytes]] = {}
        for note in notifications:
            by_user.setdefault(note.user_id, []).append(encode(notification_frame(note)))
        if not by_user:
            return
        for sub in list(self.sockets):
            for frame in by_user.get(sub.user_id, ()) if sub.user_id is not None else ():
                sub.push(frame)

    def went_offline(self, name: str, broadcast_id: int) -> None:
        if not self._fan("offline", name, broadcast_id):
            self._went_offline(name, broadcast_id)

    def _went_offline(self, name: str, broadcast_id: int) -> None:
        channel = self.live.get(name)
        if channel is None:  # never announced (its announcement failed): forget its readers
            self.viewers.forget(name)
            return
        if channel.broadcast_id != broadcast_id:
            return  # a newer broadcast of the channel is live: its readers stay
        del self.live[name]
        if self.fanout is not None:
            self._ended[name] = broadcast_id
        self.viewers.forget(name)
        self._send(
            self._channel_frame(name, False, channel.title, channel.category), list(self.sockets)
        )
        if channel.local:
            self._spawn_record(channel)

    def channel_changed(
        self, name: str, title: str, category: str, tags: list[str] | None = None
    ) -> None:
        """Title, category or (``tags`` given) tags changed (``PATCH channels/{name}``)."""
        if not self._fan("changed", name, title, category, tags):
            self._channel_changed(name, title, category, tags)

    def _channel_changed(
        self, name: str, title: str, category: str, tags: list[str] | None
    ) -> None:
        channel = self.live.get(name)
        if channel is not None:
            if (channel.title, channel.category) == (title, category) and tags is None:
                return
            channel.title, channel.category = title, category
            to = list(self.sockets)
        else:
            to = [sub for sub in self.sockets if name in sub.follows]
        frame = self._channel_frame(name, channel is not None, title, category)
        if tags is not None:
            frame["tags"] = tags
        self._send(frame, to)

    def followed(self, user_id: int, name: str, following: bool) -> None:
        """Keep the user's open sockets' follow sets current."""
        if not self._fan("followed", user_id, name, following):
            self._followed(user_id, name, following)

    def _followed(self, user_id: int, name: str, following: bool) -> None:
        for sub in self.sockets:
            if sub.user_id == user_id:
                if following:
                    sub.follows.add(name)
                else:
                    sub.follows.discard(name)

    def viewer_count(self, name: str) -> int | None:
        """The channel's live viewers (None when it is not live)."""
        return self.viewers.count(name) if name in self.live else None

    # -- viewer counts -----------------------------------------------------------------------

    async def _tick(self) -> None:
        records = 0
        while True:
            await asyncio.sleep(self.tick)
            records += 1
            try:
                self.reconcile(time.monotonic())
                self.sample(time.time())
                if records * self.tick >= 60:
                    records = 0
                    for channel in list(self.live.values()):
                        if channel.local:
                            await self._record(channel)
            except Exception:
                log.exception("viewer count tick failed")

    def sample(self, now: float) -> None:
        """Count every live channel's viewers; push the counts that changed."""
        for channel in list(self.live.values()):
            count = self.viewers.count(channel.name)
            channel.peak = max(channel.peak, count)
            if len(channel.series) < MAX_SAMPLES:
                channel.series.append((now, count))
            if count != channel.viewers:
                channel.viewers = count
                frame = self._channel_frame(channel.name, True, channel.title, channel.category)
                self._send(frame, list(self.sockets))

    def _spawn_record(self, channel: LiveChannel) -> None:
        task = asyncio.ensure_future(self._record(channel))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _record(self, channel: LiveChannel) -> None:
        if self.db is None:
            return
        try:
            await record_viewers(self.db, channel.broadcast_id, channel.peak, channel.series)
        except Exception:
            log.exception("could not record the viewers of broadcast %s", channel.broadcast_id)


def notification_frame(note: Notification) -> dict[str, Any]:
    frame = {
        "type": "notification",
        "id": note.id,
        "kind": note.kind,
        "channel": note.channel,
        "title": note.data.get("title", ""),
        "ts": note.created_at,
    }
    if note.schedule_id is not None:
        frame["schedule_id"] = note.schedule_id
        frame["starts_at"] = note.data.get("starts_at")
    return frame


def _error(code: str, message: str) -> bytes:
    return encode({"type": "error", "code": code, "message": message})


async def _authenticate(websocket: WebSocket, token: Any) -> SignedIn | str:
    """The sign-in for a valid, unrevoked access token; else an error code."""
    if not isinstance(token, str) or len(token) > 2048:
        return "invalid_token"
    return await verify_access_token(websocket.app.state.db, websocket.app.state.secret, token)


async def events_socket(websocket: WebSocket) -> None:
    events: Events = websocket.app.state.events
    headers = websocket.headers
    if not origin_allowed(
        getattr(websocket.app.state, "hosts", None), headers.get("origin"), headers.get("host")
    ):
        await websocket.close(1008)
        return
    await websocket.accept()
    sub = Subscriber()
    events.sockets.add(sub)
    SOCKETS.inc()
    auth: SignedIn | None = None
    db: Database = websocket.app.state.db

    async def writer() -> None:
        while True:
            try:
                frame = await asyncio.wait_for(sub.queue.get(), HEARTBEAT)
            except TimeoutError:
                frame = encode({"type": "ping"})
            await websocket.send_bytes(frame)

    async def checker() -> None:
        nonlocal auth
        while True:
            await asyncio.sleep(HEARTBEAT)
            if auth is None:
                continue
            if not await session_valid(db, auth.user.id, auth.version, auth.session):
                raise _Revoked
            if auth.expires_at < time.time():
                auth = None
                sub.user_id = sub.username = sub.session = None
                sub.follows = set()
                sub.push(_error("token_expired", "the access token expired; send a new one"))

    async def reader() -> None:
        nonlocal auth
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                sub.push(_error("bad_frame", "frames are binary msgpack maps"))
                continue
            if len(data) > MAX_FRAME:
                raise _TooBig
            try:
                frame = msgpack.unpackb(data, raw=False, strict_map_key=True)
            except Exception:
                frame = None
            if not isinstance(frame, dict):
                sub.push(_error("bad_frame", "a frame is a msgpack map with a type"))
                continue
            kind = frame.get("type")
            if kind == "ping":
                sub.push(encode({"type": "pong"}))
            elif kind == "auth":
                found = await _authenticate(websocket, frame.get("token"))
                if isinstance(found, str):
                    sub.push(_error(found, "the access token is invalid, expired or revoked"))
                    continue
                auth = found
                # who it is, before the next await: a sign-out from now on finds it
                sub.user_id, sub.username = auth.user.id, auth.user.username
                sub.session = auth.session
                sub.follows = await followed_names(db, auth.user.id)
                sub.push(encode({"type": "hello", "user": auth.user.username}))
            else:
                sub.push(_error("unknown_type", "frame types: auth, ping"))

    sub.push(encode({"type": "hello", "user": None}))
    tasks = [
        asyncio.create_task(writer()),
        asyncio.create_task(reader()),
        asyncio.create_task(checker()),
        asyncio.create_task(sub.too_slow.wait()),
        asyncio.create_task(sub.revoked.wait()),
    ]
    code = 1000
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = None if task.cancelled() else task.exception()
            if isinstance(error, _Revoked):
                code = CLOSE_REVOKED
            elif isinstance(error, _TooBig):
                code = 1009
            elif error is not None and not isinstance(error, WebSocketDisconnect | OSError):
                log.warning("events socket failed: %r", error)
                code = 1011
        if sub.too_slow.is_set():
            code = CLOSE_TOO_SLOW
        elif sub.revoked.is_set():
            code = CLOSE_REVOKED
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        events.sockets.discard(sub)
        SOCKETS.dec()
    with contextlib.suppress(Exception):
        await websocket.close(code)


class _Revoked(Exception):
    pass


class _TooBig(Exception):
    pass


def routes() -> list[WebSocketRoute]:
    return [WebSocketRoute("/ws/events", events_socket)]
