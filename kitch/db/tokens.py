"""Refresh tokens: stored hashed, rotated on every use, grouped in families for reuse detection.

A token may be exchanged once. Presenting it again within ``grace`` seconds of its first use
(two browser tabs refreshing together) yields another valid token of the same family; presenting
it later is treated as theft and revokes the whole family.
"""

from __future__ import annotations

import enum
import secrets
import time
from dataclasses import dataclass

from kitch.auth.tokens import hash_refresh_token, new_refresh_token
from kitch.db import Database, Transaction


class RefreshOutcome(enum.Enum):
    ROTATED = "rotated"
    INVALID = "invalid"  # unknown, expired or revoked
    REUSED = "reused"  # replay past the grace: the family is now revoked


@dataclass(frozen=True)
class RefreshResult:
    outcome: RefreshOutcome
    user_id: int | None = None
    token: str | None = None


async def _insert(tx: Transaction, user_id: int, family: str, ttl: int, now: float) -> str:
    token = new_refresh_token()
    await tx.execute(
        "INSERT INTO refresh_tokens (user_id, family, token_hash, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (user_id, family, hash_refresh_token(token), now, now + ttl),
    )
    return token


async def _purge_expired(tx: Transaction, user_id: int, now: float) -> None:
    await tx.execute(
        "DELETE FROM refresh_tokens WHERE user_id = ? AND expires_at < ?", (user_id, now)
    )


async def create_refresh_token(db: Database, user_id: int, ttl: int) -> str:
    """Start a new family (one sign-in) and return its first token."""
    now = time.time()
    async with db.transaction() as tx:
        await _purge_expired(tx, user_id, now)
        return await _insert(tx, user_id, secrets.token_hex(16), ttl, now)


async def rotate_refresh_token(
    db: Database, token: str, *, ttl: int, grace: float, now: float | None = None
) -> RefreshResult:
    """Exchange ``token`` for a new one of the same family (see the module doc for reuse)."""
    at = time.time() if now is None else now
    async with db.transaction() as tx:
        row = await tx.fetchone(
            "SELECT id, user_id, family, expires_at, used_at, revoked_at FROM refresh_tokens "
            "WHERE token_hash = ?",
            (hash_refresh_token(token),),
        )
        if row is None or row["revoked_at"] is not None or row["expires_at"] <= at:
            return RefreshResult(RefreshOutcome.INVALID)
        if row["used_at"] is not None and at - row["used_at"] > grace:
            await tx.execute(
                "UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL",
                (at, row["family"]),
            )
            return RefreshResult(RefreshOutcome.REUSED, user_id=row["user_id"])
        if row["used_at"] is None:
            await tx.execute("UPDATE refresh_tokens SET used_at = ? WHERE id = ?", (at, row["id"]))
        # A session that only ever refreshes would otherwise keep every token it was given.
        await _purge_expired(tx, row["user_id"], at)
        fresh = await _insert(tx, row["user_id"], row["family"], ttl, at)
        return RefreshResult(RefreshOutcome.ROTATED, user_id=row["user_id"], token=fresh)


async def revoke_family_of(db: Database, token: str) -> int | None:
    """Revoke the family ``token`` belongs to (logout); return its user id, or None if unknown."""
    now = time.time()
    async with db.transaction() as tx:
        row = await tx.fetchone(
            "SELECT user_id, family FROM refresh_tokens WHERE token_hash = ?",
            (hash_refresh_token(token),),
        )
        if row is None:
            return None
        await tx.execute(
            "UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL",
            (now, row["family"]),
        )
        return int(row["user_id"])
