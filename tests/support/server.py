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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
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
    refresh_token: str
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
        env.update(
            {
                "KITCH_BCRYPT_COST": "4",
                "KITCH_SECRET": "x" * 40,
                "KITCH_REGISTER_ATTEMPTS_PER_ADDRESS": "10000",  # the tests register many
                "PYTHONUNBUFFERED": "1",
            }
        )
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

    def exchange(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, Message]:
        """One request: ``(status, JSON or raw body, response headers)``."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                status, answer_headers = resp.status, resp.headers
        except urllib.error.HTTPError as err:
            raw, status, answer_headers = err.read(), err.code, err.headers
        ctype = raw[:1]
        return status, json.loads(raw) if ctype in (b"{", b"[") else raw, answer_headers

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        status, answer, _ = self.exchange(method, path, body, token)
        return status, answer

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
        tokens = self.login(username, password)
        token = tokens["access_token"]
        key = self.get("/api/v1/me/stream-key", token=token)
        return Account(username, password, token, tokens["refresh_token"], key["stream_key"])

    def login(self, username: str, password: str) -> dict[str, Any]:
        """Sign in as a client without cookies: the refresh token comes in the body."""
        status, tokens = self.request(
            "POST",
            "/api/v1/auth/login",
            {"username": username, "password": password, "token_delivery": "body"},
        )
        assert status == 200, (status, tokens)
        result: dict[str, Any] = tokens
        return result

    def refresh(self, refresh_token: str) -> tuple[int, Any]:
        """Exchange a refresh token sent in the body (the new one comes back in the body)."""
        return self.request("POST", "/api/v1/auth/refresh", {"refresh_token": refresh_token})

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


@contextmanager
def serving(tmp_path: Path, *args: str, **env: str) -> Iterator[KitchServer]:
    """A started server on ``tmp_path/data`` with extra flags and KITCH_* variables."""
    srv = KitchServer(
        data_dir=tmp_path / "data", log_path=tmp_path / "server.log", extra_args=list(args), env=env
    )
    srv.start()
    try:
        yield srv
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()
