"""The database layer: SQLite pragmas, migrations and the schema version guard, transactions,
two writers at once (SQLite and PostgreSQL), URLs and the SQL rewriting for PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kitch.db import (
    Database,
    DatabaseURLError,
    SchemaTooNewError,
    migrations,
    open_database,
    parse_url,
    redact_url,
    split_statements,
)
from kitch.db.postgres import numbered, portable_ddl
from tests.support.postgres import NewDatabaseURL, PostgresCluster


async def tables(db: Database) -> set[str]:
    if db.dialect == "postgresql":
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    return {r[0] for r in await db.fetchall(sql)}


async def test_pragmas_and_schema(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "data" / "kitch.db")
    try:
        assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"  # type: ignore[index]
        assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1  # type: ignore[index]
        assert (await db.fetchone("PRAGMA busy_timeout"))[0] >= 5000  # type: ignore[index]
        version = await db.fetchone("SELECT max(version) FROM schema_version")
        assert version is not None and version[0] == len(migrations())
        tables = {
            r[0] for r in await db.fetchall("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert {
            "users",
            "stream_keys",
            "channels",
            "broadcast_sessions",
            "refresh_tokens",
        } <= tables
    finally:
        await db.close()
    assert stat.S_IMODE(os.stat(tmp_path / "data" / "kitch.db").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "data").st_mode) == 0o700


async def test_reopen_applies_nothing_twice(database_url: str) -> None:
    for _ in range(3):
        db = await open_database(database_url)
        rows = await db.fetchall("SELECT version FROM schema_version")
        await db.close()
    assert [r[0] for r in rows] == list(range(1, len(migrations()) + 1))


async def test_newer_schema_is_refused(database_url: str) -> None:
    db = await open_database(database_url)
    await db.execute("INSERT INTO schema_version (version) VALUES (999)")
    await db.close()
    with pytest.raises(SchemaTooNewError, match="newer than this Kitch"):
        await open_database(database_url)


async def test_failed_migration_leaves_nothing_behind(
    new_database_url: NewDatabaseURL, engine: str
) -> None:
    url = await new_database_url(empty=True)
    good = migrations(engine)
    broken = [*good, (len(good) + 1, "CREATE TABLE extra (x INTEGER);\nTHIS IS NOT SQL;\n")]
    with pytest.raises(Exception, match="syntax error"):
        await open_database(url, _migrations=broken)
    db = await open_database(url)
    try:
        names = await tables(db)
        assert "extra" not in names
        assert "users" in names
    finally:
        await db.close()


async def test_transaction_rolls_back_on_error(database_url: str) -> None:
    db = await open_database(database_url)
    try:
        with pytest.raises(RuntimeError):
            async with db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO users (username, email, password_hash, created_at) "
                    "VALUES ('a_b', 'a@b.co', 'x', 0)"
                )
                raise RuntimeError("abort")
        assert (await db.fetchone("SELECT count(*) FROM users"))[0] == 0  # type: ignore[index]
    finally:
        await db.close()


def test_split_statements_handles_semicolons_in_strings_and_comments() -> None:
    script = (
        "-- header; comment\n"
        "CREATE TABLE t (a TEXT DEFAULT 'x;y');\n"
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  UPDATE t SET a = 'z';\nEND;\n"
        "-- trailing\n"
    )
    statements = list(split_statements(script))
    assert len(statements) == 2
    assert statements[1].endswith("END;")
    with pytest.raises(ValueError):
        list(split_statements("CREATE TABLE t (a"))


CLI_WRITER = """
import asyncio, sys
from pathlib import Path
from kitch.db import open_database
from kitch.db.users import create_user

async def main():
    db = await open_database(Path(sys.argv[1]))
    for i in range(40):
        await create_user(db, f"cli_{i}", f"cli{i}@example.com", "x")
    await db.close()

