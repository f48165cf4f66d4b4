"""Discovery in Chromium against a real `kitch serve` with one channel live (a real RTMP publish
with PyAV) and two viewers counted from real playlist reads: the home page's live card,
type-ahead in the header search from the keyboard, the results page, the category directory, a
category page listing its live channel, a tag's channels, and a phone-width layout."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.harness import (
    ARTIFACTS,
    kitch_server,
    publishing,
    run_script,
)
from tests.support.media import Fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIVE = "e2e_speedy"
OFFLINE = "e2e_painter"
PASSWORD = "correct horse battery staple"


def _account(base: str, name: str, channel: dict[str, Any]) -> str:
    """Register ``name``, set its channel, return its stream key."""
    answer = httpx.post(
        f"{base}/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
    )
    assert answer.status_code == 201, answer.text
    auth = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    patched = httpx.patch(f"{base}/api/v1/channels/{name}", json=channel, headers=auth)
    assert patched.status_code == 200, patched.text
    key = httpx.get(f"{base}/api/v1/me/stream-key", headers=auth)
    assert key.status_code == 200, key.text
    stream_key: str = key.json()["stream_key"]
    return stream_key


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.2)


def test_typeahead_search_and_category_page(
    node_modules: Path, av_fixture: Fixture, tmp_path: Path
) -> None:
    with kitch_server(tmp_path / "data", "--ladder", "off", "--viewer-window", "600") as kitch:
        base = kitch.base
        key = _account(
            base,
            LIVE,
            {
                "title": "Speedrun practice, any% glitchless",
                "category": "speedrunning",
                "tags": ["Glitchless", "Practice"],
            },
        )
        _account(base, OFFLINE, {"title": "Watercolour", "category": "Art"})
        with publishing(kitch.rtmp_url(key), av_fixture):
            playlist = f"{base}/hls/{LIVE}/source/index.m3u8"
            _wait(lambda: "#EXTINF" in httpx.get(playlist).text, 30, "media")
            for agent in ("viewer-one", "viewer-two"):
                httpx.get(playlist, headers={"User-Agent": agent})
            result = run_script("discovery.mjs", base, LIVE=LIVE, OFFLINE=OFFLINE)
    c = result["checks"]
    print("discovery e2e checks:", c)
    # a signed-out page's first cookie refresh answers 401: the only console error allowed
    assert [e for e in result["errors"] if "status of 401" not in e] == [], result["errors"]

    # home: the live card with its viewers (the two players and the readiness check above),
    # the live thumbnail (decoded by the browser as a 16:9 picture), the category link and tags
    assert c["homeViewerText"] == "3 viewers", c
    thumb = c["homeThumbnail"]
    assert thumb["src"].startswith("/thumbnails/e2e_speedy/"), thumb
    assert abs(thumb["aspect"] - 16 / 9) < 0.02, thumb
    assert c["homeCategoryHref"] == "/directory/speedrunning"
    assert "Glitchless" in c["homeTags"] and "Practice" in c["homeTags"]
    assert c["homeOffline"]

    # type-ahead: suggestions within a second or two, the category then the channel
    assert c["suggestMs"] < 5000, c["suggestMs"]
    typed = c["afterTyping"]
    assert typed["expanded"] == "true" and typed["focused"] and typed["active"] is None
    assert "Speedrunning" in typed["options"][0] and LIVE in typed["options"][1].lower()
    assert typed["options"][-1] == "Search for “spee”"
    assert "Speedrunning" in c["firstDown"]["active"]
    assert LIVE in c["onChannel"]["active"].lower() and c["onChannel"]["focused"]
    assert c["enterWentTo"] == f"/{LIVE}"
    assert c["afterEnter"]["expanded"] == "false"
    # Enter with nothing highlighted opens the results page
    assert c["resultsUrl"] == "/search?q=speedrun%20practice"
    assert c["resultCards"] == [LIVE]
    assert c["escapeOnce"]["expanded"] == "false" and c["escapeTwiceValue"] == ""

    # the directory (the category with a live channel first) and the category page
    assert c["directoryTiles"] >= 15 and c["firstTile"] == "speedrunning" and c["tileArt"]
    assert c["categoryCards"] == [LIVE]
    # the browser counts too once it opened the channel page (its player read the playlist)
    assert c["apiViewers"] in (3, 4), c["apiViewers"]
    assert c["categoryStats"] == f"1 live channel · {c['apiViewers']} viewers"
    assert c["emptyCategory"] and c["tagCards"] == 1
    assert c["phoneHomeOverflow"] is False and c["phoneCategoryOverflow"] is False
    for name in ("discovery-home", "discovery-typeahead", "discovery-category"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 1000
