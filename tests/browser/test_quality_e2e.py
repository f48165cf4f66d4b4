"""The player's quality menu on a real stream: publish with PyAV, open the channel in Chromium,
pick renditions by name and see the video keep playing on the level asked for.

With the passthrough alone the menu holds Auto and the source; each rung of the ladder adds an
entry named after it, and the same helper (:func:`tests.browser.harness.watch_qualities`)
switches between them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.harness import kitch_server, publishing, watch_qualities
from tests.support.media import Fixture, make_fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _watch(
    fixture: Fixture, tmp_path: Path, channel: str, names: list[str], *extra: str
) -> dict[str, Any]:
    """``kitch serve`` (with ``extra`` flags), ``fixture`` published with PyAV, and the
    player's quality menu driven through ``names`` (see :func:`watch_qualities`)."""
    with kitch_server(tmp_path / "data", *extra) as kitch:
        base = kitch.base
        new = {"username": channel, "email": f"{channel}@example.com", "password": "a fine pass"}
        token = httpx.post(f"{base}/api/v1/auth/register", json=new).json()["access_token"]
        key = httpx.get(
            f"{base}/api/v1/me/stream-key", headers={"Authorization": f"Bearer {token}"}
        ).json()["stream_key"]
        with publishing(kitch.rtmp_url(key), fixture, timeout=30):
            checks = watch_qualities(base, channel, names, seconds=3)
    print("quality checks:", checks)
    return checks


def test_pick_qualities_by_name(node_modules: Path, av_fixture: Fixture, tmp_path: Path) -> None:
    names = ["auto", "source", "source", "auto", "source"]
    checks = _watch(av_fixture, tmp_path, "tuner", names)
    assert checks["options"][0].startswith("Auto") and checks["options"][1:] == ["Source (240p)"]
    picks = checks["picks"]
    source = "Source (240p)"
    assert picks[0]["label"].startswith("Auto")  # already on auto: "Auto (Source (240p))"
    assert [p["label"] for p in picks[1:]] == [source, source, "Auto", source]
    # the first pick covers the start-up (a stall right after the stream starts, on a loaded
    # box, is the live edge's business, not the menu's); every switch after it is judged
    for pick in picks[1:]:
        assert pick["after"]["levelLabel"] == source, pick
        assert pick["after"]["level"] == 0 and pick["after"]["videoHeight"] == 240, pick
        # the video keeps playing through every choice: about 3 s of video in 3 s, no freeze
        assert pick["progress"] > 2, pick
        assert not pick["after"]["paused"], pick
        assert pick["maxFreezeMs"] < 1000, pick


def test_hevc_source_plays_as_h264_rungs_and_switches(
    node_modules: Path, media_dir: Path, tmp_path: Path
) -> None:
    """Chromium without a hardware decoder cannot play HEVC: the ladder's H.264 rungs play,
    and switching between them keeps the video going."""
    fixture = make_fixture(media_dir, seconds=3, width=640, height=360, vcodec="libx265")
    ladder = ("--ladder", "240p:240:400,160p:160:200")
    # the first pick (auto) covers the start-up; then every switch must keep the video going
    names = ["auto", "240p", "160p", "240p"]
    checks = _watch(fixture, tmp_path, "hevcview", names, *ladder)
    assert checks["options"][0].startswith("Auto")
    assert {"240p", "160p"} <= set(checks["options"]), checks["options"]
    assert checks["picks"][0]["after"]["videoHeight"] in (160, 240)  # H.264 plays; HEVC cannot
    for pick, height in zip(checks["picks"][1:], (240, 160, 240), strict=True):
        assert pick["after"]["videoHeight"] == height, pick
        assert pick["progress"] > 2 and not pick["after"]["paused"], pick
        assert pick["maxFreezeMs"] < 1000, pick
