"""Browser tests: the built web app in the apt Chromium, driven by playwright-core (web/e2e/*.mjs).

Nothing here skips: a missing piece (Node, the Kitch server) is a failure that says what is
missing. Screenshots go to test-artifacts/ (KITCH_TEST_ARTIFACTS overrides).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.media import Fixture, publish_pyav

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
ARTIFACTS = Path(os.environ.get("KITCH_TEST_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """web/node_modules, installed from the lockfile when missing (CI starts from a clean tree)."""
    assert shutil.which("node"), "node is not installed (Node 20+ is needed for browser tests)"
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)"
    modules = WEB / "node_modules"
    if not (modules / "playwright-core").is_dir():
        env = {**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=WEB,
            env=env,
            check=True,
            timeout=300,
        )
    return modules


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = log.read_text(errors="replace")
            raise AssertionError(f"server exited with {proc.returncode}:\n{out[-3000:]}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"server at {url} did not answer within {timeout} s")


@contextmanager
def _server(args: list[str], url: str, env: dict[str, str] | None = None) -> Iterator[Path]:
    """Run a server subprocess until the block ends; yields the path of its log."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"server-{os.getpid()}-{time.monotonic_ns()}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            _wait_http(url, proc, log)
            yield log
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _uvicorn(factory: str, port: int) -> list[str]:
    return [
        sys.executable,
        *("-m", "uvicorn", "--factory", f"tests.browser.apps:{factory}"),
        *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
    ]


def _node_env(base_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "BASE_URL": base_url,
        "ARTIFACTS": str(ARTIFACTS),
        "CHROMIUM": CHROMIUM,
        **extra,
    }


def _parse_result(stdout: str) -> dict[str, Any]:
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            parsed: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return parsed
    raise AssertionError(f"the browser script printed no RESULT line:\n{stdout[-3000:]}")


def _run_smoke(base_url: str, **extra: str) -> dict[str, Any]:
    proc = subprocess.run(
        ["node", "e2e/smoke.mjs"],
        cwd=WEB,
        env=_node_env(base_url, **extra),
        capture_output=True,
        text=True,
        timeout=180,
    )
    result = _parse_result(proc.stdout)
    assert proc.returncode == 0, f"{result['errors']}\n{proc.stderr[-3000:]}"
    return result


def test_pages_render_without_a_stream(node_modules: Path) -> None:
    """Static serving and the SPA fallback in a real browser; sign-in redirect; phone width."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with _server(_uvicorn("web_only", port), base + "/"):
        result = _run_smoke(base)
    checks = result["checks"]
    assert checks["browse"] and checks["login"] and checks["register"]
    assert checks["firstTab"] == "Skip to content"
    assert checks["dashboardRedirect"] == "/login?next=%2Fdashboard"
    assert checks["phoneOverflow"] is False
    assert not [e for e in result["errors"] if e.startswith("pageerror")]
    for name in ("browse", "login", "register", "register-phone"):
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
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"KITCH_TEST_HLS_DIR": str(ffmpeg_hls), "KITCH_TEST_CHANNEL": "ffmpegcam"}
    with _server(_uvicorn("hls_player", port), base + "/", env):
        result = _run_smoke(base, CHANNEL="ffmpegcam")
    checks = result["checks"]
    assert checks["currentTime"] > 2
    assert checks["muted"] is True
    assert 0 < checks["behindLive"] < 15, checks
    assert checks["behindLiveText"].endswith("s behind")
    assert checks["phoneCurrentTime"] > 1
    assert checks["phoneChannelOverflow"] is False
    assert (ARTIFACTS / "channel-phone.png").stat().st_size > 1000
