"""Copy every row of one Kitch database into another (``kitch db copy``): SQLite to PostgreSQL,
or either way.

Both databases are first brought to the current schema. The target must be empty: no rows in
any table but those a new database is seeded with (the categories list and the user-id floor),
which the source's rows replace. Every table is copied with its ids, parents before children
(by their foreign keys), in one transaction of the target: a failure leaves it as it was. The
search indexes are rebuilt on the way by the target's own triggers, and PostgreSQL's id
sequences are moved past the highest id copied (past the highest id SQLite ever gave, for its
AUTOINCREMENT tables), so that new rows never take an old id.
"""

from __future__ import annotations

from kitch.db import Database, Transaction, schema_version

#: Tables a migration fills by itself: replaced by the source's rows.
SEEDED = ("categories", "user_id_floor")
#: Tables the target keeps up by itself (the schema's version, the search indexes).
DERIVED = ("schema_version", "channel_search", "category_search")
#: Rows copied per statement batch.
BATCH = 1000


class CopyError(RuntimeError):
    """The copy cannot be done (target not empty, schemas differ); nothing was written."""


async def tables(db: Database) -> list[str]:
    """The data tables of ``db`` (not the derived ones, nor the engine's own)."""
    if db.dialect == "postgresql":
        rows = await db.fetchall(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        )
    else:
        rows = await db.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY 1"
        )
    names = [str(r[0]) for r in rows]
    derived = [n for n in names if n in DERIVED or any(n.startswith(d + "_") for d in DERIVED)]
    return [n for n in names if n not in derived]


async def columns(db: Database, table: str) -> list[str]:
    if db.dialect == "postgresql":
        rows = await db.fetchall(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = ? AND is_generated = 'NEVER' "
            "ORDER BY ordinal_position",
            (table,),
        )
        return [str(r[0]) for r in rows]
    rows = await db.fetchall(f'PRAGMA table_info("{table}")')
    return [str(r["name"]) for r in rows]


async def parents(db: Database, table: str) -> set[str]:
    """The tables ``table`` has foreign keys to (itself left out)."""
    if db.dialect == "postgresql":
        rows = await db.fetchall(
            "SELECT DISTINCT p.relname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
            "JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE k.contype = 'f' AND c.relname = ? AND n.nspname = current_schema()",
            (table,),
        )
        found = {str(r[0]) for r in rows}
    else:
        found = {str(r["table"]) for r in await db.fetchall(f'PRAGMA foreign_key_list("{table}")')}
    return found - {table}


def ordered(names: list[str], depends: dict[str, set[str]]) -> list[str]:
    """``names`` with every table after the tables it references."""
    done: list[str] = []
    placing: set[str] = set()

    def place(name: str) -> None:
        if name in done:
            return
        if name in placing:
            raise CopyError(f"foreign keys form a cycle through {name}")
        placing.add(name)
        for parent in sorted(depends.get(name, set()) & set(names)):
            place(parent)
        placing.discard(name)
        done.append(name)

    for name in names:
        place(name)
    return done


async def _sequence_floor(source: Database, table: str) -> int:
    """The highest id SQLite ever gave in an AUTOINCREMENT table (0 elsewhere)."""
    if source.dialect != "sqlite":
        return 0
    if await source.fetchone("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'") is None:
        return 0
    row = await source.fetchone("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,))
    return int(row[0]) if row is not None and row[0] is not None else 0


async def _fix_sequences(source: Database, tx: Transaction, table: str, cols: list[str]) -> None:
    if "id" not in cols:
        return
    row = await tx.fetchone("SELECT pg_get_serial_sequence(?, 'id')", (table,))
    if row is None or row[0] is None:
        return
    top = await tx.fetchone(f'SELECT coalesce(max(id), 0) FROM "{table}"')
    highest = max(int(top[0]) if top is not None else 0, await _sequence_floor(source, table))
    if highest > 0:
        await tx.execute(
            "SELECT setval(CAST(pg_get_serial_sequence(?, 'id') AS regclass), ?)",
            (table, highest),
        )


async def copy_database(source: Database, target: Database) -> dict[str, int]:
    """Copy every data table of ``source`` into the empty ``target`` (see the module doc);
    returns the rows copied per table. Raises :class:`CopyError` without writing anything when
    the target is not empty or the schemas differ."""
    have, want = await schema_version(source), await schema_version(target)
    if have != want:
        raise CopyError(f"schema versions differ: source {have}, target {want}")
    names = await tables(target)
    missing = set(names) - set(await tables(source))
    if missing:
        raise CopyError(f"the source has no table {sorted(missing)[0]}")
    depends = {name: await parents(target, name) for name in names}
    order = ordered(names, depends)
    shared = {}
    for name in order:
        theirs = set(await columns(source, name))
        shared[name] = [c for c in await columns(target, name) if c in theirs]
    copied: dict[str, int] = {}
    async with target.transaction() as tx:
        for name in order:
            if name in SEEDED:
                continue
            row = await tx.fetchone(f'SELECT count(*) FROM "{name}"')
            if row is not None and row[0]:
                raise CopyError(f"the target database is not empty: table {name} has {row[0]} rows")
        for name in reversed(order):
            if name in SEEDED:
                await tx.execute(f'DELETE FROM "{name}"')
        for name in order:
            cols = shared[name]
            listed = ", ".join(f'"{c}"' for c in cols)
            rows = await source.fetchall(f'SELECT {listed} FROM "{name}"')
            insert = f'INSERT INTO "{name}" ({listed}) VALUES ({", ".join("?" for _ in cols)})'
            for start in range(0, len(rows), BATCH):
                await tx.executemany(insert, [tuple(r) for r in rows[start : start + BATCH]])
            copied[name] = len(rows)
            if target.dialect == "postgresql":
                await _fix_sequences(source, tx, name, cols)
    return copied
