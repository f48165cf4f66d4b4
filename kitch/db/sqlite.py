"""The embedded SQLite backend: one aiosqlite connection per process, WAL.

Every statement goes through the one connection under an ``asyncio.Lock``, so that two
coroutines never interleave statements inside one transaction. Several processes (the server
and the ``kitch`` CLI) may share the file: writers wait for each other up to
``BUSY_TIMEOUT_MS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from kitch.db import (
    Database,
    IntegrityError,
    Params,
    Row,
    Transaction,
    split_statements,
    sqlite_url,
)

BUSY_TIMEOUT_MS = 10_000


class _Statements(Transaction):
    """Statement helpers bound to the connection; the caller holds the lock."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    # Each await below is one round trip to aiosqlite's thread (a queue put there, a wake-up of
    # the event loop back): one per statement where the result allows it. A cursor is not
    # closed by another round trip: dropping it (at once, by reference count) resets its
    # statement.

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        try:
            cursor = await self.conn.execute(sql, params)
            row: Row | None = await cursor.fetchone()
            return row
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            return list(await self.conn.execute_fetchall(sql, params))
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    async def execute(self, sql: str, params: Params = ()) -> tuple[int, int]:
        try:
            cursor = await self.conn.execute(sql, params)
            return cursor.lastrowid or 0, cursor.rowcount
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        try:
            await self.conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    async def executescript(self, sql: str) -> None:
        for statement in split_statements(sql):
            await self.execute(statement)


class SqliteDatabase(Database):
    """The open SQLite file. ``conn`` is the aiosqlite connection (autocommit mode)."""

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.url = sqlite_url(path)
        self._lock = asyncio.Lock()
        self._statements = _Statements(conn)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        async with self._lock:
            return await self._statements.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._lock:
            return await self._statements.fetchall(sql, params)

    async def execute(self, sql: str, params: Params = ()) -> tuple[int, int]:
        async with self._lock:
            return await self._statements.execute(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._lock:
            # A cancelled await does not stop the statement: it still runs in aiosqlite's thread.
            # A rollback queued behind it (a no-op when nothing is open) keeps a cancelled BEGIN
            # or COMMIT from leaving a transaction open on the one shared connection, where every
            # later BEGIN would fail and every later write would wait for a commit that never comes.
            try:
                await self.conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                await self.conn.rollback()
                raise
            try:
                yield _Statements(self.conn)
                await self.conn.commit()
            except BaseException:
                await self.conn.rollback()
                raise

    async def close(self) -> None:
        """Close the connection (waits for a running statement)."""
        async with self._lock:
            await self.conn.close()


async def open_sqlite(path: Path) -> SqliteDatabase:
    """Open (creating if needed) the SQLite file at ``path``.

    A new file (and its directory) is readable by the owner only. Sets WAL journaling,
    ``synchronous=NORMAL`` (a committed transaction survives a killed process),
    ``foreign_keys=ON`` and a busy timeout of ``BUSY_TIMEOUT_MS``.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():  # holds password hashes and stream keys: owner-only from the start
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    conn = await aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.row_factory = sqlite3.Row
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        await conn.close()
        raise
    return SqliteDatabase(conn, path)
