"""The player's quality menu on a real stream: publish with PyAV, open the channel in Chromium,
pick renditions by name and see the video keep playing on the level asked for.

With the passthrough alone the menu holds Auto and the source; each rung of the ladder adds an
entry named after it, and the same helper (:func:`tests.browser.harness.watch_qualities`)
switches between them.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.browser.harness import free_port, server, watch_qualities
from tests.support.media import Fixture, publish_pyav

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_pick_qualities_by_name(node_modules: Path, av_fixture: Fixture, tmp_path: Path) -> None:
    http_port, rtmp_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    data = tmp_path / "data"
    args = [
        sys.executable, "-m", "kitch", "serve",
        "--data-dir", str(data),
        "--http", f"127.0.0.1:{http_port}",
        "--rtmp", f"127.0.0.1:{rtmp_port}",
    ]  # fmt: skip
    stop, started = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def publish(url: str) -> None:
        try:
            publish_pyav(url, av_fixture, loops=40, stop=stop, on_start=started)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
            started.set()

    with server(args, base + "/api/v1/channels", {"KITCH_BCRYPT_COST": "4"}):
        new = {"username": "tuner", "email": "tuner@example.com", "password": "a fine password"}
        token = httpx.post(f"{base}/api/v1/auth/register", json=new).json()["access_token"]
        key = httpx.get(
            f"{base}/api/v1/me/stream-key", headers={"Authorization": f"Bearer {token}"}
        ).json()["stream_key"]
        publisher = threading.Thread(
            target=publish, args=(f"rtmp://127.0.0.1:{rtmp_port}/live/{key}",), daemon=True
        )
        publisher.start()
        try:
            assert started.wait(30) and not errors, f"publishing failed: {errors!r}"
            names = ["source", "source", "auto", "source"]
            checks = watch_qualities(base, "tuner", names, seconds=3)
        finally:
            stop.set()
            publisher.join(timeout=15)
    print("quality checks:", checks)
    assert checks["options"][0].startswith("Auto") and checks["options"][1:] == ["Source (240p)"]
    picks = checks["picks"]
    source = "Source (240p)"
    assert [p["label"] for p in picks] == [source, source, "Auto", source]
    for pick in picks:
        assert pick["after"]["levelLabel"] == source, pick
        assert pick["after"]["level"] == 0 and pick["after"]["videoHeight"] == 240, pick
        # the video keeps playing through every choice: about 3 s of video in 3 s, no freeze
        assert pick["progress"] > 2, pick
        assert not pick["after"]["paused"], pick
        assert pick["maxFreezeMs"] < 1000, pick
