"""Pure-Python twin of :mod:`kitch._ingest`: the same :class:`FrameLane`, which declines every
packet, so each one goes the Python way (``Hub.feed`` and the sinks); that way is the oracle the
native lane is tested against (tests/ingest/test_lane.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["FrameLane"]


class FrameLane:
    """Takes no packet (see the native module for what it would take)."""

    def __init__(
        self,
        broadcast: Any,
        conn: Any,
        sink: Any,
        clock: Callable[[], float],
        wall: Callable[[], float],
        failed: Callable[[Any, Any, str, float], None],
        steps: tuple[Any, Any, Any, Any],
    ) -> None:
        self._taken = 0

    @property
    def taken(self) -> int:
        """Packets taken: always 0 here."""
        return self._taken

    def __call__(self, packet: Any) -> bool:
        return False
