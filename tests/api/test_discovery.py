"""Discovery over the API (in-process app, real SQLite): categories and admin rights, a
channel's category and tags, browsing by category and tag, search order and paging, covers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from kitch.api.events import Events
from kitch.api.web import web_routes
from kitch.db import Database
from kitch.db.queries import channel_for_stream_key, start_broadcast
from tests.api.helpers import Register, assert_error
from tests.api.test_openapi_answers import tiny_png

CATEGORIES = "/api/v1/categories"


async def _admin_auth(
    client: httpx.AsyncClient, register: Register, db: Database
) -> dict[str, str]:
    data = await register("boss")
    await db.execute("UPDATE users SET is_admin = 1 WHERE username = 'boss'")
    auth: dict[str, str] = data["auth"]
    return auth


async def _go_live(client: httpx.AsyncClient, db: Database, auth: dict[str, str]) -> int:
    key = (await client.get("/api/v1/me/stream-key", headers=auth)).json()["stream_key"]
    ref = await channel_for_stream_key(db, key)
    assert ref is not None
    return await start_broadcast(db, ref.channel_id, {})


def _watch(app: Starlette, name: str, broadcast: int, viewers: int) -> None:
    """What the ingest hub and the HLS side tell the events publisher: ``name`` went live and
    ``viewers`` distinct players read its playlist."""
    events: Events = app.state.events
    events.went_live(name, broadcast, "", "", [])
    for i in range(viewers):
        scope = {"client": (f"198.51.100.{i}", 5000), "headers": [(b"user-agent", b"player")]}
        events.viewers.seen(name, scope)


async def test_categories_are_seeded_with_generated_art(client: httpx.AsyncClient) -> None:
    answer = await client.get(CATEGORIES)
    assert answer.status_code == 200
    categories = answer.json()["categories"]
    names = [c["name"] for c in categories]
    assert "Just Chatting" in names and "Software and Game Development" in names
    assert names == sorted(names, key=str.casefold)  # nobody live: by name
    chatting = next(c for c in categories if c["slug"] == "just-chatting")
    assert chatting["live_channels"] == 0 and chatting["viewers"] == 0
    assert chatting["custom_image"] is False
    art = await client.get(chatting["image_url"])
    assert art.status_code == 200 and art.headers["content-type"] == "image/svg+xml"
    assert b"Just Chatting" in art.content and b"<script" not in art.content
    assert "default-src 'none'" in art.headers["content-security-policy"]
    assert art.headers["x-content-type-options"] == "nosniff"
    assert_error(await client.get(f"{CATEGORIES}/nope/image"), 404)


async def test_admins_manage_categories_and_others_cannot(
    client: httpx.AsyncClient, register: Register, db: Database
) -> None:
    admin = await _admin_auth(client, register, db)
    user = (await register("pleb"))["auth"]
    for method, path, body in (
        ("POST", CATEGORIES, {"name": "Chess"}),
        ("PATCH", f"{CATEGORIES}/music", {"name": "Tunes"}),
        ("DELETE", f"{CATEGORIES}/music", None),
        ("DELETE", f"{CATEGORIES}/music/image", None),
    ):
        assert_error(await client.request(method, path, json=body), 401)
        assert_error(await client.request(method, path, json=body, headers=user), 403, "forbidden")
    made = await client.post(CATEGORIES, json={"name": "  Chess   Variants "}, headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["name"] == "Chess Variants" and made.json()["slug"] == "chess-variants"
    assert 0 <= made.json()["hue"] <= 359
    explicit = await client.post(
        CATEGORIES, json={"name": "将棋", "slug": "shogi", "hue": 12}, headers=admin
    )
    assert explicit.status_code == 201 and explicit.json()["hue"] == 12
    for body, status, why in (
        ({"name": "CHESS variants"}, 409, "name"),
        ({"name": "Other", "slug": "chess-variants"}, 409, "slug"),
        ({"name": "囲碁"}, 422, "slug"),  # no slug can be made from it
        ({"name": ""}, 422, "name"),
        ({"name": "x" * 51}, 422, "50"),
        ({"name": "a\u202eb"}, 422, "bidirectional"),
        ({"name": 5}, 422, "name"),
        ({}, 422, "name"),
        ({"name": "Fine", "slug": "Not A Slug"}, 422, "slug"),
        ({"name": "Fine", "slug": "a--b"}, 422, "slug"),
        ({"name": "Fine", "hue": 360}, 422, "hue"),
        ({"name": "Fine", "hue": True}, 422, "hue"),
        ({"name": "Fine", "colour": 1}, 422, "unknown"),
    ):
        answer = await client.post(CATEGORIES, json=body, headers=admin)
        assert_error(answer, status)
        assert why in answer.json()["error"]["message"], (body, answer.text)
    renamed = await client.patch(
        f"{CATEGORIES}/chess-variants", json={"name": "Chess960", "slug": "chess960"}, headers=admin
    )
    assert renamed.status_code == 200 and renamed.json()["slug"] == "chess960"
    assert_error(await client.get(f"{CATEGORIES}/chess-variants"), 404)
    assert_error(
        await client.patch(f"{CATEGORIES}/chess960", json={"name": "music"}, headers=admin), 409
    )
    assert_error(await client.patch(f"{CATEGORIES}/nope", json={}, headers=admin), 404)
    deleted = await client.delete(f"{CATEGORIES}/chess960", headers=admin)
    assert deleted.status_code == 204
    assert_error(await client.delete(f"{CATEGORIES}/chess960", headers=admin), 404)


async def test_cover_upload_is_reencoded_and_removable(
    client: httpx.AsyncClient, register: Register, db: Database
) -> None:
    admin = await _admin_auth(client, register, db)
    headers = {**admin, "Content-Type": "image/png"}
    uploaded = await client.put(f"{CATEGORIES}/art/image", content=tiny_png(), headers=headers)
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["custom_image"] is True
    cover = await client.get(uploaded.json()["image_url"])
    assert cover.headers["content-type"] == "image/webp" and cover.content[8:12] == b"WEBP"
    wrong_type = {**admin, "Content-Type": "image/svg+xml"}
    assert_error(
        await client.put(f"{CATEGORIES}/art/image", content=b"<svg/>", headers=wrong_type), 415
    )
    assert_error(
        await client.put(f"{CATEGORIES}/art/image", content=b"GIF89a junk", headers=headers), 415
    )
    big = b"\x89PNG" + b"\x00" * (3 * 1024 * 1024)
    assert_error(await client.put(f"{CATEGORIES}/art/image", content=big, headers=headers), 413)
    back = await client.delete(f"{CATEGORIES}/art/image", headers=admin)
    assert back.json()["custom_image"] is False
    art = await client.get(back.json()["image_url"])
    assert art.headers["content-type"] == "image/svg+xml"


async def test_channel_category_by_slug_or_name(
    client: httpx.AsyncClient, register: Register
) -> None:
    auth = (await register("cat_owner"))["auth"]
    url = "/api/v1/channels/cat_owner"
    for given, slug in (
        ("music", "music"),
        ("SCIENCE & technology", "science-and-technology"),
        ("  Just Chatting ", "just-chatting"),
        (None, None),
        ("art", "art"),
        ("", None),
    ):
        answer = await client.patch(url, json={"category": given}, headers=auth)
        assert answer.status_code == 200, answer.text
        assert answer.json()["category_slug"] == slug
    for bad in ("Not a category", 5, ["music"], {"slug": "music"}, "x" * 500):
        answer = await client.patch(url, json={"category": bad}, headers=auth)
        assert_error(answer, 422, "validation_error")
    assert (await client.get(url)).json()["category"] == ""


async def test_tags_are_normalised_and_validated(
    client: httpx.AsyncClient, register: Register
) -> None:
    auth = (await register("tagger"))["auth"]
    url = "/api/v1/channels/tagger"
    given = ["  Speed   Run ", "speed run", "\uff32\uff30\uff27", "c++", "Café", "日本語"]
    answer = await client.patch(url, json={"tags": given}, headers=auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["tags"] == ["Speed Run", "RPG", "c++", "Café", "日本語"]
    for bad, why in (
        (["x"] * 11, "at most 10"),
        (["x" * 26], "tag 1 is longer than 25"),
        (["ok", "🎮"], "tag 2 may only use"),
        (["<script>"], "may only use"),
        (["   "], "tag 1 is empty"),
        (["a\u200bb"], "invisible"),
        ([1], "tag 1 must be a string"),
        ("rpg", "list"),
        (None, "list"),
    ):
        answer = await client.patch(url, json={"tags": bad}, headers=auth)
        assert_error(answer, 422, "validation_error")
        assert why in answer.json()["error"]["message"], (bad, answer.text)
    assert (await client.get(url)).json()["tags"] == ["Speed Run", "RPG", "c++", "Café", "日本語"]
    cleared = await client.patch(url, json={"tags": []}, headers=auth)
    assert cleared.json()["tags"] == []


async def test_browse_by_category_and_tag(
    client: httpx.AsyncClient, register: Register, db: Database, app: Starlette
) -> None:
    for name in ("aa_off", "bb_live", "cc_live", "dd_other"):
        auth = (await register(name))["auth"]
        category = "retro-games" if name != "dd_other" else "music"
        body = {"category": category, "tags": ["Pixel Art", name]}
        assert (await client.patch(f"/api/v1/channels/{name}", json=body, headers=auth)).is_success
        if name.endswith("_live"):
            _watch(app, name, await _go_live(client, db, auth), 1 if name == "bb_live" else 3)
    page = (await client.get(f"{CATEGORIES}/retro-games")).json()
    assert page["category"]["slug"] == "retro-games"
    assert page["category"]["live_channels"] == 2 and page["category"]["viewers"] == 4
    assert [c["name"] for c in page["channels"]] == ["cc_live", "bb_live", "aa_off"]
    assert [c.get("viewers") for c in page["channels"]] == [3, 1, None]
    live = (await client.get(f"{CATEGORIES}/retro-games", params={"live": "true"})).json()
    assert [c["name"] for c in live["channels"]] == ["cc_live", "bb_live"]
    first = (await client.get(f"{CATEGORIES}/retro-games", params={"limit": "2"})).json()
    assert len(first["channels"]) == 2 and first["next_offset"] == 2
    rest = (await client.get(f"{CATEGORIES}/retro-games", params={"offset": "2"})).json()
    assert [c["name"] for c in rest["channels"]] == ["aa_off"] and rest["next_offset"] is None
    for bad in ({"limit": "0"}, {"limit": "51"}, {"offset": "-1"}, {"live": "maybe"}):
        assert_error(await client.get(f"{CATEGORIES}/retro-games", params=bad), 422)
    # the directory puts the most watched category first
    directory = (await client.get(CATEGORIES)).json()["categories"]
    assert directory[0]["slug"] == "retro-games" and directory[0]["viewers"] == 4
    # by tag, ignoring case and compatibility forms
    tagged = (await client.get("/api/v1/tags/PIXEL%20ART")).json()
    assert tagged["tag"] == "PIXEL ART"
    assert [c["name"] for c in tagged["channels"]] == ["cc_live", "bb_live", "aa_off", "dd_other"]
    one = (await client.get("/api/v1/tags/\uff44\uff44_\uff4f\uff54\uff48\uff45\uff52")).json()
    assert [c["name"] for c in one["channels"]] == ["dd_other"]
    assert (await client.get("/api/v1/tags/unused")).json()["channels"] == []
    assert_error(await client.get("/api/v1/tags/%F0%9F%8E%AE"), 422)
    # the home list: live first, the most watched first
    home = (await client.get("/api/v1/channels")).json()["channels"]
    assert [c["name"] for c in home][:2] == ["cc_live", "bb_live"]


async def test_search_ranks_live_first_then_relevance_then_viewers(
    client: httpx.AsyncClient, register: Register, db: Database, app: Starlette
) -> None:
    profiles = {
        "zed_offline": {"title": "Speedrun practice", "category": "speedrunning"},
        "mild_live": {"title": "chill", "description": "a speedrun later maybe"},
        "busy_live": {"title": "chill", "description": "a speedrun later maybe"},
        "other": {"title": "Painting", "tags": ["speedpaint"]},
    }
    for name, body in profiles.items():
        auth = (await register(name))["auth"]
        assert (await client.patch(f"/api/v1/channels/{name}", json=body, headers=auth)).is_success
        if name.endswith("_live"):
            _watch(app, name, await _go_live(client, db, auth), 7 if name == "busy_live" else 2)

    async def names(q: str, **params: str) -> list[str]:
        answer = await client.get("/api/v1/search", params={"q": q, **params})
        assert answer.status_code == 200, answer.text
        return [c["name"] for c in answer.json()["channels"]]

    # live first (even though the offline channel matches in its title), then by viewers
    assert await names("speedrun") == ["busy_live", "mild_live", "zed_offline"]
    # type-ahead: the start of a word matches
    assert await names("spee") == ["busy_live", "mild_live", "zed_offline", "other"]
    assert await names("spee", live="true") == ["busy_live", "mild_live"]
    assert await names("speedp") == ["other"]
    assert await names("speedrun practice") == ["zed_offline"]
    assert await names("zed") == ["zed_offline"]
    # categories answer on the first page
    found = (await client.get("/api/v1/search", params={"q": "speedr"})).json()
    assert [c["slug"] for c in found["categories"]] == ["speedrunning"]
    assert found["terms"] == ["speedr"]
    # pages
    first = (await client.get("/api/v1/search", params={"q": "spee", "limit": "3"})).json()
    assert len(first["channels"]) == 3 and first["next_offset"] == 3
    second = (
        await client.get("/api/v1/search", params={"q": "spee", "limit": "3", "offset": "3"})
    ).json()
    assert [c["name"] for c in second["channels"]] == ["other"]
    assert second["next_offset"] is None and second["categories"] == []


HOSTILE_QUERIES = [
    '"',
    '"speed',
    "speed AND",
    "NOT speed",
    "speed OR",
    "NEAR(speed run)",
    "title:speed",
    "{title}:speed",
    "speed*",
    "*",
    "^speed",
    "-speed",
    "(speed",
    "speed)",
    "\x00",
    "sp\x00eed",
    "🎮",
    "🎮speed🎮",
    "'; DROP TABLE channels; --",
    "%",
    "\\",
    "x" * 200,
    " " * 200,
]


@pytest.mark.parametrize("q", HOSTILE_QUERIES)
async def test_hostile_queries_answer_cleanly(
    client: httpx.AsyncClient, register: Register, q: str
) -> None:
    auth = (await register("speedy"))["auth"]
    await client.patch("/api/v1/channels/speedy", json={"title": "speed run"}, headers=auth)
    answer = await client.get("/api/v1/search", params={"q": q})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"terms", "categories", "channels", "next_offset"}
    if any(t in ("speed", "sp") for t in body["terms"]) and len(body["terms"]) == 1:
        assert [c["name"] for c in body["channels"]] == ["speedy"], q


@pytest.mark.parametrize("raw", ["%ED%A0%80", "%FF%FE", "%C0%80", "%00%00", "%22%2A%3A"])
async def test_undecodable_query_bytes_answer_cleanly(client: httpx.AsyncClient, raw: str) -> None:
    """Bytes that are not UTF-8 (a lone surrogate, an overlong NUL) decode to replacement
    characters, which separate words like any symbol."""
    answer = await client.get(f"/api/v1/search?q={raw}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["terms"] == []


async def test_bad_search_requests(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/v1/search"), 422, "validation_error")
    too_long = await client.get("/api/v1/search", params={"q": "x" * 201})
    assert_error(too_long, 422, "validation_error")
    assert "200" in too_long.json()["error"]["message"]
    for bad in ({"limit": "0"}, {"limit": "x"}, {"offset": "99999999"}, {"live": "2"}):
        assert_error(await client.get("/api/v1/search", params={"q": "a", **bad}), 422)
    empty = (await client.get("/api/v1/search", params={"q": "***"})).json()
    assert empty == {"terms": [], "categories": [], "channels": [], "next_offset": None}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/directory", 200),
        ("/directory/just-chatting", 200),
        ("/directory/a-b-c-123", 200),
        ("/search", 200),
        ("/directory/Not_A_Slug", 404),
        ("/directory/a/b", 404),
        ("/directory/" + "x" * 51, 404),
    ],
)
async def test_web_app_pages_of_discovery(tmp_path: Path, path: str, status: int) -> None:
    (tmp_path / "index.html").write_text('<div id="root"></div>')
    app = Starlette(routes=web_routes(None, webapp_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as web:
        answer = await web.get(path)
    assert answer.status_code == status
    if status == 200:
        assert answer.text == '<div id="root"></div>'
