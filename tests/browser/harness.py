"""Helpers for the browser tests: free ports, server subprocesses, running web/e2e scripts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from tests.support.media import Fixture

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
ARTIFACTS = Path(os.environ.get("KITCH_TEST_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
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
def server(args: list[str], url: str, env: dict[str, str] | None = None) -> Iterator[Path]:
    """Run a server subprocess until the block ends; yields the path of its log."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"server-{os.getpid()}-{time.monotonic_ns()}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            wait_http(url, proc, log)
            yield log
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def kitch_serve(data_dir: Path, http_port: int, rtmp_port: int, *extra: str) -> list[str]:
    """The command line of ``kitch serve`` on loopback ports (``extra``: more flags)."""
    return [
        sys.executable, "-m", "kitch", "serve",
        "--data-dir", str(data_dir),
        "--http", f"127.0.0.1:{http_port}",
        "--rtmp", f"127.0.0.1:{rtmp_port}",
        *extra,
    ]  # fmt: skip


@dataclass
class Kitch:
    """A running ``kitch serve``: its HTTP base URL and RTMP port."""

    base: str
    rtmp_port: int

    def rtmp_url(self, stream_key: str) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live/{stream_key}"


@contextmanager
def kitch_server(data_dir: Path, *extra: str) -> Iterator[Kitch]:
    """``kitch serve`` on free loopback ports (``extra``: more flags, bcrypt made cheap) until
    the block ends."""
    http_port, rtmp_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    args = kitch_serve(data_dir, http_port, rtmp_port, *extra)
    with server(args, base + "/api/v1/channels", {"KITCH_BCRYPT_COST": "4"}):
        yield Kitch(base, rtmp_port)


def stream_key(base: str, username: str, password: str) -> str:
    """The stream key of an existing account, read over the API as that account."""
    login = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"username": username, "password": password, "token_delivery": "body"},
    )
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    answer = httpx.get(f"{base}/api/v1/me/stream-key", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    key: str = answer.json()["stream_key"]
    return key


@contextmanager
def publishing(url: str, fixture: Fixture, loops: int = 40, timeout: float = 60) -> Iterator[None]:
    """Publish ``fixture`` to the RTMP ``url`` with PyAV in a thread while the block runs; fails
    when the publisher does not connect within ``timeout`` seconds or FFmpeg refuses."""
    from tests.support.media import publish_pyav

    stop, started = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            publish_pyav(url, fixture, loops=loops, stop=stop, on_start=started)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
            started.set()

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    try:
        assert started.wait(timeout), f"the RTMP publisher did not connect within {timeout} s"
        assert not errors, f"publishing failed: {errors!r}"
        yield
    finally:
        stop.set()
        publisher.join(timeout=15)


def uvicorn(factory: str, port: int) -> list[str]:
    return [
        sys.executable,
        *("-m", "uvicorn", "--factory", f"tests.browser.apps:{factory}"),
        *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
    ]


def node_env(base_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "BASE_URL": base_url,
        "ARTIFACTS": str(ARTIFACTS),
        "CHROMIUM": CHROMIUM,
        **extra,
    }


def parse_result(stdout: str) -> dict[str, Any]:
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            parsed: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return parsed
    raise AssertionError(f"the browser script printed no RESULT line:\n{stdout[-3000:]}")


@contextmanager
def node_script(script: str, base_url: str, **extra: str) -> Iterator[subprocess.Popen[str]]:
    """Run web/e2e/``script`` with its stdin and stdout as text pipes, for a script that talks
    with the test (see :func:`read_until` and :func:`say`); killed if still running when the
    block ends."""
    with subprocess.Popen(
        ["node", f"e2e/{script}"],
        cwd=WEB,
        env=node_env(base_url, **extra),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as node:
        try:
            yield node
        finally:
            if node.poll() is None:
                node.kill()


def read_until(node: subprocess.Popen[str], lines: list[str], want: str) -> bool:
    """Read the script's output into ``lines`` until the line ``want`` (True) or its result or
    end (False)."""
    assert node.stdout is not None
    while True:
        line = node.stdout.readline()
        if not line:
            return False
        lines.append(line)
        if line.startswith(want):
            return True
        if line.startswith("RESULT "):
            return False


def say(node: subprocess.Popen[str], word: str) -> None:
    """Send the script one line."""
    assert node.stdin is not None
    node.stdin.write(word + "\n")
    node.stdin.flush()


def run_script(script: str, base_url: str, **extra: str) -> dict[str, Any]:
    proc = subprocess.run(
        ["node", f"e2e/{script}"],
        cwd=WEB,
        env=node_env(base_url, **extra),
        capture_output=True,
        text=True,
        timeout=180,
    )
    result = parse_result(proc.stdout)
    assert proc.returncode == 0, f"{result['errors']}\n{proc.stderr[-3000:]}"
    return result


def watch_qualities(
    base_url: str, channel: str, names: list[str] | None = None, seconds: float = 4
) -> dict[str, Any]:
    """Open ``channel`` in Chromium, pick each quality of ``names`` in the player's menu (by
    name: ``"720p"``, ``"source"``, ``"auto"``; default every entry, then auto) and watch
    ``seconds`` of each. Returns the checks of web/e2e/quality.mjs: ``options`` (the menu's
    labels), ``initial`` and ``picks``, each pick with ``label``, ``switchMs``, ``progress``
    (seconds of currentTime gained while watched) and ``before``/``after`` playback states
    (``currentTime``, ``paused``, ``videoHeight``, ``stalls``, hls.js ``level``/``levelLabel``).
    """
    extra = {"CHANNEL": channel, "SECONDS": str(seconds)}
    if names is not None:
        extra["QUALITIES"] = ",".join(names)
    checks: dict[str, Any] = run_script("quality.mjs", base_url, **extra)["checks"]
    return checks
