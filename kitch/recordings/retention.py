"""Which finished recordings the cleanup deletes: expired ones, then the oldest over the quota.

Pure: the caller lists the recordings and removes what this answers. Recordings still being
written are never candidates (they are not passed in), but their bytes count towards the quota.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Held:
    """A finished recording as the cleanup sees it."""

    id: int
    ended_at: float  # or its start, when it has no end time
    bytes: int


def plan(
    finished: Sequence[Held],
    *,
    now: float,
    retention_days: float,
    quota_bytes: int,
    live_bytes: int = 0,
) -> list[int]:
    """Ids to delete: every recording that ended more than ``retention_days`` ago (0: keep
    forever), then, oldest first, as many as it takes to bring the total (``live_bytes`` of
    the recordings being written included) to ``quota_bytes`` or under (0: no quota)."""
    doomed: list[int] = []
    kept: list[Held] = []
    for r in sorted(finished, key=lambda r: (r.ended_at, r.id)):
        if retention_days > 0 and r.ended_at < now - retention_days * DAY:
            doomed.append(r.id)
        else:
            kept.append(r)
    if quota_bytes > 0:
        total = live_bytes + sum(r.bytes for r in kept)
        for r in kept:
            if total <= quota_bytes:
                break
            doomed.append(r.id)
            total -= r.bytes
    return doomed
