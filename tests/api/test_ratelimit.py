"""The failed-login limiter with a hand-driven clock."""

from __future__ import annotations

from kitch.auth import ratelimit
from kitch.auth.ratelimit import FailureLimiter, LoginLimiter


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


def test_success_resets_account_but_not_address() -> None:
    now = [0.0]
    limiter = LoginLimiter(per_account=2, per_address=3, window=100.0, clock=lambda: now[0])
    limiter.failed("acct", "1.2.3.4")
    limiter.failed("acct", "1.2.3.4")
    assert limiter.attempt("acct", "5.6.7.8") > 0  # refused: counts nothing
    assert limiter.attempt("acct", "5.6.7.8") > 0
    now[0] = 100.5  # the window has passed
    assert limiter.attempt("acct", "1.2.3.4") == 0
    limiter.failed("acct", "1.2.3.4")
    limiter.succeeded("acct", "1.2.3.4")  # the attempt above had the right password
    assert limiter.retry_after("acct", "5.6.7.8") == 0
    limiter.failed("other", "1.2.3.4")
    limiter.failed("other", "1.2.3.4")
    assert limiter.retry_after("new", "1.2.3.4") > 0  # 3 failures from the address stand
    now[0] = 201.0
    assert limiter.retry_after("new", "1.2.3.4") == 0


def test_attempts_count_before_the_password_is_checked() -> None:
    """Concurrent guesses all pass a check made before any failure is recorded; count first."""
    limiter = LoginLimiter(per_account=3, per_address=100, window=60.0, clock=lambda: 0.0)
    allowed = [limiter.attempt("acct", f"10.0.0.{i}") == 0 for i in range(10)]
    assert allowed == [True] * 3 + [False] * 7
    limiter.succeeded("acct", "10.0.0.0")
    assert limiter.attempt("acct", "10.0.0.0") == 0


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
