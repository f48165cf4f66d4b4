"""A recording in the browser: publish a real stream, then open the channel page, follow its
past broadcast to the recording page, play it with hls.js and seek."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.browser.harness import kitch_server, run_script
from tests.support.media import Fixture, publish_pyav

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_watch_a_recording_and_seek(
    node_modules: Path, av_fixture: Fixture, tmp_path: Path
) -> None:
    with kitch_server(tmp_path / "data", "--ladder", "off") as kitch:
        base = kitch.base
        new = {"username": "vodcaster", "email": "v@example.com", "password": "a fine pass"}
        token = httpx.post(f"{base}/api/v1/auth/register", json=new).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        key = httpx.get(f"{base}/api/v1/me/stream-key", headers=auth).json()["stream_key"]
        publish_pyav(kitch.rtmp_url(key), av_fixture, loops=3)
        deadline = time.monotonic() + 15
        while True:
            found = httpx.get(f"{base}/api/v1/channels/vodcaster/recordings").json()["recordings"]
            if found and found[0]["state"] == "ended":
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.2)
        rec = found[0]
        renamed = httpx.patch(
            f"{base}/api/v1/recordings/{rec['id']}", json={"title": "Speedrun"}, headers=auth
        )
        assert renamed.status_code == 200
        checks = run_script("recording.mjs", base, CHANNEL="vodcaster")["checks"]
    print("recording checks:", checks)
    published = 3 * av_fixture.seconds
    assert checks["listed"][0].startswith("Speedrun") and checks["title"] == "Speedrun"
    assert checks["url"] == f"/videos/{rec['id']}"
    assert checks["duration"] == pytest.approx(published, abs=0.3)
    assert checks["height"] == 240 and checks["played"] > 1
    # the seek lands where asked and playback goes on from there
    assert abs(checks["landed"] - checks["seekTo"]) < 0.5, checks
    assert checks["afterSeek"] > checks["landed"] + 1
