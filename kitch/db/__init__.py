"""The embedded SQLite database: one aiosqlite connection per process, WAL, migrations at open.

Every statement goes through :class:`Database` (``fetchone`` / ``fetchall`` / ``execute``) or a
:meth:`Database.transaction` block, which serialise use of the one connection with an
``asyncio.Lock`` so that two coroutines never interleave statements inside one transaction.
Several processes (the server and the ``kitch`` CLI) may share the file: writers wait for each
other up to ``BUSY_TIMEOUT_MS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

BUSY_TIMEOUT_MS = 10_000
Params = Sequence[Any]
Row = sqlite3.Row


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer Kitch than this one."""


class _Statements:
    """Statement helpers bound to the connection; the caller holds the lock."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        async with self.conn.execute(sql, params) as cursor:
            row: Row | None = await cursor.fetchone()
            return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self.conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def execute(self, sql: str, params: Params = ()) -> tuple[int, int]:
        """Run one statement; return ``(lastrowid, rowcount)``."""
        async with self.conn.execute(sql, params) as cursor:
            return cursor.lastrowid or 0, cursor.rowcount


class Transaction(_Statements):
    """Statements inside ``BEGIN IMMEDIATE`` .. ``COMMIT`` (rolled back on any exception)."""


class Database:
    """The open database. ``conn`` is the aiosqlite connection (autocommit mode)."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._lock = asyncio.Lock()
        self._statements = _Statements(conn)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        async with self._lock:
            return await self._statements.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._lock:
            return await self._statements.fetchall(sql, params)

    async def execute(self, sql: str, params: Params = ()) -> tuple[int, int]:
        """Run one statement in its own implicit transaction; return ``(lastrowid, rowcount)``."""
        async with self._lock:
            return await self._statements.execute(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """``async with db.transaction() as tx:`` -- a write transaction taken up front.

        Do not call ``db.*`` methods inside the block (the lock is not re-entrant); use ``tx``.
        """
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
                yield Transaction(self.conn)
                await self.conn.commit()
            except BaseException:
                await self.conn.rollback()
                raise

    async def close(self) -> None:
        """Close the connection (waits for a running statement)."""
        async with self._lock:
            await self.conn.close()


def migrations() -> list[tuple[int, str]]:
    """The bundled migrations as ``(version, sql)``, ordered; file names start with the number."""
    found = []
    for entry in resources.files("kitch.db").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    found.sort()
    if [v for v, _ in found] != list(range(1, len(found) + 1)):
        raise RuntimeError("migrations must be numbered 1..N without gaps")
    return found


def split_statements(script: str) -> Iterable[str]:
    """Split SQL text into complete statements (triggers and semicolons in strings included)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            buffer = ""
            if statement and not all(
                part.strip().startswith("--") or not part.strip() for part in statement.splitlines()
            ):
                yield statement
    if buffer.strip() and not all(
        p.strip().startswith("--") or not p.strip() for p in buffer.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer[:80]!r}")


async def _migrate(db: Database, available: list[tuple[int, str]]) -> int:
    latest = available[-1][0] if available else 0
    async with db.transaction() as tx:
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER NOT NULL, applied_at TEXT NOT NULL DEFAULT (datetime('now')))"
        )
        row = await tx.fetchone("SELECT coalesce(max(version), 0) FROM schema_version")
        current = int(row[0]) if row is not None else 0
        if current > latest:
            raise SchemaTooNewError(
                f"{db.path}: database schema version {current} is newer than this Kitch knows "
                f"({latest}); upgrade Kitch, or point --data-dir at another directory"
            )
        for version, sql in available:
            if version <= current:
                continue
            for statement in split_statements(sql):
                await tx.execute(statement)
            await tx.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        return max(current, latest)


async def open_database(
    path: Path, *, _migrations: list[tuple[int, str]] | None = None
) -> Database:
    """Open (creating if needed) the database at ``path`` and apply pending migrations.

    A new file (and its directory) is readable by the owner only. Sets WAL journaling,
    ``synchronous=NORMAL`` (a committed transaction survives a killed
    process), ``foreign_keys=ON`` and a busy timeout of ``BUSY_TIMEOUT_MS``. Raises
    :class:`SchemaTooNewError` when the file comes from a newer Kitch.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():  # holds password hashes and stream keys: owner-only from the start
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    conn = await aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.row_factory = sqlite3.Row
    db = Database(conn, path)
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")
        await _migrate(db, migrations() if _migrations is None else _migrations)
    except BaseException:
        await conn.close()
        raise
    return db


__all__ = ["Database", "Row", "SchemaTooNewError", "Transaction", "open_database"]
