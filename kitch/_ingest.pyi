"""Type stub for the native ingest frame path (kitch/_ingest.pyx; twin: kitch/_ingest_py.py)."""

from collections.abc import Callable
from typing import Any

__all__ = ["FrameLane"]

class FrameLane:
    @property
    def taken(self) -> int: ...
    def __init__(
        self,
        broadcast: Any,
        conn: Any,
        sink: Any,
        clock: Callable[[], float],
        wall: Callable[[], float],
        failed: Callable[[Any, Any, str, float], None],
        steps: tuple[Any, Any, Any, Any],
    ) -> None: ...
    def __call__(self, packet: Any) -> bool: ...
