"""A real redis-server for the tests: 127.0.0.1 on a free port, no persistence, in a temporary
directory; it can be killed and started again on the same port (a Redis outage)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.server import free_port


def redis_server_path() -> str:
    """The redis-server binary: the tests need it (a failure, never a skip, where missing)."""
    found = shutil.which("redis-server")
    if found is None:
        pytest.fail("redis-server is missing: make test-deps installs it (apt: redis-server)")
    return found


@dataclass
class RedisServer:
    directory: Path
    port: int = field(default_factory=free_port)
    password: str | None = None  # --requirepass
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - the child holds it
        args = {
            "bind": "127.0.0.1",
            "port": str(self.port),
            "dir": str(self.directory),
            "save": "",  # no persistence
            "appendonly": "no",
            "daemonize": "no",
        }
        if self.password:
            args["requirepass"] = self.password
        self.proc = subprocess.Popen(
            [redis_server_path(), *(x for k, v in args.items() for x in (f"--{k}", v))],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited early:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    answer = s.recv(64)
                    if answer.startswith(b"+PONG") or answer.startswith(b"-NOAUTH"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"redis-server did not start:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A started redis-server, stopped (and its directory removed) at the end."""
    with tempfile.TemporaryDirectory(prefix="kitch-redis-") as tmp:
        server = RedisServer(Path(tmp)).start()
        try:
            yield server
        finally:
            server.stop()
