"""The whole product in a browser: `python3 -m kitch serve`, sign up in the UI, read the key on the
dashboard, publish a real RTMP stream with PyAV, watch it on the channel page.

This needs every part (API, RTMP ingest, HLS output, server wiring). It does not skip: while a
part is missing it fails, saying which (the server's log is in test-artifacts/).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.harness import (
    ARTIFACTS,
    free_port,
    kitch_server,
    node_script,
    parse_result,
    publishing,
    read_until,
    say,
)
from tests.support.media import Fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

USERNAME = "e2e_streamer"
PASSWORD = "correct horse battery staple"


@pytest.mark.parametrize("hls_workers", [0, 1], ids=["main", "hls-workers"])
def test_publish_and_watch(
    node_modules: Path, av_fixture: Fixture, tmp_path: Path, hls_workers: int
) -> None:
    """With ``hls_workers`` the player plays from the HLS workers' port (another origin)."""
    lines: list[str] = []
    extra = ["--hls-workers", "1", "--hls-port", str(free_port())] if hls_workers else []
    with (
        kitch_server(tmp_path / "data", *extra) as kitch,
        node_script("live.mjs", kitch.base, USERNAME=USERNAME, PASSWORD=PASSWORD) as node,
    ):
        key = lines[-1][4:].strip() if read_until(node, lines, "KEY ") else None
        assert key, f"the dashboard showed no stream key: {''.join(lines)[-2000:]}"
        with publishing(kitch.rtmp_url(key), av_fixture, timeout=30):
            say(node, "GO")
            out, err = node.communicate(timeout=240)
    result = parse_result("".join(lines) + out)
    assert node.returncode == 0, f"{result['errors']}\n{err[-3000:]}"
    c = result["checks"]
    print("live e2e checks:", c)  # behind-live samples etc. in the CI log
    assert c["registered"] and c["keyHiddenAtFirst"]
    assert c["serverUrl"] == f"rtmp://127.0.0.1:{kitch.rtmp_port}/live"
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
