"""Discovery queries: categories (the list admins keep), channels by category, full-text search.

The text rules (what a tag, a category name, a slug or a search word may be) are in
:mod:`kitch.db.vocabulary`; the tables, the seeded categories and the triggers that keep the
search indexes (``channel_search``, ``category_search``) in sync are in migration 0006: FTS5
tables on SQLite, tsvector columns with GIN indexes on PostgreSQL. Both rank the same way: every
term must match a word whole or as its start, a whole-word hit counts more than a prefix-only
one, and a hit counts by its column (:data:`CHANNEL_WEIGHTS`).

``viewers`` arguments map a live channel's name to its viewer count (the HTTP side counts them
in memory): search and lists order live channels by it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kitch.db import Database, IntegrityError, Row
from kitch.db.queries import _CHANNEL_SELECT, ChannelInfo, _channel, watching
from kitch.db.vocabulary import match_expression, name_key, tsquery_expression

#: Most categories the list may hold (the directory shows them all on one page).
MAX_CATEGORIES = 500
#: Column weights of ``channel_search`` for bm25 (name, display_name, title, description, tags,
#: category): a hit in the channel's name counts most, one in the description least.
CHANNEL_WEIGHTS = (10.0, 8.0, 3.0, 1.0, 4.0, 4.0)
_COLUMNS = ("name", "display_name", "title", "description", "tags", "category")


class CategoryConflict(Exception):
    """Another category has that name or slug; ``field`` says which."""

    def __init__(self, field: str) -> None:
        super().__init__(f"a category with that {field} exists")
        self.field = field


class TooManyCategories(Exception):
    """The list already holds :data:`MAX_CATEGORIES`."""


@dataclass(frozen=True)
class Category:
    id: int
    slug: str
    name: str
    hue: int
    #: MIME type of the uploaded cover, None for the generated art.
    image_type: str | None
    updated_at: float
    live_channels: int = 0


_CATEGORY_SELECT = (
    "SELECT k.id, k.slug, k.name, k.hue, k.image_type, k.updated_at, "
    "(SELECT count(*) FROM channels c WHERE c.category_id = k.id AND c.live = 1) AS live_channels "
    "FROM categories k "
)


def _category(row: Row) -> Category:
    return Category(
        id=row["id"],
        slug=row["slug"],
        name=row["name"],
        hue=row["hue"],
        image_type=row["image_type"],
        updated_at=row["updated_at"],
        live_channels=row["live_channels"],
    )


async def list_categories(db: Database) -> list[Category]:
    """Every category, by name (the caller sorts by what it knows, e.g. viewers)."""
    rows = await db.fetchall(_CATEGORY_SELECT + "ORDER BY k.name COLLATE NOCASE, k.id")
    return [_category(row) for row in rows]


async def get_category(db: Database, slug: str) -> Category | None:
    row = await db.fetchone(_CATEGORY_SELECT + "WHERE k.slug = ?", (slug.lower(),))
    return None if row is None else _category(row)


async def find_category(db: Database, text: str) -> Category | None:
    """The category ``text`` names: its slug, or its name ignoring case (NFKC, case-folded)."""
    found = await get_category(db, text.strip())
    if found is not None:
        return found
    key = name_key(text)
    for category in await list_categories(db):
        if name_key(category.name) == key:
            return category
    return None


async def _check_unique(
    tx: Any, name: str | None, slug: str | None, except_id: int | None = None
) -> None:
    rows = await tx.fetchall("SELECT id, name, slug FROM categories")
    others = [row for row in rows if row["id"] != except_id]
    if name is not None and any(name_key(row["name"]) == name_key(name) for row in others):
        raise CategoryConflict("name")
    if slug is not None and any(row["slug"] == slug for row in others):
        raise CategoryConflict("slug")


async def create_category(
    db: Database, name: str, slug: str, hue: int, *, now: float | None = None
) -> Category:
    """Add a category (``name`` and ``slug`` already checked by the vocabulary rules); raises
    :class:`CategoryConflict` or :class:`TooManyCategories`."""
    at = time.time() if now is None else now
    try:
        async with db.transaction() as tx:
            count = await tx.fetchone("SELECT count(*) FROM categories")
            if count is not None and count[0] >= MAX_CATEGORIES:
                raise TooManyCategories
            await _check_unique(tx, name, slug)
            await tx.execute(
                "INSERT INTO categories (slug, name, hue, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (slug, name, hue, at, at),
            )
    except IntegrityError as exc:
        raise CategoryConflict("slug" if "slug" in str(exc) else "name") from None
    created = await get_category(db, slug)
    assert created is not None
    return created


async def update_category(db: Database, category_id: int, changes: dict[str, Any]) -> None:
    """Set any of ``name``, ``slug`` (checked already) and ``hue``; raises
    :class:`CategoryConflict`. The search index follows a new name (a trigger)."""
    values: dict[str, Any] = {k: changes[k] for k in ("name", "slug", "hue") if k in changes}
    if not values:
        return
    values["updated_at"] = time.time()
    assignments = ", ".join(f"{name} = ?" for name in values)  # names from the fixed list only
    try:
        async with db.transaction() as tx:
            await _check_unique(tx, values.get("name"), values.get("slug"), category_id)
            await tx.execute(
                f"UPDATE categories SET {assignments} WHERE id = ?",
                [*values.values(), category_id],
            )
    except IntegrityError as exc:
        raise CategoryConflict("slug" if "slug" in str(exc) else "name") from None


async def delete_category(db: Database, category_id: int) -> list[str]:
    """Remove a category; its channels are left without one. Returns their names."""
    async with db.transaction() as tx:
        rows = await tx.fetchall(
            "SELECT u.username FROM channels c JOIN users u ON u.id = c.user_id "
            "WHERE c.category_id = ?",
            (category_id,),
        )
        await tx.execute("DELETE FROM categories WHERE id = ?", (category_id,))
    return [row[0] for row in rows]


async def set_category_image(
    db: Database, category_id: int, media_type: str | None, data: bytes | None
) -> None:
    """Store an uploaded cover (or, with None, go back to the generated art)."""
    await db.execute(
        "UPDATE categories SET image_type = ?, image = ?, updated_at = ? WHERE id = ?",
        (media_type, data, time.time(), category_id),
    )


async def get_category_image(db: Database, category_id: int) -> tuple[str, bytes] | None:
    """``(media_type, data)`` of the uploaded cover, None when the art is generated."""
    row = await db.fetchone(
        "SELECT image_type, image FROM categories WHERE id = ? AND image IS NOT NULL",
        (category_id,),
    )
    return None if row is None else (row[0], bytes(row[1]))


async def live_channels_by_category(db: Database) -> dict[int, list[str]]:
    """Category id -> names of its live channels (to add up their viewers)."""
    rows = await db.fetchall(
        "SELECT c.category_id, u.username FROM channels c JOIN users u ON u.id = c.user_id "
        "WHERE c.live = 1 AND c.category_id IS NOT NULL"
    )
    found: dict[int, list[str]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(row[1])
    return found


async def search_channels(
    db: Database,
    terms: list[str],
    *,
    viewers: Mapping[str, int] | None = None,
    live_only: bool = False,
    limit: int = 20,
    offset: int = 0,
) -> list[ChannelInfo]:
    """Channels whose name, display name, title, description, tags or category hold every
    term (whole or as a word's start): live first, then by bm25 relevance, then by viewers.
    No terms, no channels."""
    if not terms:
        return []
    if db.dialect == "postgresql":
        # ts_rank per column, weighted like bm25's columns, plus the same for whole-word hits
        # alone (x), as FTS5 scores a whole word on both sides of its OR; negated so that lower
        # is better there too.
        score = " + ".join(
            f"{w} * (ts_rank(s.{column}, q) + ts_rank(s.{column}, x))"
            for column, w in zip(_COLUMNS, CHANNEL_WEIGHTS, strict=True)
        )
        hits = (
            f"SELECT s.channel_id AS hit, c.live AS live, -({score}) AS score, "
            f"{watching(db)} AS watching, u.username AS name FROM channel_search s "
            "JOIN channels c ON c.id = s.channel_id JOIN users u ON u.id = c.user_id "
            "CROSS JOIN to_tsquery('kitch_search', ?) AS q "
            "CROSS JOIN to_tsquery('kitch_search', ?) AS x WHERE s.document @@ q "
        )
        expressions = [tsquery_expression(terms), tsquery_expression(terms, whole=True)]
    else:
        weights = ", ".join(str(w) for w in CHANNEL_WEIGHTS)
        hits = (
            "SELECT s.rowid AS hit, c.live AS live, "
            f"bm25(channel_search, {weights}) AS score, {watching(db)} AS watching, "
            "u.username AS name FROM channel_search s JOIN channels c ON c.id = s.rowid "
            "JOIN users u ON u.id = c.user_id WHERE channel_search MATCH ? "
        )
        expressions = [match_expression(terms)]
    # The page is ranked and cut on the cheap columns first; only its rows get the full select
    # (stream, follower count, avatar), so a word that matches most channels stays cheap.
    rows = await db.fetchall(
        _CHANNEL_SELECT
        + "JOIN ("
        + hits
        + ("AND c.live = 1 " if live_only else "")
        + "ORDER BY live DESC, score, watching DESC, name LIMIT ? OFFSET ?) m ON m.hit = c.id "
        "ORDER BY m.live DESC, m.score, m.watching DESC, m.name",
        (json.dumps(dict(viewers or {})), *expressions, limit, offset),
    )
    return [_channel(row) for row in rows]


async def search_categories(db: Database, terms: list[str], *, limit: int = 8) -> list[Category]:
    """Categories whose name holds every term (whole or as a word's start), most relevant
    first."""
    if not terms:
        return []
    if db.dialect == "postgresql":
        hits = (
            "SELECT s.category_id AS hit, -(ts_rank(s.name, q) + ts_rank(s.name, x)) AS score "
            "FROM category_search s CROSS JOIN to_tsquery('kitch_search', ?) AS q "
            "CROSS JOIN to_tsquery('kitch_search', ?) AS x WHERE s.name @@ q"
        )
        expressions = [tsquery_expression(terms), tsquery_expression(terms, whole=True)]
    else:
        hits = (
            "SELECT rowid AS hit, bm25(category_search) AS score FROM category_search "
            "WHERE category_search MATCH ?"
        )
        expressions = [match_expression(terms)]
    rows = await db.fetchall(
        _CATEGORY_SELECT + f"JOIN ({hits}) m ON m.hit = k.id "
        "ORDER BY m.score, k.name COLLATE NOCASE LIMIT ?",
        (*expressions, limit),
    )
    return [_category(row) for row in rows]
