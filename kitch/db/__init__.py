"""The database: SQLite (embedded, the default) or PostgreSQL, behind one small API.

Every statement goes through :class:`Database` (``fetchone`` / ``fetchall`` / ``execute`` /
``insert``) or a :meth:`Database.transaction` block. Statements use ``?`` placeholders and the
SQL both engines understand; the few places that must differ ask ``db.dialect`` (``"sqlite"``
or ``"postgresql"``). Rows are indexable by column name and by position on both.

:func:`open_database` takes a database URL (``sqlite:///path/kitch.db``,
``postgresql://user:password@host:port/name``) or a path (an SQLite file), opens it and applies
the pending migrations. Migrations are ``migrations/NNNN_name.sql`` in portable SQL, each
optionally replaced for one engine by ``migrations/<dialect>/NNNN_name.sql`` (see
``docs/DATABASE.md``).

Write transactions are serialised on both engines (SQLite's ``BEGIN IMMEDIATE``; an advisory
lock on PostgreSQL), so the read-then-write steps inside one see no other writer.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from importlib import resources
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

Params = Sequence[Any]

#: The engines, by the name ``db.dialect`` holds.
DIALECTS = ("sqlite", "postgresql")


class Row(Protocol):
    """A result row: ``row["name"]`` or ``row[0]``, iterable over its values."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer Kitch than this one."""


class IntegrityError(Exception):
    """A constraint refused a write (unique, foreign key, check, not null). The message names
    the constraint or the columns, as the engine reported it."""


class DatabaseUnavailableError(ConnectionError):
    """The database server cannot be reached or refused the connection."""


class DatabaseURLError(ValueError):
    """A database URL Kitch cannot use."""


class Transaction:
    """Statements inside one write transaction (rolled back on any exception)."""

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        raise NotImplementedError

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        raise NotImplementedError

    async def execute(self, sql: str, params: Params = ()) -> tuple[int, int]:
        """Run one statement; return ``(lastrowid, rowcount)`` (lastrowid: SQLite only, else 0;
        use :meth:`insert` for a new row's id)."""
        raise NotImplementedError

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run an ``INSERT`` and return the ``id`` of the (first) row it made, 0 when none
        (the statement gets ``RETURNING id``)."""
        row = await self.fetchone(sql + " RETURNING id", params)
        return 0 if row is None else int(row[0])

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement once per parameter row."""
        raise NotImplementedError

    async def executescript(self, sql: str) -> None:
        """Run a script of several statements (a migration)."""
        raise NotImplementedError


class Database:
    """An open database (see the module doc). ``dialect`` is ``"sqlite"`` or ``"postgresql"``;
    ``url`` says which database (without its password)."""

    dialect: str = ""
    url: str = ""

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        raise NotImplementedError

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        raise NotImplementedError

    async def execute(self, sql: str, params: Params = ()) -> tuple[int, int]:
        """Run one statement in its own transaction; return ``(lastrowid, rowcount)``."""
        raise NotImplementedError

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run an ``INSERT`` in its own transaction and return the new row's ``id`` (0: none)."""
        row = await self.fetchone(sql + " RETURNING id", params)
        return 0 if row is None else int(row[0])

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """``async with db.transaction() as tx:`` -- a write transaction taken up front.

        Do not call ``db.*`` methods inside the block (on SQLite the one connection's lock is
        not re-entrant); use ``tx``.
        """
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


def migrations(dialect: str = "sqlite") -> list[tuple[int, str]]:
    """The bundled migrations for ``dialect`` as ``(version, sql)``, ordered.

    File names start with the number. ``migrations/*.sql`` are shared; a file of the same name
    under ``migrations/<dialect>/`` replaces the shared one for that engine. Shared files are
    written in portable SQL and, on PostgreSQL, get their column types mapped
    (:func:`kitch.db.postgres.portable_ddl`).
    """
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    root = resources.files("kitch.db").joinpath("migrations")
    shared = {e.name: e for e in root.iterdir() if e.name.endswith(".sql")}
    overrides = {}
    own = root.joinpath(dialect)
    if own.is_dir():
        overrides = {e.name: e for e in own.iterdir() if e.name.endswith(".sql")}
    stray = set(overrides) - set(shared)
    if stray:
        raise RuntimeError(f"{dialect} migrations without a shared one: {sorted(stray)}")
    found = []
    for name, entry in shared.items():
        text = overrides[name].read_text(encoding="utf-8") if name in overrides else None
        if text is None:
            text = entry.read_text(encoding="utf-8")
            if dialect == "postgresql":
                from kitch.db.postgres import portable_ddl

                text = portable_ddl(text)
        found.append((int(name.split("_", 1)[0]), text))
    found.sort()
    if [v for v, _ in found] != list(range(1, len(found) + 1)):
        raise RuntimeError("migrations must be numbered 1..N without gaps")
    return found


