"""Live viewer counts: distinct clients per channel watching the player or the chat.

A client is a client address (as the trusted-proxy setting resolves it) + User-Agent. It counts
as a viewer of a channel while either

- it asked for a media playlist of the channel within the last ``window`` seconds (a player
  reloads its media playlist every few seconds; segments are never counted, so a CDN in front of
  ``/hls`` does not hide or multiply viewers), or
- it has the channel's chat socket open (a chat-only watcher, e.g. a listener in another tab).

A client with both the player and the chat open counts once. Counting costs one dictionary store
per playlist request and one per chat socket opened or closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import Scope

#: Most distinct playlist readers remembered per channel (a flood of made-up User-Agents stops
#: here; chat watchers are bounded by the open chat sockets).
MAX_PER_CHANNEL = 100_000


def client_key(scope: Scope) -> int:
    """The client of an HTTP or WebSocket ``scope``: its address and User-Agent, hashed."""
    return key_of(*client_of(scope))


def client_of(scope: Scope) -> tuple[str, bytes]:
    """The address and User-Agent of the client of ``scope``."""
    client = scope.get("client")
    agent = b""
    for name, value in scope["headers"]:
        if name == b"user-agent":
            agent = value
            break
    return (client[0] if client else ""), agent


def key_of(address: str, agent: bytes) -> int:
    """:func:`client_key` of a client known by its address and User-Agent (an HLS worker
    process reports its playlist readers so: hashes differ between processes)."""
    return hash((address, agent))


class ViewerCounter:
    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        #: the other nodes' viewers of a channel (a fan-out through Redis; None: one node)
        self.remote: Callable[[str], int] | None = None
        self._seen: dict[str, dict[int, float]] = {}
        #: channel -> client -> open chat sockets of that client
        self._chat: dict[str, dict[int, int]] = {}

    def seen(self, channel: str, scope: Scope) -> None:
        """Count the client of ``scope`` (an HTTP request for a media playlist)."""
        self.seen_key(channel, client_key(scope))

    def seen_key(self, channel: str, key: int) -> None:
        """Count the client ``key`` (:func:`client_key` or :func:`key_of`) as a reader of a
        media playlist of ``channel`` now."""
        viewers = self._seen.get(channel)
        if viewers is None:
            viewers = self._seen[channel] = {}
        if len(viewers) >= MAX_PER_CHANNEL and key not in viewers:
            self._prune(channel, viewers)
            if len(viewers) >= MAX_PER_CHANNEL:
                return
        viewers[key] = self.clock()

    def chat_opened(self, channel: str, scope: Scope) -> int:
        """A chat socket of ``channel`` opened (its WebSocket ``scope``); answers the key to give
        :meth:`chat_closed` when it closes."""
        key = client_key(scope)
        sockets = self._chat.setdefault(channel, {})
        sockets[key] = sockets.get(key, 0) + 1
        return key

    def chat_closed(self, channel: str, key: int) -> None:
        sockets = self._chat.get(channel)
        if sockets is None or key not in sockets:
            return
        if sockets[key] > 1:
            sockets[key] -= 1
            return
        del sockets[key]
        if not sockets:
            del self._chat[channel]

    def _prune(self, channel: str, viewers: dict[int, float]) -> None:
        cutoff = self.clock() - self.window
        for key in [k for k, at in viewers.items() if at < cutoff]:
            del viewers[key]
        if not viewers:
            self._seen.pop(channel, None)

    def count(self, channel: str) -> int:
        """Viewers of ``channel``: :meth:`local_count`, plus the other nodes' when several
        nodes share their counts."""
        if self.remote is None:
            return self.local_count(channel)
        return self.local_count(channel) + self.remote(channel)

    def local_counts(self) -> dict[str, int]:
        """:meth:`local_count` of every channel with a viewer here."""
        counts = {}
        for channel in {*self._seen, *self._chat}:
            count = self.local_count(channel)
            if count:
                counts[channel] = count
        return counts

    def local_count(self, channel: str) -> int:
        """Distinct viewers of ``channel`` on this node: playlist readers within the window and
        clients with the chat open, each client once."""
        viewers = self._seen.get(channel)
        if viewers:
            self._prune(channel, viewers)
            viewers = self._seen.get(channel)
        chat = self._chat.get(channel)
        if not viewers:
            return len(chat) if chat else 0
        if not chat:
            return len(viewers)
        return len(viewers) + sum(1 for key in chat if key not in viewers)

    def forget(self, channel: str) -> None:
        """Forget the channel's playlist readers (a broadcast started or ended); open chat
        sockets still count."""
        self._seen.pop(channel, None)
