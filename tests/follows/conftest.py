"""A real `kitch serve` (short grace, short viewer window, no ladder) and events-socket helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.support.server import KitchServer, serving

Frame = dict[str, Any]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KitchServer]:
    with serving(
        tmp_path, "--reconnect-grace", "3", "--viewer-window", "2", "--ladder", "off"
    ) as srv:
        yield srv


def ws_url(server: KitchServer) -> str:
    return f"ws://127.0.0.1:{server.http_port}/ws/events"


def send(ws: ClientConnection, frame: Frame) -> None:
    ws.send(msgpack.packb(frame, use_bin_type=True))


def recv(ws: ClientConnection, timeout: float) -> Frame:
    data = ws.recv(timeout=timeout)
    assert isinstance(data, bytes), data
    frame = msgpack.unpackb(data, raw=False)
    assert isinstance(frame, dict)
    return frame


def frames_until(
    ws: ClientConnection, predicate: Callable[[Frame], bool], timeout: float
) -> list[Frame]:
    """Every frame received up to and including the first that matches (fails on timeout)."""
    seen: list[Frame] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no matching frame within {timeout} s; got {seen}")
        try:
            frame = recv(ws, left)
        except TimeoutError:
            continue
        seen.append(frame)
        if predicate(frame):
            return seen


def drain(ws: ClientConnection, seconds: float) -> list[Frame]:
    """Every frame that arrives within ``seconds``."""
    seen: list[Frame] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            seen.append(recv(ws, left))
        except TimeoutError:
            break
    return seen


@contextmanager
def events(server: KitchServer, token: str | None = None) -> Iterator[ClientConnection]:
    """An events socket, signed in with ``token`` (hello answered) when given."""
    with connect(ws_url(server), open_timeout=5) as ws:
        assert recv(ws, 5) == {"type": "hello", "user": None}
        if token is not None:
            send(ws, {"type": "auth", "token": token})
            hello = recv(ws, 5)
            assert hello["type"] == "hello" and hello["user"], hello
        yield ws
