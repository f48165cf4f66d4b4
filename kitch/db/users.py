"""Accounts: users with their channel and stream key, profiles, avatars, deletion."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from kitch.db import Database, IntegrityError, Row
from kitch.db.tokens import revoke_all_sessions
from kitch.keys import generate_stream_key, hash_stream_key


class Conflict(Exception):
    """A unique value is already taken; ``field`` is ``"username"`` or ``"email"``."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} already taken")
        self.field = field


@dataclass(frozen=True)
class User:
    id: int
    username: str
    email: str
    password_hash: str
    display_name: str
    bio: str
    is_admin: bool
    token_version: int
    created_at: float
    has_avatar: bool

    @classmethod
    def from_row(cls, row: Row) -> User:
        return cls(
            id=row["id"],
            username=row["username"],
            email=row["email"],
            password_hash=row["password_hash"],
            display_name=row["display_name"],
            bio=row["bio"],
            is_admin=bool(row["is_admin"]),
            token_version=row["token_version"],
            created_at=row["created_at"],
            has_avatar=bool(row["has_avatar"]),
        )


_SELECT = (
    "SELECT u.*, EXISTS(SELECT 1 FROM avatars a WHERE a.user_id = u.id) AS has_avatar FROM users u "
)


def _conflict_field(exc: IntegrityError) -> str:
    # SQLite names the column (users.email), PostgreSQL the constraint (users_email_key)
    return "email" if re.search(r"users[._]email", str(exc)) else "username"


async def create_user(
    db: Database,
    username: str,
    email: str,
    password_hash: str,
    *,
    is_admin: bool = False,
    now: float | None = None,
) -> tuple[User, str]:
    """Insert a user, their channel and a fresh stream key in one transaction.

    ``username``/``email`` must already be normalised. Returns ``(user, stream_key)``; raises
    :class:`Conflict` when the username or email is taken. The new id is above every id ever
    used, deleted users' included (access tokens name their user by id; see migration 0002).
    """
    created = time.time() if now is None else now
    key = generate_stream_key()
    try:
        async with db.transaction() as tx:
            user_id = await tx.insert(
                "INSERT INTO users (id, username, email, password_hash, is_admin, created_at) "
                "VALUES ((SELECT coalesce(max(top), 0) + 1 FROM (SELECT max(id) AS top FROM users "
                "UNION ALL SELECT id FROM user_id_floor) AS ids), ?, ?, ?, ?, ?)",
                (username, email, password_hash, int(is_admin), created),
            )
            await tx.execute(
                "INSERT INTO channels (user_id, created_at) VALUES (?, ?)", (user_id, created)
            )
            await tx.execute(
                "INSERT INTO stream_keys (user_id, key_hash, key_plain, created_at) "
                "VALUES (?, ?, ?, ?)",
                (user_id, hash_stream_key(key), key, created),
            )
    except IntegrityError as exc:
        raise Conflict(_conflict_field(exc)) from None
    user = await get_user(db, user_id)
    assert user is not None
    return user, key


async def get_user(db: Database, user_id: int) -> User | None:
    row = await db.fetchone(_SELECT + "WHERE u.id = ?", (user_id,))
    return None if row is None else User.from_row(row)


async def get_user_by_name(db: Database, username: str) -> User | None:
    row = await db.fetchone(_SELECT + "WHERE u.username = ?", (username.lower(),))
    return None if row is None else User.from_row(row)


async def get_user_by_login(db: Database, login: str) -> User | None:
    """Find by email when ``login`` contains ``@``, else by username (case-insensitive)."""
    if "@" in login:
        row = await db.fetchone(_SELECT + "WHERE u.email = ? COLLATE NOCASE", (login.strip(),))
    else:
        row = await db.fetchone(_SELECT + "WHERE u.username = ?", (login.lower(),))
    return None if row is None else User.from_row(row)


async def update_profile(db: Database, user_id: int, changes: dict[str, str]) -> None:
    """Set any of ``display_name``, ``bio``, ``email``; raise Conflict for a taken email."""
    allowed = {"display_name", "bio", "email"}
    fields = [name for name in changes if name in allowed]
    if not fields:
        return
    assignments = ", ".join(f"{name} = ?" for name in fields)  # names from the allow-list only
    try:
        await db.execute(
            f"UPDATE users SET {assignments} WHERE id = ?",
            [*(changes[name] for name in fields), user_id],
        )
    except IntegrityError as exc:
        raise Conflict(_conflict_field(exc)) from None


async def set_password(db: Database, user_id: int, password_hash: str) -> int:
    """Store a new hash, bump token_version and revoke every refresh token; return new version."""
    now = time.time()
    async with db.transaction() as tx:
        await tx.execute(
            "UPDATE users SET password_hash = ?, token_version = token_version + 1 WHERE id = ?",
            (password_hash, user_id),
        )
        await revoke_all_sessions(tx, user_id, now)
        row = await tx.fetchone("SELECT token_version FROM users WHERE id = ?", (user_id,))
    return int(row[0]) if row is not None else 0


async def sign_out_everywhere(db: Database, user_id: int) -> None:
    """Invalidate every access token (token_version + 1) and refresh token of the user."""
    now = time.time()
    async with db.transaction() as tx:
        await tx.execute(
            "UPDATE users SET token_version = token_version + 1 WHERE id = ?", (user_id,)
        )
        await revoke_all_sessions(tx, user_id, now)


async def delete_user(db: Database, user_id: int) -> bool:
    """Delete the user and (by cascade) channel, key, avatar, broadcasts and tokens."""
    _, count = await db.execute("DELETE FROM users WHERE id = ?", (user_id,))
    return count > 0


async def set_avatar(db: Database, user_id: int, content_type: str, data: bytes) -> None:
    await db.execute(
        "INSERT INTO avatars (user_id, content_type, data, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (user_id) DO UPDATE SET content_type = excluded.content_type, "
        "data = excluded.data, updated_at = excluded.updated_at",
        (user_id, content_type, data, time.time()),
    )


async def delete_avatar(db: Database, user_id: int) -> None:
    await db.execute("DELETE FROM avatars WHERE user_id = ?", (user_id,))


async def get_avatar(db: Database, username: str) -> tuple[str, bytes, float] | None:
    """``(content_type, data, updated_at)`` of the user's avatar, or None."""
    row = await db.fetchone(
        "SELECT a.content_type, a.data, a.updated_at FROM avatars a "
        "JOIN users u ON u.id = a.user_id WHERE u.username = ?",
        (username.lower(),),
    )
    return None if row is None else (row[0], bytes(row[1]), row[2])


async def get_stream_key(db: Database, user_id: int) -> str | None:
    """The user's current stream key (only ever shown to its owner)."""
    row = await db.fetchone("SELECT key_plain FROM stream_keys WHERE user_id = ?", (user_id,))
    return None if row is None else str(row[0])


async def rotate_stream_key(db: Database, user_id: int) -> str:
    """Replace the user's stream key; the old one stops resolving immediately."""
    key = generate_stream_key()
    await db.execute(
        "INSERT INTO stream_keys (user_id, key_hash, key_plain, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (user_id) DO UPDATE SET key_hash = excluded.key_hash, "
        "key_plain = excluded.key_plain, created_at = excluded.created_at",
        (user_id, hash_stream_key(key), key, time.time()),
    )
    return key
