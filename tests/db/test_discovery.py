"""Discovery in the database: migration 0006 (seeded categories, the old free-text categories
and tags carried over), the FTS indexes kept in sync by triggers, search order and hostile
search text against a real SQLite file."""

from __future__ import annotations

import json
import random

import pytest

from kitch.db import Database, migrations, open_database
from kitch.db import discovery as disc
from kitch.db.copy import columns as table_columns
from kitch.db.queries import get_channel, list_channels, start_broadcast, update_channel
from kitch.db.users import create_user, delete_user, update_profile
from kitch.db.vocabulary import match_expression, search_terms, tsquery_expression
from tests.support.postgres import NewDatabaseURL

SEEDED = {
    "just-chatting": "Just Chatting",
    "software-and-game-development": "Software and Game Development",
    "music": "Music",
    "art": "Art",
    "science-and-technology": "Science & Technology",
}


async def _user(db: Database, name: str) -> int:
    user, _ = await create_user(db, name, f"{name}@example.com", "x")
    channel = await get_channel(db, name)
    assert channel is not None and channel.user_id == user.id
    return channel.id


async def _names(db: Database, text: str, **kwargs: object) -> list[str]:
    found = await disc.search_channels(db, search_terms(text), **kwargs)  # type: ignore[arg-type]
    return [c.name for c in found]


async def test_seeded_categories(db: Database) -> None:
    categories = await disc.list_categories(db)
    assert 15 <= len(categories) <= 25
    by_slug = {c.slug: c.name for c in categories}
    for slug, name in SEEDED.items():
        assert by_slug[slug] == name
    assert all(0 <= c.hue <= 359 and c.image_type is None for c in categories)
    assert len({c.hue for c in categories}) == len(categories)  # each its own colour


async def test_migration_carries_old_categories_and_tags_over(
    new_database_url: NewDatabaseURL, engine: str
) -> None:
    path = await new_database_url(empty=True)
    old = await open_database(path, _migrations=migrations(engine)[:5])
    texts = ["music", " MUSIC ", "Games", "Pokémon", "Art!", "C++ & Rust", "", "日本語"]
    for i, text in enumerate(texts):
        user, _ = await create_user(old, f"old{i}", f"old{i}@example.com", "x")
        await old.execute(
            "UPDATE channels SET category = ?, tags = ? WHERE user_id = ?",
            (text, json.dumps(["RPG", "Chill Vibes"]), user.id),
        )
    await old.close()

    db = await open_database(path)
    try:
        got = {}
        for i in range(len(texts)):
            channel = await get_channel(db, f"old{i}")
            assert channel is not None
            got[i] = (channel.category, channel.category_slug)
        # a seeded name (any ASCII case, blanks trimmed) takes the seeded category
        assert got[0] == got[1] == ("Music", "music")
        # any other text becomes a category of its own; a slug from the text when it makes one
        assert got[2] == ("Games", "games")
        assert got[5] == ("C++ & Rust", "c-plus-plus-and-rust")
        for i in (3, 4, 7):  # no valid slug from the text: category-ID
            assert got[i][0] == texts[i] and (got[i][1] or "").startswith("category-")
        assert got[6] == ("", None)
        columns = await table_columns(db, "channels")
        assert "category" not in columns and "category_id" in columns
        # tags stay as written; their keys are there for browsing, and the index has them
        rpg = await list_channels(db, tag="rpg", limit=100)
        assert len(rpg) == len(texts) and rpg[0].tags == ["RPG", "Chill Vibes"]
        assert len(await list_channels(db, tag="CHILL VIBES", limit=100)) == len(texts)
        assert len(await _names(db, "chill", limit=50)) == len(texts)
        assert await _names(db, "pokemon") == ["old3"]
        assert len(await _names(db, "music", limit=50)) == 2
    finally:
        await db.close()


