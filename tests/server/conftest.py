from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kitch.db import Database, open_database
from tests.support.media import Fixture, publish_pyav
from tests.support.server import KitchServer


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A real SQLite database file, migrated, for in-process hub and listener tests."""
    database = await open_database(tmp_path / "kitch.db")
    yield database
    await database.close()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[object]:
    started: list[KitchServer] = []

    def make(*args: str, data_dir: Path | None = None, **env: str) -> KitchServer:
        n = len(started)
        srv = KitchServer(
            data_dir=data_dir or tmp_path / "data",
            log_path=tmp_path / f"server{n}.log",
            extra_args=list(args),
            env=env,
        )
        started.append(srv.start())
        return srv

    yield make
    for srv in started:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()


@pytest.fixture
def server(server_factory: object) -> KitchServer:
    return server_factory("--reconnect-grace", "3")  # type: ignore[operator, no-any-return]


class BackgroundPublisher:
    """PyAV publishing a fixture in a thread, looping until stopped; keeps the error it hit."""

    def __init__(self, url: str, fixture: Fixture, loops: int = 100) -> None:
        self.stop_event = threading.Event()
        self.started = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(url, fixture, loops), daemon=True)
        self.thread.start()

    def _run(self, url: str, fixture: Fixture, loops: int) -> None:
        try:
            publish_pyav(url, fixture, loops=loops, stop=self.stop_event, on_start=self.started)
        except BaseException as exc:  # reported to the test through .error
            self.error = exc

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()


def is_live(server: KitchServer, name: str) -> bool:
    return bool(server.channel(name)["live"])


def source_playlist(server: KitchServer, name: str) -> str:
    """The channel's source media playlist, or "" while there is none."""
    try:
        return bytes(server.get(f"/hls/{name}/source/index.m3u8")).decode()
    except Exception:
        return ""


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``sock`` (reading and dropping), None if it did not."""
    t0 = time.monotonic()
    sock.settimeout(0.1)
    while time.monotonic() - t0 < seconds:
        try:
            if not sock.recv(65536):
                return time.monotonic() - t0
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - t0
    return None
