"""Sliding-window counter of failures per key (account, client address); the clock is passed in."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

MAX_KEYS = 100_000


class FailureLimiter:
    """Allows ``limit`` failures per ``window`` seconds per key.

    ``retry_after(key, now)`` is 0 while the key may try again, else the seconds (rounded up) until
    its oldest failure leaves the window. Memory is bounded: past ``MAX_KEYS`` keys the stalest
    ones are forgotten.
    """

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _prune(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, key: str, now: float) -> int:
        times = self._prune(key, now)
        if times is None or len(times) < self.limit:
            return 0
        return max(1, math.ceil(times[0] + self.window - now))

    def record_failure(self, key: str, now: float) -> None:
        times = self._prune(key, now)
        if times is None:
            if len(self._failures) >= MAX_KEYS:
                self._evict(now)
            times = self._failures.setdefault(key, deque())
        times.append(now)
        while len(times) > self.limit:
            times.popleft()

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)

    def forgive(self, key: str) -> None:
        """Take back the newest failure of ``key`` (an attempt counted up front that succeeded)."""
        times = self._failures.get(key)
        if times:
            times.pop()
            if not times:
                del self._failures[key]

    def _evict(self, now: float) -> None:
        for key in list(self._failures):
            self._prune(key, now)
        if len(self._failures) >= MAX_KEYS:
            oldest = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for key in oldest[: len(oldest) // 10 + 1]:
                del self._failures[key]


class LoginLimiter:
    """Failed-login limits per account and per client address.

    Use :meth:`attempt` before checking a password and :meth:`succeeded` when it was right: the
    attempt counts as a failure from the start, so a burst of concurrent guesses (each waiting
    for bcrypt) cannot all pass the check before the first one is recorded.
    """

    def __init__(
        self,
        per_account: int,
        per_address: int,
        window: float,
        clock: Callable[[], float],
    ) -> None:
        self.accounts = FailureLimiter(per_account, window)
        self.addresses = FailureLimiter(per_address, window)
        self.clock = clock

    def retry_after(self, account: str, address: str) -> int:
        now = self.clock()
        return max(
            self.accounts.retry_after(account, now), self.addresses.retry_after(address, now)
        )

    def attempt(self, account: str, address: str) -> int:
        """Seconds to wait (nothing counted), or 0: go ahead, the attempt is counted as failed."""
        wait = self.retry_after(account, address)
        if not wait:
            self.failed(account, address)
        return wait

    def failed(self, account: str, address: str) -> None:
        now = self.clock()
        self.accounts.record_failure(account, now)
        self.addresses.record_failure(address, now)

    def succeeded(self, account: str, address: str) -> None:
        """The password was right: clear the account's failures and forgive this attempt."""
        self.accounts.reset(account)
        self.addresses.forgive(address)
