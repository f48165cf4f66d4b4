"""``/thumbnails/{channel}/{size}.jpg`` and the channels' ``thumbnail_url`` on the real app with
a real database and a real store (pictures put in memory and written to disk as the sink does);
tests/server/test_thumbnails_e2e.py makes the pictures from a real RTMP publish."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from kitch.api.app import create_app
from kitch.config import Settings
from kitch.db import Database
from kitch.db.queries import channel_id_of
from kitch.ingest.thumbnails import Thumbnail, ThumbnailStore
from tests.api.helpers import assert_error
from tests.api.test_openapi_answers import Checker

TAKEN = 1_700_000_000.25
PICTURE = Thumbnail({"640x360": b"\xff\xd8\xffbig", "320x180": b"\xff\xd8\xffsmall"}, TAKEN)


@pytest.fixture
def store(settings: Settings) -> ThumbnailStore:
    return ThumbnailStore(settings.data_dir / "thumbnails", interval=40.0)


@pytest.fixture
async def client(
    settings: Settings, db: Database, store: ThumbnailStore
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, db=db, thumbnails=store)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://kitch.test") as c:
        yield c


async def _saved(store: ThumbnailStore, db: Database, name: str, picture: Thumbnail) -> int:
    channel_id = await channel_id_of(db, name)
    assert channel_id is not None
    store.write_saved(name, channel_id, picture)
    store.saved_written(name, channel_id, 1, picture)
    return channel_id


async def test_an_offline_picture_is_served_from_disk_with_cache_headers(
    client: httpx.AsyncClient, register: object, db: Database, store: ThumbnailStore
) -> None:
    await register("alice")  # type: ignore[operator]
    await _saved(store, db, "alice", PICTURE)
    for size, body in (("640x360", b"\xff\xd8\xffbig"), ("320x180", b"\xff\xd8\xffsmall")):
        r = await client.get(f"/thumbnails/alice/{size}.jpg")
        assert r.status_code == 200 and r.content == body
        assert r.headers["content-type"] == "image/jpeg"
        assert r.headers["cache-control"] == "public, max-age=20"  # half the interval
        assert r.headers["etag"] == f'"{PICTURE.version}"'
        assert r.headers["last-modified"] == formatdate(TAKEN, usegmt=True)
    # the name is case-insensitive, as the channel pages are
    assert (await client.get("/thumbnails/Alice/320x180.jpg")).status_code == 200
    head = await client.head("/thumbnails/alice/640x360.jpg")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(b"\xff\xd8\xffbig"))


async def test_conditional_requests_answer_304(
    client: httpx.AsyncClient, register: object, db: Database, store: ThumbnailStore
) -> None:
    await register("alice")  # type: ignore[operator]
    await _saved(store, db, "alice", PICTURE)
    url = "/thumbnails/alice/640x360.jpg"
    etag = f'"{PICTURE.version}"'
    for headers in (
        {"If-None-Match": etag},
        {"If-None-Match": f'"1", W/{etag}'},
        {"If-Modified-Since": formatdate(TAKEN, usegmt=True)},
        {"If-Modified-Since": formatdate(TAKEN + 60, usegmt=True)},
    ):
        r = await client.get(url, headers=headers)
        assert r.status_code == 304 and r.content == b"", headers
        assert r.headers["etag"] == etag and "max-age" in r.headers["cache-control"]
    for headers in (
        {"If-None-Match": '"1"'},
        {"If-Modified-Since": formatdate(TAKEN - 60, usegmt=True)},
        {"If-Modified-Since": "not a date"},
        # If-None-Match wins over If-Modified-Since
        {"If-None-Match": '"1"', "If-Modified-Since": formatdate(TAKEN, usegmt=True)},
    ):
        assert (await client.get(url, headers=headers)).status_code == 200, headers


async def test_the_live_picture_wins_and_thumbnail_url_follows_it(
    client: httpx.AsyncClient, register: object, db: Database, store: ThumbnailStore
) -> None:
    await register("alice")  # type: ignore[operator]
    await register("bob")  # type: ignore[operator]
    channel = (await client.get("/api/v1/channels/alice")).json()
    assert channel["thumbnail_url"] is None
    await _saved(store, db, "alice", PICTURE)
    url = (await client.get("/api/v1/channels/alice")).json()["thumbnail_url"]
    assert url == f"/thumbnails/alice/640x360.jpg?v={PICTURE.version}"
    assert (await client.get(url)).content == b"\xff\xd8\xffbig"
    newer = Thumbnail({"640x360": b"\xff\xd8\xfflive", "320x180": b"\xff\xd8\xffl"}, TAKEN + 45)
    store.put_live("alice", 2, newer)
    listed = {c["name"]: c for c in (await client.get("/api/v1/channels")).json()["channels"]}
    assert listed["alice"]["thumbnail_url"] == f"/thumbnails/alice/640x360.jpg?v={newer.version}"
    assert listed["bob"]["thumbnail_url"] is None
    r = await client.get(listed["alice"]["thumbnail_url"])
    assert r.content == b"\xff\xd8\xfflive" and r.headers["etag"] == f'"{newer.version}"'


async def test_missing_pictures_are_json_404s(
    client: httpx.AsyncClient, register: object, db: Database, store: ThumbnailStore
) -> None:
    await register("alice")  # type: ignore[operator]
    await register("carol")  # type: ignore[operator]
    await _saved(store, db, "alice", PICTURE)
    for path in (
        "/thumbnails/nobody/640x360.jpg",  # unknown channel
        "/thumbnails/carol/640x360.jpg",  # a channel that never had a picture
        "/thumbnails/alice/1280x720.jpg",  # unknown size
        "/thumbnails/alice/640x360.png",
        "/thumbnails/alice/640x360",
        "/thumbnails/" + "x" * 300 + "/640x360.jpg",
    ):
        r = await client.get(path)
        assert_error(r, 404, "not_found")
        assert r.headers["cache-control"] == "no-store"


async def test_a_picture_of_an_earlier_account_of_the_same_name_is_not_served(
    client: httpx.AsyncClient, register: object, db: Database, store: ThumbnailStore
) -> None:
    await register("alice")  # type: ignore[operator]
    channel_id = await channel_id_of(db, "alice")
    assert channel_id is not None
    store.write_saved("alice", channel_id + 100, PICTURE)  # left by a deleted account
    store.saved_written("alice", channel_id + 100, 1, PICTURE)
    assert_error(await client.get("/thumbnails/alice/640x360.jpg"), 404, "not_found")
    assert (await client.get("/api/v1/channels/alice")).json()["thumbnail_url"] is None


async def test_without_a_store_no_channel_has_a_picture(
    settings: Settings, db: Database, register: object
) -> None:
    app = create_app(settings, db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kitch.test") as c:
        assert_error(await c.get("/thumbnails/alice/640x360.jpg"), 404, "not_found")


async def test_channel_answers_with_thumbnail_url_match_the_document(
    client: httpx.AsyncClient, register: object, db: Database, store: ThumbnailStore
) -> None:
    user = await register("alice")  # type: ignore[operator]
    await _saved(store, db, "alice", PICTURE)
    checker = Checker(client, (await client.get("/api/v1/openapi.json")).json())
    listed = await checker.call("list_channels", 200)
    assert listed["channels"][0]["thumbnail_url"].startswith("/thumbnails/alice/")
    one = await checker.call("get_channel", 200, name="alice", headers=user["auth"])
    assert one["thumbnail_url"] == listed["channels"][0]["thumbnail_url"]


def test_the_store_ignores_stray_files(tmp_path: Path) -> None:
    store = ThumbnailStore(tmp_path)
    (tmp_path / "junk").mkdir()
    (tmp_path / "5-half").mkdir()
    (tmp_path / "5-half" / "640x360.jpg").write_bytes(b"x")  # the other size is missing
    (tmp_path / "6-Bad.Name").mkdir()
    (tmp_path / "readme.txt").write_text("x")
    assert store.scan() == {}
    assert ThumbnailStore(tmp_path / "missing").scan() == {}
