"""Moving an SQLite database to PostgreSQL with ``kitch db copy``, and ``kitch db migrate``:
real subprocesses, a real SQLite file and the suite's PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kitch.chat.room import Message
from kitch.db import Database, chat, discovery, follows, open_database
from kitch.db.copy import columns, copy_database, tables
from kitch.db.queries import get_channel, start_broadcast, update_channel
from kitch.db.users import create_user, delete_user, set_avatar
from kitch.db.vocabulary import search_terms
from tests.support.postgres import PostgresCluster

ROOT = Path(__file__).parents[2]


def kitch_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kitch", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=ROOT,
        timeout=120,
    )


async def _fill(db: Database) -> None:
    """A bit of everything: accounts (one deleted), a custom category, tags, an avatar, a
    broadcast, follows, notifications and chat messages (the newest one deleted)."""
    users = []
    for name in ("ann", "bob", "cyd", "gone"):
        user, _ = await create_user(db, name, f"{name}@example.com", "x")
        users.append(user.id)
    chess = await discovery.create_category(db, "Chess & Go", "chess-and-go", 40)
    ann = await get_channel(db, "ann")
    assert ann is not None
    await update_channel(
        db,
        ann.id,
        {"title": "Blitz night", "tags": ["Speed Run", "Pokémon"], "category_id": chess.id},
    )
    await set_avatar(db, users[0], "image/webp", b"\x00RIFF\xffbinary")
    await follows.follow(db, users[1], ann.id, now=10.5)
    await follows.follow(db, users[2], ann.id, now=11.25)
    broadcast = await start_broadcast(db, ann.id, {"encoder": "obs"}, now=100.0)
    await follows.notify_live(db, ann.id, broadcast, {"title": "Blitz night"}, now=100.0)
    await chat.write_batch(
        db,
        [
            chat.Action(
                ann.id,
                "message",
                {"message": Message(n, users[1], "bob", "bob", "", "viewer", f"m{n}", 100.0 + n)},
            )
            for n in (1_764_000_000_001, 1_764_000_000_002)
        ],
    )
    await db.execute("DELETE FROM notifications WHERE user_id = ?", (users[2],))
    await delete_user(db, users[3])


async def _rows(db: Database) -> dict[str, list[tuple[object, ...]]]:
    found = {}
    for table in await tables(db):
        cols = ", ".join(f'"{c}"' for c in await columns(db, table))
        rows = await db.fetchall(f'SELECT {cols} FROM "{table}"')
        found[table] = sorted((tuple(r) for r in rows), key=repr)
    return found


async def test_copy_sqlite_to_postgresql(tmp_path: Path, postgres: PostgresCluster) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'kitch.db'}"
    source = await open_database(sqlite_url)
    await _fill(source)
    before = await _rows(source)
    notification_seq = await source.fetchone(
        "SELECT seq FROM sqlite_sequence WHERE name = 'notifications'"
    )
    await source.close()
    target_url = postgres.url(await postgres.create_database(empty=True))

    done = kitch_cli("db", "copy", "--from", sqlite_url, "--to", target_url)
    assert done.returncode == 0, done.stderr
    assert "copied" in done.stdout and "users: 3" in done.stdout

    target = await open_database(target_url)
    try:
        assert await _rows(target) == before
        # and back: PostgreSQL to a new SQLite file gives the same rows
        back = await open_database(f"sqlite:///{tmp_path / 'back.db'}")
        try:
            await copy_database(target, back)
            assert await _rows(back) == before
            assert [c.name for c in await discovery.search_channels(back, ["blitz"])] == ["ann"]
        finally:
            await back.close()
        # the search index was built on the way; the categories are the source's
        found = await discovery.search_channels(target, search_terms("pokemon blitz"))
        assert [c.name for c in found] == ["ann"]
        assert [c.slug for c in await discovery.search_categories(target, ["chess"])] == [
            "chess-and-go"
        ]
        # new rows never take an old id: users above the deleted one, notifications above
        # the highest SQLite ever gave
        new, _ = await create_user(target, "dee", "dee@example.com", "x")
        assert new.id == 5
        await follows.follow(target, new.id, 1, now=200.0)
        made = await follows.notify_live(target, 1, 1, {}, now=201.0)
        assert notification_seq is not None
        assert len(made) == 2 and min(n.id for n in made) > notification_seq[0]
        await discovery.create_category(target, "Another", "another", 1)
    finally:
        await target.close()

    again = kitch_cli("db", "copy", "--from", sqlite_url, "--to", target_url)
    assert again.returncode == 1
    assert "not empty" in again.stderr
    target = await open_database(target_url)
    try:
        users = await target.fetchone("SELECT count(*) FROM users")
        assert users is not None and users[0] == 4  # nothing written
    finally:
        await target.close()


async def test_migrate_command(postgres: PostgresCluster, tmp_path: Path) -> None:
    url = postgres.url(await postgres.create_database(empty=True))
    done = kitch_cli("db", "migrate", env={"KITCH_DATABASE": url})
    assert done.returncode == 0, done.stderr
    db = await open_database(url, migrate=False)
    try:
        version = await db.fetchone("SELECT max(version) FROM schema_version")
        assert version is not None and f"schema version {version[0]}" in done.stdout
        assert "users" in await tables(db)
    finally:
        await db.close()
    # the account commands use the same setting
    made = kitch_cli(
        "user", "create", "pgadmin", "--email", "a@example.com", "--database", url,
        "--data-dir", str(tmp_path), env={"KITCH_BCRYPT_COST": "4"}, stdin="a good password\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert not (tmp_path / "kitch.db").exists()
    bad = kitch_cli("db", "migrate", "--database", "mysql://h/db")
    assert bad.returncode == 2 and "database" in bad.stderr
    typo = kitch_cli("db", "copy", "--from", f"sqlite:///{tmp_path}/nope.db", "--to", url)
    assert typo.returncode == 1 and "no SQLite database" in typo.stderr
    assert not (tmp_path / "nope.db").exists()
    down = kitch_cli("db", "migrate", "--database", "postgresql://kitch:pw@127.0.0.1:1/none")
    assert down.returncode == 1 and "cannot connect" in down.stderr and "pw" not in down.stderr
