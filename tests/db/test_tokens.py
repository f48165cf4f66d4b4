"""Sessions and refresh-token rotation: two-tabs grace, reuse detection, expiry (explicit times)."""

from __future__ import annotations

import time

import pytest

from kitch.auth.tokens import successor_refresh_token
from kitch.db import Database
from kitch.db.tokens import (
    RefreshOutcome,
    RefreshResult,
    create_session,
    revoke_session,
    revoke_session_of,
    rotate_refresh_token,
    session_active,
)
from kitch.db.users import create_user, sign_out_everywhere

SECRET = b"s" * 32


@pytest.fixture
async def db(db: Database) -> Database:
    """The database with user 1."""
    await create_user(db, "tok", "tok@example.com", "x")
    return db


async def rotate(
    db: Database, token: str, *, ttl: int = 100, grace: float = 5, now: float | None = None
) -> RefreshResult:
    return await rotate_refresh_token(
        db,
        token,
        successor=lambda old: successor_refresh_token(SECRET, old),
        ttl=ttl,
        grace=grace,
        now=now,
    )


async def count(db: Database, sql: str) -> int:
    row = await db.fetchone(sql)
    assert row is not None
    return int(row[0])


async def test_grace_gives_the_same_successor_then_reuse_revokes_the_session(
    db: Database,
) -> None:
    now = time.time()
    session = await create_session(db, 1, ttl=100)
    first = session.refresh_token
    a = await rotate(db, first, now=now)
    assert a.outcome is RefreshOutcome.ROTATED and a.user_id == 1 and a.session == session.id
    b = await rotate(db, first, now=now + 4)  # the second tab, within the grace
    assert b.outcome is RefreshOutcome.ROTATED and b.token == a.token
    # One exchange, one new live token: the replay minted nothing.
    assert await count(db, "SELECT count(*) FROM refresh_tokens") == 2
    late = await rotate(db, first, now=now + 6)
    assert late.outcome is RefreshOutcome.REUSED and late.session == session.id
    assert not await session_active(db, session.id, 1)
    assert a.token is not None
    for token in (a.token, first):
        result = await rotate(db, token, now=now + 7)
        assert result.outcome is RefreshOutcome.INVALID


async def test_expiry(db: Database) -> None:
    session = await create_session(db, 1, ttl=10)
    expired = await rotate(db, session.refresh_token, ttl=10, now=time.time() + 11)
    assert expired.outcome is RefreshOutcome.INVALID


async def test_sessions_are_independent(db: Database) -> None:
    laptop = await create_session(db, 1, ttl=100)
    phone = await create_session(db, 1, ttl=100)
    assert await revoke_session_of(db, laptop.refresh_token) == (1, laptop.id)
    assert not await session_active(db, laptop.id, 1)
    assert await session_active(db, phone.id, 1)
    assert (await rotate(db, laptop.refresh_token)).outcome is RefreshOutcome.INVALID
    assert (await rotate(db, phone.refresh_token)).outcome is RefreshOutcome.ROTATED
    assert await revoke_session_of(db, "rt_unknown") is None
    await revoke_session(db, phone.id, 2)  # not user 2's session: nothing happens
    assert await session_active(db, phone.id, 1)
    await revoke_session(db, phone.id, 1)
    assert not await session_active(db, phone.id, 1)


async def test_sign_out_everywhere_revokes_every_session(db: Database) -> None:
    sessions = [await create_session(db, 1, ttl=100) for _ in range(3)]
    await sign_out_everywhere(db, 1)
    for session in sessions:
        assert not await session_active(db, session.id, 1)
        assert (await rotate(db, session.refresh_token)).outcome is RefreshOutcome.INVALID


async def test_only_hashes_are_stored(db: Database) -> None:
    session = await create_session(db, 1, ttl=100)
    rotated = await rotate(db, session.refresh_token)
    rows = await db.fetchall("SELECT token_hash FROM refresh_tokens")
    assert len(rows) == 2
    for token in (session.refresh_token, rotated.token):
        assert token is not None and all(token not in r[0] for r in rows)


async def test_a_session_that_only_refreshes_does_not_pile_up_tokens(db: Database) -> None:
    """Used tokens are kept until they expire (for reuse detection), then dropped; a session
    whose tokens have all expired goes with them.
    """
    now = time.time()
    token: str | None = (await create_session(db, 1, ttl=100)).refresh_token
    for step in range(50):  # one refresh every 10 s for 500 s, tokens living 100 s
        assert token is not None
        result = await rotate(db, token, now=now + 10 * step)
        assert result.outcome is RefreshOutcome.ROTATED, step
        token = result.token
    assert await count(db, "SELECT count(*) FROM refresh_tokens") <= 12
    await create_session(db, 1, ttl=100)  # purges at its start: nothing expired yet
    assert await count(db, "SELECT count(*) FROM sessions") == 2
