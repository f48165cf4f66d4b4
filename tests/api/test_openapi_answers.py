"""Real answers of the app against the response schemas of ``/api/v1/openapi.json``.

Each test walks a group of operations with real requests and validates every answer (success
and error) against the schema the document gives for its status, so the document (and the web
app's types generated from it) cannot drift from what the server sends. The validator covers
the subset of JSON Schema that kitch.api.openapi uses and refuses any other keyword.
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import Any

import httpx
import pytest

from kitch.api.openapi import RESPONSES
from kitch.db import Database, recordings
from kitch.db.follows import notify_live
from kitch.db.queries import channel_for_stream_key, start_broadcast, update_broadcast_stats
from kitch.ingest.hub import HLS_STATS
from kitch.ingest.stats import IngestStats
from tests.api.helpers import PASSWORD, FakeHub, Register

KEYWORDS = {
    "$ref",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "format",
    "maxItems",
    "description",
}
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def problems(schema: dict[str, Any], value: Any, spec: dict[str, Any], at: str = "$") -> list[str]:
    """What is wrong with ``value`` against ``schema`` (empty when it conforms)."""
    unknown = set(schema) - KEYWORDS
    assert not unknown, f"{at}: the validator does not know {sorted(unknown)}"
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return problems(spec["components"]["schemas"][name], value, spec, at)
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not any(TYPES[kind](value) for kind in kinds):
            return [f"{at}: {value!r} is not {'/'.join(kinds)}"]
    found: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{at}: {value!r} is not one of {schema['enum']}")
    if (
        schema.get("format") == "date-time"
        and isinstance(value, str)
        and not DATE_TIME.match(value)
    ):
        found.append(f"{at}: {value!r} is not a date-time")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        missing = [name for name in schema.get("required", ()) if name not in value]
        found += [f"{at}: {name} is missing" for name in missing]
        for name, item in value.items():
            if name in properties:
                found += problems(properties[name], item, spec, f"{at}.{name}")
            elif schema.get("additionalProperties", True) is False:
                found.append(f"{at}: {name} is not in the document")
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            found.append(f"{at}: more than {schema['maxItems']} items")
        for i, item in enumerate(value):
            found += problems(schema.get("items", {}), item, spec, f"{at}[{i}]")
    return found


def test_the_validator_finds_what_it_should() -> None:
    spec = {"components": {"schemas": {"N": {"type": ["integer", "null"]}}}}
    closed = {
        "type": "object",
        "required": ["a"],
        "properties": {"a": {"$ref": "#/components/schemas/N"}, "t": {"format": "date-time"}},
        "additionalProperties": False,
    }
    assert problems(closed, {"a": None, "t": "2026-01-31T12:00:00.000Z"}, spec) == []
    assert problems(closed, {"a": True}, spec) == ["$.a: True is not integer/null"]
    assert problems(closed, {}, spec) == ["$: a is missing"]
    assert problems(closed, {"a": 1, "b": 2}, spec) == ["$: b is not in the document"]
    assert problems(closed, {"a": 1, "t": "yesterday"}, spec) == [
        "$.t: 'yesterday' is not a date-time"
    ]
    listed = {"type": "array", "items": {"enum": ["x"]}, "maxItems": 1}
    assert problems(listed, ["x", "y"], spec) == [
        "$: more than 1 items",
        "$[1]: 'y' is not one of ['x']",
    ]
    with pytest.raises(AssertionError, match="oneOf"):
        problems({"oneOf": []}, 1, spec)


def tiny_png() -> bytes:
    """A valid 1x1 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