def split_statements(script: str) -> Iterable[str]:
    """Split SQLite text into complete statements (triggers and semicolons in strings included)."""
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


def sqlite_url(path: Path) -> str:
    """The URL of the SQLite file at ``path``."""
    return "sqlite:///" + str(path)


def default_url(data_dir: Path) -> str:
    """The database when none is configured: ``DATA_DIR/kitch.db`` (SQLite)."""
    return sqlite_url(data_dir / "kitch.db")


def parse_url(url: str) -> tuple[str, str]:
    """``(dialect, target)``: for SQLite the file's path, for PostgreSQL the URL as given.

    ``sqlite:///relative/kitch.db`` and ``sqlite:////absolute/kitch.db`` (or
    ``sqlite:///`` followed by an absolute path) name a file; ``postgresql://`` (or
    ``postgres://``) a server. Raises :class:`DatabaseURLError` for anything else.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise DatabaseURLError(
            f"database {url!r} is not a URL (sqlite:///path/kitch.db or postgresql://...)"
        )
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise DatabaseURLError(f"database {url!r}: write sqlite:///path/to/kitch.db")
        path = unquote(rest[1:])
        if "?" in path:
            raise DatabaseURLError(f"database {url!r}: SQLite URLs take no options")
        return "sqlite", path
    if scheme in ("postgresql", "postgres"):
        parts = urlsplit(url)
        if not parts.path.strip("/"):
            raise DatabaseURLError(f"database {redact_url(url)!r} names no database")
        return "postgresql", url
    raise DatabaseURLError(
        f"database {redact_url(url)!r}: the scheme must be sqlite:// or postgresql://"
    )


def redact_url(url: str) -> str:
    """``url`` without its password (for logs and messages)."""
    return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", url)


async def _migrate(db: Database, available: list[tuple[int, str]]) -> int:
    latest = available[-1][0] if available else 0
    async with db.transaction() as tx:
        if db.dialect == "postgresql":
            from kitch.db.postgres import BOOTSTRAP

            await tx.executescript(BOOTSTRAP)
        else:
            await tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER NOT NULL, applied_at TEXT NOT NULL DEFAULT (datetime('now')))"
            )
        row = await tx.fetchone("SELECT coalesce(max(version), 0) FROM schema_version")
        current = int(row[0]) if row is not None else 0
        if current > latest:
            raise SchemaTooNewError(
                f"{db.url}: database schema version {current} is newer than this Kitch knows "
                f"({latest}); upgrade Kitch, or point it at another database"
            )
        for version, sql in available:
            if version <= current:
                continue
            await tx.executescript(sql)
            await tx.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        return max(current, latest)


async def schema_version(db: Database) -> int:
    row = await db.fetchone("SELECT coalesce(max(version), 0) FROM schema_version")
    return int(row[0]) if row is not None else 0


async def open_database(
    target: str | Path,
    *,
    migrate: bool = True,
    _migrations: list[tuple[int, str]] | None = None,
) -> Database:
    """Open the database ``target`` (a URL, or the path of an SQLite file) and apply the
    pending migrations. Raises :class:`SchemaTooNewError` when it comes from a newer Kitch,
    :class:`DatabaseURLError` for a URL it cannot use.

    SQLite: see :func:`kitch.db.sqlite.open_sqlite`. PostgreSQL: a pool of asyncpg connections
    (:func:`kitch.db.postgres.open_postgres`); the database must exist.
    """
    if isinstance(target, Path):
        dialect, where = "sqlite", str(target)
    else:
        dialect, where = parse_url(target)
    db: Database
    if dialect == "sqlite":
        from kitch.db.sqlite import open_sqlite

        db = await open_sqlite(Path(where))
    else:
        from kitch.db.postgres import open_postgres

        db = await open_postgres(where)
    if migrate:
        try:
            await _migrate(db, migrations(dialect) if _migrations is None else _migrations)
        except BaseException:
            await db.close()
            raise
    return db


__all__ = [
    "Database",
    "DatabaseURLError",
    "DatabaseUnavailableError",
    "IntegrityError",
    "Row",
    "SchemaTooNewError",
    "Transaction",
    "default_url",
    "migrations",
    "open_database",
    "parse_url",
]
