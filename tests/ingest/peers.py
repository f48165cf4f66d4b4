"""A stand-in for an RTMP connection: the hub only needs a peer name and a way to drop one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(eq=False)
class Peer:
    peer: str
    kicked: str | None = None

    def kick(self, reason: str) -> None:
        self.kicked = reason