async def test_index_follows_every_change(db: Database) -> None:
    channel_id = await _user(db, "indexed")
    assert await _names(db, "indexed") == ["indexed"]
    user = await db.fetchone("SELECT id FROM users WHERE username = 'indexed'")
    assert user is not None
    await update_profile(db, user[0], {"display_name": "Zebra Crossing"})
    assert await _names(db, "zebra") == ["indexed"]
    await update_channel(
        db, channel_id, {"title": "Late night synthwave", "description": "modular"}
    )
    assert await _names(db, "synthwave") == ["indexed"]
    assert await _names(db, "modular") == ["indexed"]
    await update_channel(db, channel_id, {"title": "Quiet"})
    assert await _names(db, "synthwave") == []
    await update_channel(db, channel_id, {"tags": ["Speed Run", "c++"]})
    assert await _names(db, "speed") == ["indexed"]
    music = await disc.get_category(db, "music")
    assert music is not None
    await update_channel(db, channel_id, {"category_id": music.id})
    assert await _names(db, "music") == ["indexed"]
    await disc.update_category(db, music.id, {"name": "Music & Audio"})
    assert await _names(db, "audio") == ["indexed"]
    assert [c.slug for c in await disc.search_categories(db, ["audio"])] == ["music"]
    names = await disc.delete_category(db, music.id)
    assert names == ["indexed"]
    channel = await get_channel(db, "indexed")
    assert channel is not None and channel.category == "" and channel.category_slug is None
    assert await _names(db, "audio") == []
    assert await disc.search_categories(db, ["audio"]) == []
    await delete_user(db, user[0])
    assert await _names(db, "zebra") == []
    rows = await db.fetchone("SELECT count(*) FROM channel_search")
    assert rows is not None and rows[0] == 0
    left = await db.fetchone("SELECT count(*) FROM channel_tags")
    assert left is not None and left[0] == 0


async def test_search_order_live_then_relevance_then_viewers(db: Database) -> None:
    ids = {}
    for name in ("alpha", "bravo", "charlie", "delta"):
        ids[name] = await _user(db, name)
    # charlie names the word in its title (a strong column), delta in its description
    await update_channel(db, ids["charlie"], {"title": "chess openings"})
    await update_channel(db, ids["delta"], {"description": "some chess on weekends"})
    await update_channel(db, ids["alpha"], {"description": "chess chess"})
    await update_channel(db, ids["bravo"], {"description": "chess chess"})
    assert await _names(db, "chess") == ["charlie", "alpha", "bravo", "delta"]
    # live first, whatever the relevance; among equals the most watched first
    await start_broadcast(db, ids["alpha"], {})
    await start_broadcast(db, ids["bravo"], {})
    assert await _names(db, "chess", viewers={"alpha": 1, "bravo": 5}) == [
        "bravo",
        "alpha",
        "charlie",
        "delta",
    ]
    assert await _names(db, "chess", viewers={"alpha": 9, "bravo": 5}) == [
        "alpha",
        "bravo",
        "charlie",
        "delta",
    ]
    assert await _names(db, "chess", live_only=True) == ["alpha", "bravo"]
    # pages
    first = await _names(db, "chess", limit=3)
    second = await _names(db, "chess", limit=3, offset=3)
    assert first + second == await _names(db, "chess", limit=10) and len(second) == 1
    # every word must match, whole or as the start of a word
    assert await _names(db, "ch") == await _names(db, "chess")
    assert await _names(db, "chess open") == ["charlie"]
    assert await _names(db, "chess closing") == []
    # a whole-word hit ranks above a prefix-only hit
    await update_channel(db, ids["delta"], {"title": "run"})
    await update_channel(db, ids["charlie"], {"title": "runner"})
    assert (await _names(db, "run"))[:2] == ["delta", "charlie"]


async def test_a_hit_counts_by_its_column(db: Database) -> None:
    """The column weights rank alike on both engines: name, then tags, then title, then
    description (other channels make the word rare, as it is in a real index)."""
    for i in range(6):
        await _user(db, f"filler{i}")
    await _user(db, "quasar")
    await update_channel(db, await _user(db, "bee"), {"tags": ["Quasar"]})
    await update_channel(db, await _user(db, "cee"), {"title": "quasar"})
    await update_channel(db, await _user(db, "dee"), {"description": "quasar"})
    assert await _names(db, "quasar") == ["quasar", "bee", "cee", "dee"]
    assert await _names(db, "quas") == ["quasar", "bee", "cee", "dee"]


