"""The rate limiters with a hand-driven clock, and the address keys they count under."""

from __future__ import annotations

import pytest

from kitch.auth import ratelimit
from kitch.auth.ratelimit import FailureLimiter, LoginLimiter, address_key


def test_window_slides() -> None:
    limiter = FailureLimiter(limit=3, window=60.0)
    for t in (0.0, 10.0, 20.0):
        assert limiter.retry_after("a", t) == 0
        limiter.record_failure("a", t)
    assert limiter.retry_after("a", 21.0) == 39  # until the failure at t=0 leaves the window
    assert limiter.retry_after("b", 21.0) == 0
    assert limiter.retry_after("a", 60.0) == 0
    limiter.record_failure("a", 60.0)
    assert limiter.retry_after("a", 60.5) == 10


def test_growing_delays_never_lock_the_owner_out() -> None:
    now = [0.0]
    limiter = LoginLimiter(3, 100, window=900.0, clock=lambda: now[0], max_delay=60.0)
    for _ in range(2):  # free failures
        assert limiter.attempt(["acct"], "1.2.3.4") == 0
    waits = []
    for _ in range(10):  # each failure past the free ones doubles the wait, up to 60 s
        assert limiter.attempt(["acct"], "1.2.3.4") == 0
        waits.append(limiter.retry_after(["acct"], "5.6.7.8"))
        assert limiter.attempt(["acct"], "5.6.7.8") == waits[-1]  # refused, nothing counted
        now[0] += waits[-1]
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    # After the wait an attempt is checked; the right password clears the account.
    assert limiter.attempt(["acct"], "5.6.7.8") == 0
    limiter.succeeded(["acct"], "5.6.7.8")
    assert limiter.retry_after(["acct"], "5.6.7.8") == 0
    # The window without failures forgets them too.
    for _ in range(3):
        limiter.failed(["other"], "9.9.9.9")
    assert limiter.retry_after(["other"], "9.9.9.9") == 1
    now[0] += 900.0
    assert limiter.attempt(["other"], "9.9.9.9") == 0
    assert limiter.retry_after(["other"], "9.9.9.9") == 0  # counting starts again at 1


def test_success_resets_account_but_not_address() -> None:
    now = [0.0]
    limiter = LoginLimiter(2, 3, window=100.0, clock=lambda: now[0])
    limiter.failed(["acct"], "1.2.3.4")
    limiter.failed(["acct"], "1.2.3.4")
    assert limiter.attempt(["acct"], "5.6.7.8") > 0  # refused: counts nothing
    now[0] = 1.0  # the wait has passed
    assert limiter.attempt(["acct"], "1.2.3.4") == 0
    limiter.succeeded(["acct"], "1.2.3.4")  # the attempt above had the right password
    assert limiter.retry_after(["acct"], "5.6.7.8") == 0
    limiter.failed(["other"], "1.2.3.4")
    assert limiter.retry_after(["new"], "1.2.3.4") > 0  # 3 failures from the address stand
    now[0] = 201.0
    assert limiter.retry_after(["new"], "1.2.3.4") == 0


def test_attempts_count_before_the_password_is_checked() -> None:
    """Concurrent guesses all pass a check made before any failure is recorded; count first."""
    limiter = LoginLimiter(3, 100, window=60.0, clock=lambda: 0.0)
    allowed = [limiter.attempt(["acct"], f"10.0.0.{i}") == 0 for i in range(10)]
    assert allowed == [True] * 3 + [False] * 7
    limiter.succeeded(["acct"], "10.0.0.0")
    assert limiter.attempt(["acct"], "10.0.0.0") == 0


def test_every_key_of_an_account_is_charged() -> None:
    limiter = LoginLimiter(1, 100, window=60.0, clock=lambda: 0.0)
    assert limiter.attempt(["name", "name@example.com"], "10.0.0.1") == 0
    assert limiter.retry_after(["name"], "10.0.0.2") == 1
    assert limiter.retry_after(["name@example.com"], "10.0.0.2") == 1


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("unknown", "unknown"),
    ],
)
def test_address_keys_group_ipv6_by_64(host: str, key: str) -> None:
    assert address_key(host) == key


def test_memory_is_bounded() -> None:
    ratelimit.MAX_KEYS, saved = 100, ratelimit.MAX_KEYS
    try:
        limiter = FailureLimiter(limit=5, window=1000.0)
        for i in range(1000):
            limiter.record_failure(f"k{i}", float(i))
        assert len(limiter._failures) <= 100
        assert limiter.retry_after("k999", 1000.0) == 0  # one failure, limit 5
    finally:
        ratelimit.MAX_KEYS = saved
