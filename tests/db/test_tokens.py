"""Refresh-token rotation, the two-tabs grace, reuse detection and expiry, with explicit times."""

from __future__ import annotations

import time

import pytest

from kitch.db import Database
from kitch.db.tokens import (
    RefreshOutcome,
    create_refresh_token,
    revoke_family_of,
    rotate_refresh_token,
)
from kitch.db.users import create_user


@pytest.fixture
async def db(db: Database) -> Database:
    """The database with user 1."""
    await create_user(db, "tok", "tok@example.com", "x")
    return db


async def test_grace_then_reuse(db: Database) -> None:
    now = time.time()
    first = await create_refresh_token(db, 1, ttl=100)
    a = await rotate_refresh_token(db, first, ttl=100, grace=5, now=now)
    assert a.outcome is RefreshOutcome.ROTATED and a.user_id == 1
    b = await rotate_refresh_token(db, first, ttl=100, grace=5, now=now + 4)  # second tab
    assert b.outcome is RefreshOutcome.ROTATED and b.token != a.token
    late = await rotate_refresh_token(db, first, ttl=100, grace=5, now=now + 6)
    assert late.outcome is RefreshOutcome.REUSED
    for token in (a.token, b.token, first):
        assert token is not None
        result = await rotate_refresh_token(db, token, ttl=100, grace=5, now=now + 7)
        assert result.outcome is RefreshOutcome.INVALID


async def test_expiry(db: Database) -> None:
    token = await create_refresh_token(db, 1, ttl=10)
    expired = await rotate_refresh_token(db, token, ttl=10, grace=5, now=time.time() + 11)
    assert expired.outcome is RefreshOutcome.INVALID


async def test_families_are_independent(db: Database) -> None:
    laptop = await create_refresh_token(db, 1, ttl=100)
    phone = await create_refresh_token(db, 1, ttl=100)
    assert await revoke_family_of(db, laptop) == 1
    assert (await rotate_refresh_token(db, laptop, ttl=100, grace=5)).outcome is (
        RefreshOutcome.INVALID
    )
    assert (await rotate_refresh_token(db, phone, ttl=100, grace=5)).outcome is (
        RefreshOutcome.ROTATED
    )
    assert await revoke_family_of(db, "rt_unknown") is None


async def test_only_hashes_are_stored(db: Database) -> None:
    token = await create_refresh_token(db, 1, ttl=100)
    rows = await db.fetchall("SELECT token_hash FROM refresh_tokens")
    assert rows and all(token not in r[0] for r in rows)


async def test_a_session_that_only_refreshes_does_not_pile_up_tokens(db: Database) -> None:
    """Used tokens are kept until they expire (for reuse detection), then dropped."""
    now = time.time()
    token: str | None = await create_refresh_token(db, 1, ttl=100)
    for step in range(50):  # one refresh every 10 s for 500 s, tokens living 100 s
        assert token is not None
        result = await rotate_refresh_token(db, token, ttl=100, grace=5, now=now + 10 * step)
        assert result.outcome is RefreshOutcome.ROTATED, step
        token = result.token
    row = await db.fetchone("SELECT count(*) FROM refresh_tokens")
    assert row is not None and row[0] <= 12, row[0]