asyncio.run(main())
"""


async def test_two_processes_write_at_once(tmp_path: Path) -> None:
    """The CLI keeps working while the server writes to the same file (busy timeout, WAL)."""
    path = tmp_path / "kitch.db"
    db = await open_database(path)
    from kitch.db.users import create_user

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLI_WRITER, str(path), cwd=Path(__file__).parents[2]
    )
    for i in range(40):
        await create_user(db, f"srv_{i}", f"srv{i}@example.com", "x")
    assert await proc.wait() == 0
    count = await db.fetchone("SELECT count(*) FROM users")
    await db.close()
    assert count is not None and count[0] == 80
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sqlite3; print(sqlite3.connect({str(path)!r})"
            ".execute('PRAGMA integrity_check').fetchone()[0])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout.strip() == "ok"


async def test_user_ids_are_never_reused(database_url: str) -> None:
    from kitch.db.users import create_user, delete_user

    db = await open_database(database_url)
    try:
        first, _ = await create_user(db, "one", "1@example.com", "x")
        second, _ = await create_user(db, "two", "2@example.com", "x")
        assert await delete_user(db, second.id)
        assert await delete_user(db, first.id)  # the table is empty now
    finally:
        await db.close()
    db = await open_database(database_url)  # the floor survives a restart
    try:
        third, _ = await create_user(db, "three", "3@example.com", "x")
    finally:
        await db.close()
    assert third.id > second.id, (first.id, second.id, third.id)


async def test_cancelled_transaction_leaves_the_connection_usable(tmp_path: Path) -> None:
    """A task cancelled while BEGIN waits for another writer (e.g. the ingest's grace timer
    cancelled during end_broadcast, or shutdown) must not leave a transaction open behind it.
    """
    from kitch.db.users import create_user

    path = tmp_path / "kitch.db"
    db = await open_database(path)
    other = sqlite3.connect(path, isolation_level=None)  # another process, say the CLI
    try:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock
        task = asyncio.create_task(create_user(db, "cancelled", "c@example.com", "x"))
        await asyncio.sleep(0.3)  # BEGIN is now waiting on the busy timeout
        task.cancel()
        other.execute("COMMIT")
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(create_user(db, "after", "a@example.com", "x"), 20)
    finally:
        other.close()
        await db.close()
    db = await open_database(path)  # committed, not stuck in a transaction that never ends
    try:
        rows = await db.fetchall("SELECT username FROM users")
    finally:
        await db.close()
    assert [r[0] for r in rows] == ["after"], [tuple(r) for r in rows]


async def test_upgrade_turns_refresh_token_families_into_sessions(
    new_database_url: NewDatabaseURL, engine: str
) -> None:
    """Schema 3 adds sessions; a database of schema 2 keeps its sign-ins (revoked ones stay so)."""
    path = await new_database_url(empty=True)
    db = await open_database(path, _migrations=migrations(engine)[:2])
    try:
        await db.execute(
            "INSERT INTO users (id, username, email, password_hash, created_at) "
            "VALUES (1, 'old', 'old@example.com', 'x', 0)"
        )
        for family, token, revoked in (("live", "a", None), ("gone", "b", 5.0), ("gone", "c", 5.0)):
            await db.execute(
                "INSERT INTO refresh_tokens (user_id, family, token_hash, created_at, expires_at, "
                "revoked_at) VALUES (1, ?, ?, 1, 9e9, ?)",
                (family, token, revoked),
            )
    finally:
        await db.close()
    db = await open_database(path)
    try:
        rows = await db.fetchall("SELECT id, user_id, revoked_at FROM sessions ORDER BY id")
    finally:
        await db.close()
    assert [tuple(r) for r in rows] == [("gone", 1, 5.0), ("live", 1, None)]


async def test_two_connections_write_at_once(database_url: str) -> None:
    """Two servers (or a server and the CLI) creating accounts at once on one database: every
    account gets its own id (write transactions run one at a time on both engines)."""
    from kitch.db.users import create_user

    first = await open_database(database_url)
    second = await open_database(database_url)
    try:
        made = await asyncio.gather(
            *(
                create_user(db, f"w{i}_{n}", f"w{i}_{n}@example.com", "x")
                for n in range(25)
                for i, db in enumerate((first, second))
            )
        )
        assert len({user.id for user, _ in made}) == 50
        count = await first.fetchone("SELECT count(*) FROM users")
        assert count is not None and count[0] == 50
    finally:
        await first.close()
        await second.close()


async def test_integrity_errors_are_one_type(db: Database) -> None:
    from kitch.db import IntegrityError
    from kitch.db.users import Conflict, create_user, update_profile

    user, _ = await create_user(db, "taken", "taken@example.com", "x")
    other, _ = await create_user(db, "email_x", "other@example.com", "x")
    with pytest.raises(Conflict) as conflict:
        await create_user(db, "taken", "new@example.com", "x")
    assert conflict.value.field == "username"
    with pytest.raises(Conflict) as conflict:
        await create_user(db, "new", "TAKEN@example.com", "x")  # e-mail ignores case
    assert conflict.value.field == "email"
    with pytest.raises(Conflict) as conflict:
        await update_profile(db, other.id, {"email": "Taken@Example.com"})
    assert conflict.value.field == "email"
    with pytest.raises(IntegrityError):
        await db.execute(
            "INSERT INTO follows (follower_id, channel_id, created_at) VALUES (?, ?, 0)",
            (user.id, 999_999),
        )


async def test_rows_by_name_and_position_and_insert_ids(db: Database) -> None:
    first = await db.insert(
        "INSERT INTO categories (slug, name, created_at, updated_at) VALUES (?, ?, 0, 0)",
        ("a-b", "A question? 'quoted'"),
    )
    second = await db.insert(
        "INSERT INTO categories (slug, name, created_at, updated_at) VALUES ('c-d', '?', 0, 0)"
    )
    assert second > first > 0
    row = await db.fetchone(
        "SELECT id, name, 'x?' AS mark FROM categories WHERE slug = ? -- a comment?\n", ("a-b",)
    )
    assert row is not None
    assert (row[0], row["name"], row["mark"]) == (first, "A question? 'quoted'", "x?")
    assert list(row) == [first, "A question? 'quoted'", "x?"] and len(row) == 3
    _, count = await db.execute(
        "UPDATE categories SET hue = 1 WHERE slug IN (?, ?)", ("a-b", "c-d")
    )
    assert count == 2


def test_placeholders_are_numbered_outside_strings_names_and_comments() -> None:
    assert numbered("SELECT ? , '?', \"a?\", ? -- ?\n /* ? */ ?") == (
        "SELECT $1 , '?', \"a?\", $2 -- ?\n /* ? */ $3"
    )
    assert numbered("SELECT 'it''s ?', ?") == "SELECT 'it''s ?', $1"


def test_portable_ddl_maps_column_types() -> None:
    ddl = (
        "CREATE TABLE t (\n    id INTEGER PRIMARY KEY,\n    n INTEGER NOT NULL DEFAULT 0,\n"
        "    at REAL, data BLOB, note TEXT DEFAULT 'INTEGER REAL',\n"
        "    parent INTEGER PRIMARY KEY REFERENCES t(id)\n);\n"
        "CREATE TABLE u (id INTEGER PRIMARY KEY AUTOINCREMENT, x INTEGER); -- INTEGER\n"
    )
    out = portable_ddl(ddl)
    assert "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY," in out
    assert "n BIGINT NOT NULL" in out and "at DOUBLE PRECISION, data BYTEA" in out
    assert "DEFAULT 'INTEGER REAL'" in out and "-- INTEGER" in out
    assert "parent BIGINT PRIMARY KEY REFERENCES" in out
    assert "u (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, x BIGINT)" in out
    options = portable_ddl("CREATE TABLE v (a TEXT PRIMARY KEY) WITHOUT ROWID, STRICT;")
    assert options == "CREATE TABLE v (a TEXT PRIMARY KEY);"


def test_database_urls() -> None:
    assert parse_url("sqlite:///kitch-data/kitch.db") == ("sqlite", "kitch-data/kitch.db")
    assert parse_url("sqlite:////var/lib/kitch/kitch.db") == ("sqlite", "/var/lib/kitch/kitch.db")
    url = "postgresql://kitch:secret@db.example:5432/kitch"
    assert parse_url(url) == ("postgresql", url)
    assert parse_url("postgres://h/kitch")[0] == "postgresql"
    assert redact_url(url) == "postgresql://kitch:***@db.example:5432/kitch"
    for bad in ("kitch.db", "mysql://h/db", "sqlite://", "sqlite:///", "postgresql://host"):
        with pytest.raises(DatabaseURLError):
            parse_url(bad)
    with pytest.raises(DatabaseURLError) as error:
        parse_url("mysql://user:secret@h/db")
    assert "secret" not in str(error.value)


async def test_a_portable_migration_runs_on_both(
    new_database_url: NewDatabaseURL, engine: str
) -> None:
    """A new migration in portable SQL (plain INTEGER/TEXT/REAL, no AUTOINCREMENT) needs no
    PostgreSQL override: big integers and fractional times survive."""
    extra = (
        "CREATE TABLE sample_nodes (\n    id TEXT PRIMARY KEY,\n    url TEXT NOT NULL,\n"
        "    seen_at REAL NOT NULL,\n    epoch INTEGER NOT NULL DEFAULT 0\n);\n"
        "CREATE TABLE sample_leases (\n    channel_id INTEGER PRIMARY KEY REFERENCES channels(id) "
        "ON DELETE CASCADE,\n    node_id TEXT NOT NULL REFERENCES sample_nodes(id),\n"
        "    expires_at REAL NOT NULL\n);\n"
        "CREATE INDEX sample_leases_by_node ON sample_leases (node_id);\n"
    )
    if engine == "postgresql":  # as migrations() hands a shared file to PostgreSQL
        extra = portable_ddl(extra)
    url = await new_database_url(empty=True)
    good = migrations(engine)
    db = await open_database(url, _migrations=[*good, (len(good) + 1, extra)])
    try:
        await db.execute(
            "INSERT INTO sample_nodes (id, url, seen_at, epoch) VALUES (?, ?, ?, ?)",
            ("a", "http://a", 1764560000.125, 2**40),
        )
        row = await db.fetchone("SELECT seen_at, epoch FROM sample_nodes WHERE id = 'a'")
        assert row is not None and (row[0], row[1]) == (1764560000.125, 2**40)
    finally:
        await db.close()


async def test_a_cancelled_wait_for_the_write_lock_leaves_postgresql_usable(
    postgres: PostgresCluster,
) -> None:
    """PostgreSQL's write transactions wait for each other (one advisory lock); a task cancelled
    while it waits gives its connection back clean, and nothing of it is written."""
    import asyncpg

    from kitch.db.postgres import WRITE_LOCK
    from kitch.db.users import create_user

    url = postgres.url(await postgres.create_database())
    db = await open_database(url)
    holder = await asyncpg.connect(url)  # another node in the middle of a write transaction
    try:
        await holder.execute("BEGIN")
        await holder.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
        task = asyncio.create_task(create_user(db, "cancelled", "c@example.com", "x"))
        await asyncio.sleep(0.3)
        assert not task.done()  # it waits for the other writer
        task.cancel()
        await holder.execute("COMMIT")
        with pytest.raises(asyncio.CancelledError):
            await task
        for i in range(12):  # more than the pool holds: no connection was lost
            await asyncio.wait_for(create_user(db, f"after{i}", f"a{i}@example.com", "x"), 20)
        rows = await db.fetchall("SELECT username FROM users ORDER BY id")
        assert [r[0] for r in rows] == [f"after{i}" for i in range(12)]
    finally:
        await holder.close()
        await db.close()


def test_the_database_setting(tmp_path: Path) -> None:
    from kitch.config import ConfigError, Settings

    assert Settings(data_dir=tmp_path).database_url == f"sqlite:///{tmp_path / 'kitch.db'}"
    assert parse_url(Settings(data_dir=tmp_path).database_url) == (
        "sqlite",
        str(tmp_path / "kitch.db"),
    )
    assert Settings(database="postgresql://h/kitch").database_url == "postgresql://h/kitch"
    with pytest.raises(ConfigError, match="database"):
        Settings(database="kitch.db")


async def test_the_owner_of_a_postgresql_database_needs_no_superuser(
    postgres: PostgresCluster,
) -> None:
    """What docs/DATABASE.md asks of the Kitch role: owning its database is enough (the nocase
    collation, the unaccent extension, the triggers)."""
    import asyncpg

    from kitch.db.users import create_user

    admin = await asyncpg.connect(postgres.url("postgres"))
    try:
        await admin.execute("CREATE ROLE plain_owner LOGIN NOSUPERUSER")
        await admin.execute(
            "CREATE DATABASE owned_by_plain OWNER plain_owner TEMPLATE template0 ENCODING 'UTF8'"
        )
    finally:
        await admin.close()
    db = await open_database(f"postgresql://plain_owner@127.0.0.1:{postgres.port}/owned_by_plain")
    try:
        row = await db.fetchone("SELECT usesuper FROM pg_user WHERE usename = current_user")
        assert row is not None and row[0] is False
        await create_user(db, "plain", "plain@example.com", "x")
        from kitch.db.discovery import search_channels

        assert [c.name for c in await search_channels(db, ["plain"])] == ["plain"]
    finally:
        await db.close()
