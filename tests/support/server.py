"""A real `kitch serve` process on free loopback ports, and small HTTP helpers around it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Account:
    username: str
    password: str
    access_token: str
    stream_key: str


@dataclass
class KitchServer:
    data_dir: Path
    log_path: Path
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    http_port: int = field(default_factory=free_port)
    rtmp_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def rtmp_url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live/{key}"

    def start(self, timeout: float = 20.0) -> KitchServer:
        env = dict(os.environ)
        env.update({"KITCH_BCRYPT_COST": "4", "KITCH_SECRET": "x" * 40, "PYTHONUNBUFFERED": "1"})
        env.update(self.env)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kitch",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--http",
                f"127.0.0.1:{self.http_port}",
                "--rtmp",
                f"127.0.0.1:{self.rtmp_port}",
                *self.extra_args,
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.close()
                raise RuntimeError(f"kitch serve exited early:\n{self.log()}")
            try:
                self.get("/api/v1/channels")
                with socket.create_connection(("127.0.0.1", self.rtmp_port), timeout=1):
                    return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"kitch serve did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> float:
        """Signal the server and wait for it; returns how long it took to exit."""
        assert self.proc is not None
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        self._log.close()
        return time.monotonic() - t0

    # -- HTTP ------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        ctype = raw[:1]
        return status, json.loads(raw) if ctype in (b"{", b"[") else raw

    def get(self, path: str, token: str | None = None) -> Any:
        status, body = self.request("GET", path, token=token)
        if status != 200:
            raise urllib.error.URLError(f"GET {path}: {status} {body!r}")
        return body

    def create_account(self, username: str, password: str = "correct horse 1") -> Account:
        status, body = self.request(
            "POST",
            "/api/v1/auth/register",
            {"username": username, "email": f"{username}@example.test", "password": password},
        )
        assert status == 201, (status, body)
        status, tokens = self.request(
            "POST", "/api/v1/auth/login", {"username": username, "password": password}
        )
        assert status == 200, (status, tokens)
        token = tokens["access_token"]
        key = self.get("/api/v1/me/stream-key", token=token)
        return Account(username, password, token, key["stream_key"])

    def channel(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/api/v1/channels/{name}")
        return result

    def wait_for(self, predicate: Any, timeout: float, what: str, interval: float = 0.1) -> float:
        """Poll ``predicate`` until true; return the seconds it took (fails after ``timeout``)."""
        t0 = time.monotonic()
        while True:
            if predicate():
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}\n{self.log()}"
                )
            time.sleep(interval)
