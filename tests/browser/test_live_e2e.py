"""The whole product in a browser: `python3 -m kitch serve`, sign up in the UI, read the key on the
dashboard, publish a real RTMP stream with PyAV, watch it on the channel page.

This needs every part (API, RTMP ingest, HLS output, server wiring). It does not skip: while a
part is missing it fails, saying which (the server's log is in test-artifacts/).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.browser.harness import ARTIFACTS, WEB, free_port, node_env, parse_result, server
from tests.support.media import Fixture, publish_pyav

pytestmark = [pytest.mark.browser, pytest.mark.slow]

USERNAME = "e2e_streamer"
PASSWORD = "correct horse battery staple"


def _publish(
    url: str,
    fixture: Fixture,
    stop: threading.Event,
    started: threading.Event,
    errors: list[BaseException],
) -> None:
    try:
        publish_pyav(url, fixture, loops=40, stop=stop, on_start=started)
    except BaseException as exc:  # reported by the test, not lost in the thread
        errors.append(exc)
        started.set()


def test_publish_and_watch(node_modules: Path, av_fixture: Fixture, tmp_path: Path) -> None:
    http_port, rtmp_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    args = [
        sys.executable, "-m", "kitch", "serve",
        "--data-dir", str(tmp_path / "data"),
        "--http", f"127.0.0.1:{http_port}",
        "--rtmp", f"127.0.0.1:{rtmp_port}",
    ]  # fmt: skip
    stop, started = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    publisher: threading.Thread | None = None
    with (
        server(args, base + "/api/v1/channels", {"KITCH_BCRYPT_COST": "4"}),
        subprocess.Popen(
            ["node", "e2e/live.mjs"],
            cwd=WEB,
            env=node_env(base, USERNAME=USERNAME, PASSWORD=PASSWORD),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as node,
    ):
        assert node.stdin is not None and node.stdout is not None
        try:
            key = None
            lines: list[str] = []
            while key is None:
                line = node.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if line.startswith("KEY "):
                    key = line[4:].strip()
            assert key, f"the dashboard showed no stream key: {''.join(lines)[-2000:]}"
            url = f"rtmp://127.0.0.1:{rtmp_port}/live/{key}"
            publisher = threading.Thread(
                target=_publish, args=(url, av_fixture, stop, started, errors), daemon=True
            )
            publisher.start()
            assert started.wait(30), "the RTMP publisher did not connect"
            assert not errors, f"publishing failed: {errors!r}"
            node.stdin.write("GO\n")
            node.stdin.flush()
            out, err = node.communicate(timeout=240)
        finally:
            if node.poll() is None:
                node.kill()
            stop.set()
            if publisher is not None:
                publisher.join(timeout=15)
    result = parse_result("".join(lines) + out)
    assert node.returncode == 0, f"{result['errors']}\n{err[-3000:]}"
    c = result["checks"]
    print("live e2e checks:", c)  # behind-live samples etc. in the CI log
    assert c["registered"] and c["keyHiddenAtFirst"]
    assert c["serverUrl"] == f"rtmp://127.0.0.1:{rtmp_port}/live"
    assert c["dashboardLive"]
    assert "320\u00d7240" in c["ingestStats"], c["ingestStats"]  # 320x240 with the sign
    # the fixture's 1 s GOP is measured and shown, and it is short enough for no warning
    assert re.search(r"Keyframe interval[01]\.\d s", c["ingestStats"]), c["ingestStats"]
    assert c["keyframeWarning"] is False
    assert c["currentTime"] > 2
    assert c["behindLive"] is not None and 0 < c["behindLive"] < 3, c["behindLiveSamples"]
    assert c["browseListsLive"]
    assert c["phoneCurrentTime"] > 1 and c["phoneOverflow"] is False
    # End broadcast holds the key off: the dashboard offers Enable ingest only, the server drops
    # the publisher, and the watch page shows an offline state rather than an error
    assert c["endOffersOnlyEnable"] and c["dashboardOfflineAfterEnd"]
    assert c["watchAfterEnd"] in ("player-offline", "channel-offline") and not c["watchErrorShown"]
    for name in ("dashboard-live", "channel", "channel-phone", "browse-live", "channel-ended"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 1000
