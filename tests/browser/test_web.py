"""Browser tests: the built web app in the apt Chromium, driven by playwright-core (web/e2e/*.mjs).

Nothing here skips: a missing piece (Node, the Kitch server) is a failure that says what is
missing. Screenshots go to test-artifacts/ (KITCH_TEST_ARTIFACTS overrides).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.harness import ARTIFACTS, free_port, run_script, server, uvicorn
from tests.support.media import Fixture

pytestmark = pytest.mark.browser


def test_pages_render_without_a_stream(node_modules: Path) -> None:
    """Static serving and the SPA fallback in a real browser; sign-in redirect; phone width."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with server(uvicorn("web_only", port), base + "/"):
        result = run_script("smoke.mjs", base)
    checks = result["checks"]
    assert checks["browse"] and checks["login"] and checks["register"]
    assert checks["firstTab"] == "Skip to content"
    assert checks["dashboardRedirect"] == "/login?next=%2Fdashboard"
    assert checks["phoneOverflow"] is False
    assert not [e for e in result["errors"] if e.startswith("pageerror")]
    for name in ("browse", "login", "register", "register-phone"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 1000


def test_account_flow_against_the_api(node_modules: Path, tmp_path: Path) -> None:
    """Sign up, dashboard key (hidden, shown, rotated), stream info, settings, silent refresh of a
    12 s access token, reloads, sign out/in, password change and deletion, on the real API."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "KITCH_DATA_DIR": str(tmp_path / "data"),
        "KITCH_BCRYPT_COST": "4",
        "KITCH_ACCESS_TOKEN_TTL": "12",
    }
    with server(uvicorn("api_and_web", port), base + "/", env):
        result = run_script(
            "account.mjs",
            base,
            USERNAME="acct_e2e",
            PASSWORD="correct horse battery",
            TOKEN_TTL_S="12",
        )
    c = result["checks"]
    assert c["offline"] == "false"
    assert c["keyHiddenAtFirst"] and c["keyRotated"] and c["keyHiddenAgain"]
    assert c["serverUrl"].startswith("rtmp://127.0.0.1:") and c["serverUrl"].endswith("/live")
    assert c["channelTitle"] == "E2E title"
    assert "one" in c["channelTags"] and "two" in c["channelTags"]
    assert c["headerName"] == "E2E Person"
    assert c["avatarStatus"] == 200
    assert c["silentRefresh"] and c["stillSignedIn"] == "E2E Person"
    assert c["afterReload"] == "E2E Person"
    assert c["signedOutSession"] is None and c["signedOutAfterReload"]
    assert c["wrongPassword"]
    assert c["signedInAgain"] == "E2E Person"
    assert c["signedInAfterPasswordChange"] == "E2E Person"
    assert c["deletedChannelStatus"] == 404
    assert not [e for e in result["errors"] if e.startswith("pageerror")]
    for name in ("dashboard", "settings", "channel-offline"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 1000


@pytest.fixture
def ffmpeg_hls(tmp_path: Path, av_fixture: Fixture) -> Iterator[Path]:
    """A live HLS stream (1 s segments, PROGRAM-DATE-TIME) written by the ffmpeg CLI from apt."""
    out = tmp_path / "hls"
    out.mkdir()
    proc = subprocess.Popen(
        [
            *("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re"),
            *("-stream_loop", "-1", "-i", str(av_fixture.path), "-c", "copy"),
            *("-f", "hls", "-hls_time", "1", "-hls_list_size", "6"),
            *("-hls_flags", "delete_segments+program_date_time+independent_segments"),
            *("-master_pl_name", "master.m3u8", str(out / "index.m3u8")),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not (out / "master.m3u8").exists() or len(list(out.glob("*.ts"))) < 3:
            assert proc.poll() is None, "ffmpeg exited"
            assert time.monotonic() < deadline, "ffmpeg wrote no HLS"
            time.sleep(0.2)
        yield out
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_player_plays_live_hls_in_chromium(node_modules: Path, ffmpeg_hls: Path) -> None:
    """The channel page's player (hls.js, muted autoplay under Chromium's default policy) plays
    a live stream and computes behind-live from PROGRAM-DATE-TIME. The stream comes from ffmpeg's
    HLS muxer (1 s segments, not low-latency), so the bound here is loose; the end-to-end test
    below holds Kitch's own LL-HLS to < 3 s."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"KITCH_TEST_HLS_DIR": str(ffmpeg_hls), "KITCH_TEST_CHANNEL": "ffmpegcam"}
    with server(uvicorn("hls_player", port), base + "/", env):
        result = run_script("smoke.mjs", base, CHANNEL="ffmpegcam")
    checks = result["checks"]
    assert checks["currentTime"] > 2
    assert checks["muted"] is True
    assert 0 < checks["behindLive"] < 15, checks
    assert checks["behindLiveText"].endswith("s behind")
    assert checks["phoneCurrentTime"] > 1
    assert checks["phoneChannelOverflow"] is False
    assert (ARTIFACTS / "channel-phone.png").stat().st_size > 1000
