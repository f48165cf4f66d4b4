"""Rate limits for passwords and account changes; the clock is passed in.

- :class:`FailureLimiter`: a sliding window of events per key (client addresses, registrations).
- :class:`LoginLimiter`: wrong passwords slow an account down with growing delays (never a lock
  that shuts out the right password), plus a per-address window that stops spraying.
- :func:`address_key`: the key a client address is limited under (IPv6: its /64).
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

MAX_KEYS = 100_000


def address_key(host: str) -> str:
    """The key a client address counts under: IPv4 as is, IPv6 by its /64 (one subscriber gets a
    whole /64, so limiting single IPv6 addresses limits nothing); IPv4-mapped IPv6 as IPv4.
    """
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


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

    def hit(self, key: str, now: float) -> int:
        """Count an attempt when allowed (return 0), else return the seconds to wait."""
        wait = self.retry_after(key, now)
        if not wait:
            self.record_failure(key, now)
        return wait

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


@dataclass
class _Strikes:
    failures: int
    last: float
    allowed_at: float


class LoginLimiter:
    """Failed-password limits: growing delays per account, a sliding window per address.

    Per account: ``free`` failures in a row are checked without any wait; after failure ``free``
    the account waits 1 s before its next attempt, after each further failure twice as long, at
    most ``max_delay`` s. An attempt during the wait is refused without
    checking the password; the first attempt after it is checked, so the right password always
    gets in after at most ``max_delay`` s. A right password clears the account's failures;
    ``window`` s without a failure forget them. Per address: at most ``per_address`` failures
    per sliding ``window``.

    Use :meth:`attempt` before checking a password and :meth:`succeeded` when it was right: the
    attempt counts as a failure from the start, so a burst of concurrent guesses (each waiting
    for bcrypt) cannot all pass the check before the first one is recorded.
    """

    def __init__(
        self,
        free: int,
        per_address: int,
        window: float,
        clock: Callable[[], float],
        max_delay: float = 60.0,
    ) -> None:
        self.free = free
        self.window = window
        self.max_delay = max_delay
        self.clock = clock
        self.addresses = FailureLimiter(per_address, window)
        self._accounts: OrderedDict[str, _Strikes] = OrderedDict()

    def delay(self, failures: int) -> float:
        """Seconds an account waits after its ``failures``-th consecutive failure."""
        if failures < self.free:
            return 0.0
        return float(min(self.max_delay, 2.0 ** min(failures - self.free, 64)))

    def _strikes(self, account: str, now: float) -> _Strikes | None:
        strikes = self._accounts.get(account)
        if strikes is not None and now - strikes.last >= self.window:
            del self._accounts[account]
            return None
        return strikes

    def retry_after(self, accounts: list[str], address: str) -> int:
        now = self.clock()
        waits = [self.addresses.retry_after(address, now)]
        for account in accounts:
            strikes = self._strikes(account, now)
            if strikes is not None and strikes.allowed_at > now:
                waits.append(max(1, math.ceil(strikes.allowed_at - now)))
        return max(waits)

    def attempt(self, accounts: list[str], address: str) -> int:
        """Seconds to wait (nothing counted), or 0: go ahead, the attempt is counted as failed."""
        wait = self.retry_after(accounts, address)
        if not wait:
            self.failed(accounts, address)
        return wait

    def failed(self, accounts: list[str], address: str) -> None:
        now = self.clock()
        self.addresses.record_failure(address, now)
        for account in accounts:
            strikes = self._strikes(account, now) or _Strikes(0, now, now)
            strikes.failures += 1
            strikes.last = now
            strikes.allowed_at = now + self.delay(strikes.failures)
            self._accounts[account] = strikes
            self._accounts.move_to_end(account)
        while len(self._accounts) > MAX_KEYS:
            self._accounts.popitem(last=False)

    def succeeded(self, accounts: list[str], address: str) -> None:
        """The password was right: clear the accounts' failures and forgive this attempt."""
        for account in accounts:
            self._accounts.pop(account, None)
        self.addresses.forgive(address)
