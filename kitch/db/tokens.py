"""Sign-in sessions and their refresh tokens: stored hashed, rotated on every use.

A session is one sign-in (its id is the refresh-token family; access tokens carry it as ``sid``).
A refresh token may be exchanged once; its successor is derived from it (see
:func:`kitch.auth.tokens.successor_refresh_token`), so presenting it again within ``grace``
seconds of its first use (two browser tabs refreshing together) answers the *same* successor:
one exchange never yields two live tokens. Presenting it later is treated as theft and revokes
the whole session -- its refresh tokens and, through the ``sessions`` row, its access tokens.
"""

from __future__ import annotations

import enum
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from kitch.auth.tokens import hash_refresh_token, new_refresh_token
from kitch.db import Database, Transaction


class RefreshOutcome(enum.Enum):
    ROTATED = "rotated"
    INVALID = "invalid"  # unknown, expired or revoked
    REUSED = "reused"  # replay past the grace: the session is now revoked


@dataclass(frozen=True)
class RefreshResult:
    outcome: RefreshOutcome
    user_id: int | None = None
    token: str | None = None
    session: str | None = None


@dataclass(frozen=True)
class NewSession:
    id: str
    refresh_token: str


async def _insert(
    tx: Transaction, user_id: int, family: str, token: str, ttl: int, now: float
) -> None:
    await tx.execute(
        "INSERT INTO refresh_tokens (user_id, family, token_hash, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (token_hash) DO NOTHING",
        (user_id, family, hash_refresh_token(token), now, now + ttl),
    )


async def _purge_expired(tx: Transaction, user_id: int, now: float) -> None:
    await tx.execute(
        "DELETE FROM refresh_tokens WHERE user_id = ? AND expires_at < ?", (user_id, now)
    )
    # Its last access token expired long before its last refresh token did.
    await tx.execute(
        "DELETE FROM sessions WHERE user_id = ? AND NOT EXISTS "
        "(SELECT 1 FROM refresh_tokens r WHERE r.family = sessions.id)",
        (user_id,),
    )


async def _revoke_session(tx: Transaction, session: str, now: float) -> None:
    await tx.execute(
        "UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL",
        (now, session),
    )
    await tx.execute(
        "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, session)
    )


async def create_session(db: Database, user_id: int, ttl: int) -> NewSession:
    """Start a new session (one sign-in) and return it with its first refresh token."""
    now = time.time()
    session = secrets.token_hex(16)
    token = new_refresh_token()
    async with db.transaction() as tx:
        await _purge_expired(tx, user_id, now)
        await tx.execute(
            "INSERT INTO sessions (id, user_id, created_at) VALUES (?, ?, ?)",
            (session, user_id, now),
        )
        await _insert(tx, user_id, session, token, ttl, now)
    return NewSession(session, token)


async def session_active(db: Database, session: str, user_id: int) -> bool:
    """True while ``session`` of ``user_id`` exists and is not revoked."""
    row = await db.fetchone(
        "SELECT 1 FROM sessions WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
        (session, user_id),
    )
    return row is not None


async def rotate_refresh_token(
    db: Database,
    token: str,
    *,
    successor: Callable[[str], str],
    ttl: int,
    grace: float,
    now: float | None = None,
) -> RefreshResult:
    """Exchange ``token`` for ``successor(token)`` (see the module doc for replays and reuse)."""
    at = time.time() if now is None else now
    async with db.transaction() as tx:
        row = await tx.fetchone(
            "SELECT id, user_id, family, expires_at, used_at, revoked_at FROM refresh_tokens "
            "WHERE token_hash = ?",
            (hash_refresh_token(token),),
        )
        if row is None or row["revoked_at"] is not None or row["expires_at"] <= at:
            return RefreshResult(RefreshOutcome.INVALID)
        user_id, session = int(row["user_id"]), str(row["family"])
        if row["used_at"] is not None and at - row["used_at"] > grace:
            await _revoke_session(tx, session, at)
            return RefreshResult(RefreshOutcome.REUSED, user_id=user_id, session=session)
        fresh = successor(token)
        if row["used_at"] is None:
            await tx.execute("UPDATE refresh_tokens SET used_at = ? WHERE id = ?", (at, row["id"]))
            # A session that only ever refreshes would otherwise keep every token it was given.
            await _purge_expired(tx, user_id, at)
        await _insert(tx, user_id, session, fresh, ttl, at)  # a replay finds it already there
        return RefreshResult(RefreshOutcome.ROTATED, user_id=user_id, token=fresh, session=session)


async def revoke_session_of(db: Database, token: str) -> tuple[int, str] | None:
    """Revoke the session ``token`` belongs to (logout); return its user id and session id, or
    None if unknown."""
    now = time.time()
    async with db.transaction() as tx:
        row = await tx.fetchone(
            "SELECT user_id, family FROM refresh_tokens WHERE token_hash = ?",
            (hash_refresh_token(token),),
        )
        if row is None:
            return None
        session = str(row["family"])
        await _revoke_session(tx, session, now)
        return int(row["user_id"]), session


async def revoke_session(db: Database, session: str, user_id: int) -> None:
    """Revoke ``session`` of ``user_id`` (logout with an access token)."""
    now = time.time()
    async with db.transaction() as tx:
        row = await tx.fetchone(
            "SELECT 1 FROM sessions WHERE id = ? AND user_id = ?", (session, user_id)
        )
        if row is not None:
            await _revoke_session(tx, session, now)


async def revoke_all_sessions(tx: Transaction, user_id: int, now: float) -> None:
    """Revoke every session and refresh token of ``user_id`` (inside the caller's transaction)."""
    await tx.execute(
        "UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
        (now, user_id),
    )
    await tx.execute(
        "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
        (now, user_id),
    )
