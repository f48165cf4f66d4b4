"""Password hashing with bcrypt, off the event loop, with no silent 72-byte truncation.

bcrypt reads at most 72 bytes (bcrypt 5 raises beyond that), so every password is first reduced
to ``base64(sha256(password))`` -- 44 bytes, no NUL -- and that is what bcrypt hashes. Any length
of password therefore works and every byte of it counts.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib

import bcrypt

MIN_LENGTH = 8
MAX_LENGTH = 1024


def _prehash(password: str) -> bytes:
    digest = hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest()
    return base64.b64encode(digest)


def hash_password_sync(password: str, cost: int) -> str:
    """bcrypt hash (``$2b$...``) of the pre-hashed password at work factor ``cost``."""
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds=cost)).decode("ascii")


def verify_password_sync(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; False for any malformed hash."""
    try:
        return bcrypt.checkpw(_prehash(password), stored.encode("ascii"))
    except ValueError:
        return False


async def hash_password(password: str, cost: int) -> str:
    """:func:`hash_password_sync` in a worker thread."""
    return await asyncio.to_thread(hash_password_sync, password, cost)


async def verify_password(password: str, stored: str) -> bool:
    """:func:`verify_password_sync` in a worker thread."""
    return await asyncio.to_thread(verify_password_sync, password, stored)


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"password must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"password must be at most {MAX_LENGTH} characters"
    return None
