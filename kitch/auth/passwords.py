"""Password hashing with bcrypt, off the event loop, with no silent 72-byte truncation.

The server hashes in its own bounded thread pool (:class:`Hasher`), so a burst of logins waits
there and never fills the event loop's default executor that the rest of the server uses.

bcrypt reads at most 72 bytes (bcrypt 5 raises beyond that), so every password is first reduced
to ``base64(sha256(password))`` -- 44 bytes, no NUL -- and that is what bcrypt hashes. Any length
of password therefore works and every byte of it counts.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from concurrent.futures import Executor, ThreadPoolExecutor

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


async def hash_password(password: str, cost: int, executor: Executor | None = None) -> str:
    """:func:`hash_password_sync` in a worker thread of ``executor`` (None: the default one)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, hash_password_sync, password, cost)


async def verify_password(password: str, stored: str, executor: Executor | None = None) -> bool:
    """:func:`verify_password_sync` in a worker thread of ``executor`` (None: the default one)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, verify_password_sync, password, stored)


def default_threads() -> int:
    """Hashing threads when not configured: half the CPUs, at least one."""
    return max(1, (os.cpu_count() or 2) // 2)


class Hasher:
    """bcrypt in a pool of ``threads`` threads (0: :func:`default_threads`); extra work queues."""

    def __init__(self, cost: int, threads: int = 0) -> None:
        self.cost = cost
        self.threads = threads or default_threads()
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="kitch-bcrypt")

    async def hash(self, password: str) -> str:
        return await hash_password(password, self.cost, self.pool)

    async def verify(self, password: str, stored: str) -> bool:
        return await verify_password(password, stored, self.pool)


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None when it is acceptable."""
    if not password.strip():
        return "password must not be only whitespace"
    if len(password) < MIN_LENGTH:
        return f"password must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"password must be at most {MAX_LENGTH} characters"
    return None