class Checker:
    """Validates answers against the served document and records which operations it saw."""

    def __init__(self, client: httpx.AsyncClient, spec: dict[str, Any]) -> None:
        self.client = client
        self.spec = spec
        self.operations = {
            op["operationId"]: (path, op)
            for path, item in spec["paths"].items()
            for op in item.values()
            if isinstance(op, dict)
        }
        self.seen: set[str] = set()

    async def call(
        self,
        operation: str,
        status: int,
        *,
        name: str = "",
        slug: str = "",
        ids: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Send ``operation`` (``{name}``, ``{slug}``, ``{tag}`` (the tag is ``name``) and
        the other path parameters of ``ids`` filled in),
        expect ``status``, validate the answer."""
        path, op = self.operations[operation]
        method = next(m for m, o in self.spec["paths"][path].items() if o is op)
        url = path.replace("{name}", name).replace("{tag}", name).replace("{slug}", slug)
        for key, value in (ids or {}).items():
            url = url.replace("{" + key + "}", value)
        response = await self.client.request(method.upper(), url, **kwargs)
        assert response.status_code == status, (operation, response.text)
        documented = op["responses"].get(str(status)) or op["responses"]["default"]
        if status == 204:
            assert "content" not in documented and response.content == b"", operation
            self.seen.add(operation)
            return {}
        schema = documented["content"]["application/json"]["schema"]
        body = response.json()
        assert problems(schema, body, self.spec) == [], (operation, status, body)
        if status < 400:
            self.seen.add(operation)
        return body  # type: ignore[no-any-return]


@pytest.fixture
async def checker(client: httpx.AsyncClient) -> Checker:
    spec = (await client.get("/api/v1/openapi.json")).json()
    check = Checker(client, spec)
    await check.call("openapi_json", 200)
    return check


AUTH = {"register", "login", "refresh", "logout", "patch_me"}
RECORDINGS = {
    "list_recordings",
    "get_recording",
    "rename_recording",
    "delete_recording",
    "get_recording_settings",
    "patch_recording_settings",
}
SCHEDULE = {
    "get_schedule",
    "create_schedule",
    "patch_schedule",
    "cancel_schedule",
    "upcoming_schedule",
    "my_analytics",
    "broadcast_analytics",
}
DISCOVERY = {
    "list_categories",
    "create_category",
    "get_category",
    "patch_category",
    "delete_category",
    "put_category_image",
    "delete_category_image",
    "search",
    "tag_channels",
}
EVERYTHING_ELSE = (set(RESPONSES) - AUTH - RECORDINGS - SCHEDULE - DISCOVERY) | {
    "delete_me",
    "delete_avatar",
}


def test_every_answer_schema_is_exercised() -> None:
    assert set(RESPONSES) <= AUTH | EVERYTHING_ELSE | RECORDINGS | SCHEDULE | DISCOVERY


async def test_auth_answers_match_the_document(checker: Checker) -> None:
    """Register, login, refresh and logout with the token in the body and with the cookie."""
    new = {"username": "nia", "email": "nia@example.com", "password": PASSWORD}
    body = await checker.call("register", 201, json={**new, "token_delivery": "body"})
    assert body["refresh_token"] and body["user"]["username"] == "nia"
    login = {"username": "nia", "password": PASSWORD}
    cookie_session = await checker.call("login", 200, json=login)
    assert "refresh_token" not in cookie_session
    assert checker.client.cookies.get("kitch_refresh", path="/api/v1/auth")
    refreshed = await checker.call("refresh", 200, headers={"X-Kitch-CSRF": "1"})
    assert "refresh_token" not in refreshed and refreshed["user"]["username"] == "nia"
    refreshed = await checker.call("refresh", 200, json={"refresh_token": body["refresh_token"]})
    assert refreshed["refresh_token"] != body["refresh_token"]
    await checker.call("refresh", 401, json={"refresh_token": "nonsense"})
    auth = {"Authorization": f"Bearer {refreshed['access_token']}"}
    await checker.call("patch_me", 400, json={"email": "nia2@example.com"}, headers=auth)
    changed = await checker.call(
        "patch_me",
        200,
        json={"email": "nia2@example.com", "current_password": PASSWORD},
        headers=auth,
    )
    assert changed["email"] == "nia2@example.com"
    await checker.call("login", 401, json={**login, "password": "wrong password"})
    await checker.call("logout", 204, headers={"X-Kitch-CSRF": "1"})
    await checker.call("logout", 204, json={"refresh_token": refreshed["refresh_token"]})
    assert checker.seen >= AUTH


async def test_other_answers_match_the_document(
    checker: Checker, register: Register, db: Database, hub: FakeHub
) -> None:
    """Profile, channels (offline and live), health, ladder settings, stream key, ingest
    switch, avatar, password."""
    auth = (await register("vera"))["auth"]
    await checker.call("get_me", 200, headers=auth)
    await checker.call("get_me", 401)
    await checker.call("patch_me", 200, json={"display_name": "Vera", "bio": "hi"}, headers=auth)
    await checker.call("patch_me", 422, json={"bio": 5}, headers=auth)
    await checker.call("server_info", 200)
    key = (await checker.call("get_stream_key", 200, headers=auth))["stream_key"]
    assert "ladder" not in await checker.call("get_channel", 200, name="vera")
    assert (await checker.call("get_channel", 200, name="vera", headers=auth))["ladder"]
    await checker.call("get_channel", 404, name="nobody")
    assert await checker.call("channel_health", 200, name="vera", headers=auth) == {"live": False}
    await checker.call("channel_health", 401, name="vera")
    hub.live.add("vera")
    live_health = await checker.call("channel_health", 200, name="vera", headers=auth)
    assert [r["name"] for r in live_health["renditions"]] == ["source", "720p"]
    ladder = {"enabled": False, "rungs": ["480p"]}
    patched = await checker.call(
        "patch_channel", 200, name="vera", json={"ladder": ladder}, headers=auth
    )
    assert patched["ladder"] == ladder
    await checker.call(
        "patch_channel", 422, name="vera", json={"ladder": {"rungs": ["8k"]}}, headers=auth
    )
    ref = await channel_for_stream_key(db, key)
    assert ref is not None
    broadcast = await start_broadcast(db, ref.channel_id, {})
    live = await checker.call("list_channels", 200, params={"live": "true"})
    assert [c["name"] for c in live["channels"]] == ["vera"] and live["channels"][0]["stream"]
    stats = IngestStats(video_codec="h264", width=1280, height=720, encoder="obs").snapshot()
    stats["hls"] = dict.fromkeys(HLS_STATS)
    await update_broadcast_stats(db, broadcast, stats)
    assert (await checker.call("get_channel", 200, name="vera"))["stream"]["stats"] == stats
    await checker.call("list_channels", 422, params={"limit": "many"})
    tags = ["a", "b"]
    patched = await checker.call(
        "patch_channel", 200, name="vera", json={"tags": tags}, headers=auth
    )
    assert patched["tags"] == tags
    fan = (await register("wren"))["auth"]
    followed = await checker.call("put_follow", 200, name="vera", headers=fan)
    assert followed == {"following": True, "follower_count": 1}
    await checker.call("put_follow", 400, name="vera", headers=auth)
    await notify_live(db, ref.channel_id, broadcast, {"title": "hello"})
    assert (await checker.call("get_following", 200, headers=fan))["channels"][0]["following"]
    assert (await checker.call("get_notifications", 200, headers=fan))["unread"] == 1
    await checker.call("read_notifications", 422, json={}, headers=fan)
    await checker.call("read_notifications", 200, json={"all": True}, headers=fan)
    await checker.call("delete_follow", 200, name="vera", headers=fan)
    await checker.call("rotate_stream_key", 200, headers=auth)
    await checker.call("end_broadcast", 200, headers=auth)
    await checker.call("enable_broadcast", 200, headers=auth)
    png = tiny_png()
    await checker.call(
        "put_avatar", 200, content=png, headers={**auth, "Content-Type": "image/png"}
    )
    await checker.call("delete_avatar", 204, headers=auth)
    assert await checker.call("chat_history", 200, name="vera") == {"messages": []}
    await checker.call("chat_history", 422, name="vera", params={"limit": "0"})
    assert await checker.call("chat_audit", 200, name="vera", headers=auth) == {"entries": []}
    await checker.call("chat_audit", 401, name="vera")
    assert await checker.call("chat_bans", 200, name="vera", headers=auth) == {
        "bans": [],
        "more": False,
    }
    await checker.call("chat_bans", 403, name="vera", headers=fan)
    await checker.call("chat_bans", 422, name="vera", params={"limit": "501"}, headers=auth)
    await checker.call("chat_bans", 404, name="nobody", headers=auth)
    password = {"current_password": PASSWORD, "new_password": "another fine password"}
    tokens = await checker.call("change_password", 200, json=password, headers=auth)
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    await checker.call("delete_me", 403, json={"password": PASSWORD}, headers=auth)
    await checker.call("delete_me", 204, json={"password": password["new_password"]}, headers=auth)
    assert checker.seen >= EVERYTHING_ELSE


async def test_recording_answers_match_the_document(
    checker: Checker, register: Register, db: Database
) -> None:
    """The recordings list, one recording, rename, delete and the recording switch."""
    auth = (await register("rhea"))["auth"]
    other = (await register("ivo"))["auth"]
    settings = await checker.call("get_recording_settings", 200, name="rhea", headers=auth)
    assert settings["enabled"] is True and settings["used_bytes"] == 0
    await checker.call("get_recording_settings", 403, name="rhea", headers=other)
    off = await checker.call(
        "patch_recording_settings", 200, name="rhea", json={"enabled": False}, headers=auth
    )
    assert off["enabled"] is False
    await checker.call("patch_recording_settings", 422, name="rhea", json={}, headers=auth)
    key = (await checker.call("get_stream_key", 200, headers=auth))["stream_key"]
    ref = await channel_for_stream_key(db, key)
    assert ref is not None
    ids = []
    for state, segments in (("ended", 3), ("failed", 0)):
        broadcast = await start_broadcast(db, ref.channel_id, {})
        rid = await recordings.create_recording(db, ref.channel_id, broadcast, f"rhea/{broadcast}")
        await recordings.update_recording(
            db,
            rid,
            state=state,
            reason=None if segments else "the disk is full",
            segments=segments,
            size=1000 * segments,
            duration=2.0 * segments,
            ended_at=1.8e9,
        )
        ids.append(str(rid))
    public = await checker.call("list_recordings", 200, name="rhea")
    assert [r["id"] for r in public["recordings"]] == [int(ids[0])]
    own = await checker.call("list_recordings", 200, name="rhea", headers=auth)
    assert [r["state"] for r in own["recordings"]] == ["failed", "ended"]
    await checker.call("list_recordings", 422, name="rhea", params={"limit": "101"})
    await checker.call("list_recordings", 404, name="nobody")
    assert (await checker.call("get_recording", 200, ids={"id": ids[0]}))["segments"] == 3
    await checker.call("get_recording", 404, ids={"id": ids[1]})
    assert (await checker.call("get_recording", 200, ids={"id": ids[1]}, headers=auth))["reason"]
    renamed = await checker.call(
        "rename_recording", 200, ids={"id": ids[0]}, json={"title": "Finals"}, headers=auth
    )
    assert renamed["title"] == "Finals"
    await checker.call(
        "rename_recording", 403, ids={"id": ids[0]}, json={"title": "x"}, headers=other
    )
    await checker.call("rename_recording", 401, ids={"id": ids[0]}, json={"title": "x"})
    await checker.call("rename_recording", 422, ids={"id": ids[0]}, json={"title": 5}, headers=auth)
    await checker.call("delete_recording", 403, ids={"id": ids[0]}, headers=other)
    await checker.call("delete_recording", 204, ids={"id": ids[0]}, headers=auth)
    await checker.call("delete_recording", 404, ids={"id": ids[0]}, headers=auth)
    assert checker.seen >= RECORDINGS


async def test_schedule_and_analytics_answers_match_the_document(
    checker: Checker, register: Register, db: Database
) -> None:
    """Scheduled streams (create, list, edit, cancel, upcoming), a schedule notification, and
    the analytics of a broadcast with viewers, chat and a follow."""
    import time
    from datetime import UTC, datetime, timedelta

    from kitch.api.reminders import Reminders
    from kitch.db.follows import follow, record_viewers

    auth = (await register("sam"))["auth"]
    fan = (await register("fay"))["auth"]
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    made = await checker.call(
        "create_schedule",
        201,
        name="sam",
        json={"title": "Retro", "starts_at": start.isoformat(), "timezone": "Europe/Paris"},
        headers=auth,
    )
    await checker.call(
        "create_schedule",
        422,
        name="sam",
        json={"title": "x", "starts_at": "2000-01-01T00:00Z", "timezone": "UTC"},
        headers=auth,
    )
    await checker.call("create_schedule", 401, name="sam", json={})
    listed = await checker.call("get_schedule", 200, name="sam")
    assert [s["id"] for s in listed["schedule"]] == [made["id"]]
    await checker.call("get_schedule", 404, name="nobody")
    path = {"schedule_id": str(made["id"])}
    edited = await checker.call(
        "patch_schedule", 200, name="sam", ids=path, json={"duration_minutes": 30}, headers=auth
    )
    assert edited["duration_minutes"] == 30
    await checker.call(
        "patch_schedule", 403, name="sam", ids=path, json={"title": "x"}, headers=fan
    )
    page = await checker.call("upcoming_schedule", 200, params={"limit": "1"})
    assert page["next_cursor"] and page["schedule"][0]["id"] == made["id"]
    await checker.call("upcoming_schedule", 422, params={"cursor": "?"})

    await checker.call("put_follow", 200, name="sam", headers=fan)
    reminders = Reminders(checker.client._transport.app.state.events, 600)  # type: ignore[attr-defined]
    reminders.db = db
    await reminders.run_once(start.timestamp() - 60)
    notes = await checker.call("get_notifications", 200, headers=fan)
    assert notes["notifications"][0]["kind"] == "schedule_reminder"
    assert notes["notifications"][0]["schedule_id"] == made["id"]
    cancelled = await checker.call("cancel_schedule", 200, name="sam", ids=path, headers=auth)
    assert cancelled["status"] == "cancelled"

    assert await checker.call("my_analytics", 200, headers=auth) == {"broadcasts": []}
    await checker.call("my_analytics", 401)
    await checker.call("my_analytics", 422, params={"limit": "0"}, headers=auth)
    ref = await db.fetchone("SELECT id FROM channels WHERE user_id = (SELECT id FROM users "
                            "WHERE username = 'sam')")  # fmt: skip
    assert ref is not None
    now = time.time()
    broadcast = await start_broadcast(db, ref[0], {}, now=now - 60)
    await record_viewers(db, broadcast, 3, [(now - 50, 1), (now - 45, 3), (now - 40, 2)])
    fay = await db.fetchone("SELECT id FROM users WHERE username = 'fay'")
    assert fay is not None
    await db.execute("DELETE FROM follows")
    await follow(db, fay[0], ref[0], now=now - 30)
    answer = await checker.call("my_analytics", 200, headers=auth)
    (row,) = answer["broadcasts"]
    assert (row["peak_viewers"], row["average_viewers"], row["new_followers"]) == (3, 2.0, 1)
    assert row["live"] is True
    which = {"broadcast_id": str(broadcast)}
    one = await checker.call("broadcast_analytics", 200, ids=which, headers=auth)
    assert [p["viewers"] for p in one["viewers"]] == [1, 3, 2]
    await checker.call("broadcast_analytics", 404, ids=which, headers=fan)
    assert checker.seen >= SCHEDULE


async def test_discovery_answers_match_the_document(
    checker: Checker, register: Register, db: Database
) -> None:
    """Categories (browse, admin changes, covers), channels by tag, search."""
    admin = await register("boss")
    await db.execute("UPDATE users SET is_admin = 1 WHERE username = 'boss'")
    streamer = (await register("vera"))["auth"]
    listed = await checker.call("list_categories", 200)
    assert len(listed["categories"]) >= 15
    await checker.call("create_category", 403, json={"name": "Chess"}, headers=streamer)
    await checker.call("create_category", 401, json={"name": "Chess"})
    made = await checker.call("create_category", 201, json={"name": "Chess"}, headers=admin["auth"])
    assert made["slug"] == "chess"
    await checker.call("create_category", 409, json={"name": "CHESS"}, headers=admin["auth"])
    await checker.call("create_category", 422, json={"name": ""}, headers=admin["auth"])
    body = {"category": "chess", "tags": ["Openings", "blitz"], "title": "Blitz night"}
    await checker.call("patch_channel", 200, name="vera", json=body, headers=streamer)
    page = await checker.call("get_category", 200, slug="chess")
    assert [c["name"] for c in page["channels"]] == ["vera"] and page["next_offset"] is None
    await checker.call("get_category", 404, slug="nope")
    await checker.call("get_category", 422, slug="chess", params={"limit": "0"})
    renamed = await checker.call(
        "patch_category", 200, slug="chess", json={"name": "Chess & Go"}, headers=admin["auth"]
    )
    assert renamed["slug"] == "chess" and renamed["name"] == "Chess & Go"
    cover = await checker.call(
        "put_category_image",
        200,
        slug="chess",
        content=tiny_png(),
        headers={**admin["auth"], "Content-Type": "image/png"},
    )
    assert cover["custom_image"] is True
    await checker.call(
        "put_category_image",
        415,
        slug="chess",
        content=b"not a picture",
        headers={**admin["auth"], "Content-Type": "image/png"},
    )
    back = await checker.call("delete_category_image", 200, slug="chess", headers=admin["auth"])
    assert back["custom_image"] is False
    tagged = await checker.call("tag_channels", 200, name="OPENINGS")
    assert tagged["tag"] == "OPENINGS" and [c["name"] for c in tagged["channels"]] == ["vera"]
    await checker.call("tag_channels", 422, name="\u2620")
    found = await checker.call("search", 200, params={"q": "ches"})
    assert [c["slug"] for c in found["categories"]] == ["chess"]
    assert [c["name"] for c in found["channels"]] == ["vera"]
    await checker.call("search", 422)
    await checker.call("delete_category", 204, slug="chess", headers=admin["auth"])
    assert checker.seen >= DISCOVERY
