"""The SQLite layer: pragmas, migrations, schema version guard, transactions, two processes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kitch.db import SchemaTooNewError, migrations, open_database, split_statements


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


async def test_reopen_applies_nothing_twice(tmp_path: Path) -> None:
    for _ in range(3):
        db = await open_database(tmp_path / "kitch.db")
        rows = await db.fetchall("SELECT version FROM schema_version")
        await db.close()
    assert [r[0] for r in rows] == list(range(1, len(migrations()) + 1))


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "kitch.db")
    await db.execute("INSERT INTO schema_version (version) VALUES (999)")
    await db.close()
    with pytest.raises(SchemaTooNewError, match="newer than this Kitch"):
        await open_database(tmp_path / "kitch.db")


async def test_failed_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    good = migrations()
    broken = [*good, (len(good) + 1, "CREATE TABLE extra (x INTEGER);\nTHIS IS NOT SQL;\n")]
    with pytest.raises(Exception, match="syntax error"):
        await open_database(tmp_path / "kitch.db", _migrations=broken)
    db = await open_database(tmp_path / "kitch.db")
    try:
        names = {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master")}
        assert "extra" not in names
        assert "users" in names
    finally:
        await db.close()


async def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "kitch.db")
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


async def test_user_ids_are_never_reused(tmp_path: Path) -> None:
    from kitch.db.users import create_user, delete_user

    db = await open_database(tmp_path / "kitch.db")
    try:
        first, _ = await create_user(db, "one", "1@example.com", "x")
        second, _ = await create_user(db, "two", "2@example.com", "x")
        assert await delete_user(db, second.id)
        assert await delete_user(db, first.id)  # the table is empty now
    finally:
        await db.close()
    db = await open_database(tmp_path / "kitch.db")  # the floor survives a restart
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


async def test_upgrade_turns_refresh_token_families_into_sessions(tmp_path: Path) -> None:
    """Schema 3 adds sessions; a database of schema 2 keeps its sign-ins (revoked ones stay so)."""
    path = tmp_path / "kitch.db"
    db = await open_database(path, _migrations=migrations()[:2])
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
