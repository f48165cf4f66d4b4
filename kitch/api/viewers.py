"""Live viewer counts: distinct HLS viewers per channel over a sliding window.

A viewer is a client address + User-Agent that asked for a media playlist of the channel within
the last ``window`` seconds. Media playlists are what a player reloads every few seconds (and
what a CDN cannot cache for long); segments are never counted, so a CDN in front of ``/hls``
does not hide or multiply viewers. Counting costs one dictionary store per playlist request.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import Scope

#: Most distinct viewers remembered per channel (a flood of made-up User-Agents stops here).
MAX_PER_CHANNEL = 100_000


class ViewerCounter:
    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._seen: dict[str, dict[int, float]] = {}

    def seen(self, channel: str, scope: Scope) -> None:
        """Count the client of ``scope`` (an HTTP request for a media playlist)."""
        client = scope.get("client")
        agent = b""
        for name, value in scope["headers"]:
            if name == b"user-agent":
                agent = value
                break
        viewers = self._seen.get(channel)
        if viewers is None:
            viewers = self._seen[channel] = {}
        key = hash((client[0] if client else "", agent))
        if len(viewers) >= MAX_PER_CHANNEL and key not in viewers:
            self._prune(channel, viewers)
            if len(viewers) >= MAX_PER_CHANNEL:
                return
        viewers[key] = self.clock()

    def _prune(self, channel: str, viewers: dict[int, float]) -> None:
        cutoff = self.clock() - self.window
        for key in [k for k, at in viewers.items() if at < cutoff]:
            del viewers[key]
        if not viewers:
            self._seen.pop(channel, None)

    def count(self, channel: str) -> int:
        """Distinct viewers of ``channel`` within the window."""
        viewers = self._seen.get(channel)
        if not viewers:
            return 0
        self._prune(channel, viewers)
        return len(viewers)

    def forget(self, channel: str) -> None:
        self._seen.pop(channel, None)