HOSTILE = [
    '"',
    '"unbalanced',
    "a AND",
    "NOT",
    "OR OR OR",
    "NEAR(a b, 3)",
    "title:chess",
    "{name title}: x",
    "- chess",
    "^chess",
    "chess*",
    "*",
    "(((",
    ")",
    "a + b",
    "\x00",
    "a\x00b",
    "🎮🎮🎮",
    "🎮chess🎮",
    "\u0301",
    "'; DROP TABLE channels; --",
    "chess" * 100,
    " ".join(["w"] * 300),
    "\ufffd",
    "\uff43\uff48\uff45\uff53\uff53",
    "\u202echess",
    "rowid:1",
    "channel_search:chess",
]


@pytest.mark.parametrize("text", HOSTILE)
async def test_hostile_search_text_is_just_words(db: Database, text: str) -> None:
    channel_id = await _user(db, "target")
    await update_channel(db, channel_id, {"title": "chess night"})
    terms = search_terms(text)
    assert len(terms) <= 8 and all(t and len(t) <= 64 for t in terms)
    found = await disc.search_channels(db, terms)
    # found exactly when every word starts a word of the channel ("title:chess" needs "title")
    words = ("target", "chess", "night")
    expected = bool(terms) and all(any(w.startswith(t) for w in words) for t in terms)
    assert [c.name for c in found] == (["target"] if expected else []), text
    if text in (
        "chess*",
        "^chess",
        "- chess",
        "\uff43\uff48\uff45\uff53\uff53",
        "\u202echess",
        "🎮chess🎮",
    ):
        assert expected, text
    await disc.search_categories(db, terms)


async def test_random_text_never_breaks_the_query(db: Database) -> None:
    channel_id = await _user(db, "victim")
    await update_channel(db, channel_id, {"title": "any title"})
    rng = random.Random(6)
    alphabet = ['"', "*", "(", ")", ":", "^", "-", "+", " ", "\x00", "a", "Z", "é", "🎮", "\u0301"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        text += " ".join(rng.choice(["AND", "OR", "NOT", "NEAR", "any"]) for _ in range(3))
        await disc.search_channels(db, search_terms(text))
        if not search_terms(text):
            continue
        if db.dialect == "postgresql":
            await db.fetchall(
                "SELECT channel_id FROM channel_search "
                "WHERE document @@ to_tsquery('kitch_search', ?)",
                (tsquery_expression(search_terms(text)),),
            )
        else:
            await db.fetchall(
                "SELECT rowid FROM channel_search WHERE channel_search MATCH ?",
                (match_expression(search_terms(text)),),
            )


async def test_category_rules_in_the_database(db: Database) -> None:
    made = await disc.create_category(db, "Chess", "chess", 30)
    assert made.slug == "chess" and made.live_channels == 0
    with pytest.raises(disc.CategoryConflict) as conflict:
        await disc.create_category(db, "CHESS", "chess-2", 30)
    assert conflict.value.field == "name"
    with pytest.raises(disc.CategoryConflict) as conflict:
        await disc.create_category(db, "Chess Two", "chess", 30)
    assert conflict.value.field == "slug"
    # a full-width name folds to the same key
    with pytest.raises(disc.CategoryConflict):
        await disc.create_category(db, "\uff23\uff48\uff45\uff53\uff53", "chess-3", 30)
    assert (await disc.find_category(db, "chess")) == made
    assert (await disc.find_category(db, "  cHeSs ")) == made
    assert (await disc.find_category(db, "just chatting")) is not None
    assert (await disc.find_category(db, "nothing like it")) is None
    channel_id = await _user(db, "player")
    await update_channel(db, channel_id, {"category_id": made.id})
    await start_broadcast(db, channel_id, {})
    listed = {c.slug: c for c in await disc.list_categories(db)}
    assert listed["chess"].live_channels == 1 and listed["music"].live_channels == 0
    assert await disc.live_channels_by_category(db) == {made.id: ["player"]}
    in_chess = await list_channels(db, category_id=made.id)
    assert [c.name for c in in_chess] == ["player"]


async def test_category_limit(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    count = len(await disc.list_categories(db))
    monkeypatch.setattr(disc, "MAX_CATEGORIES", count + 1)
    await disc.create_category(db, "One More", "one-more", 0)
    with pytest.raises(disc.TooManyCategories):
        await disc.create_category(db, "Too Many", "too-many", 0)
