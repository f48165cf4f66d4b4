"""``/hls`` answered ahead of the app's router, counted by its metrics, on a real uvicorn over
raw sockets (both HTTP implementations)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kitch.api.app import create_app
from kitch.config import Settings
from kitch.hls import HlsRegistry, HlsSettings
from tests.hls.packets import demux_packets
from tests.support.media import Fixture

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def serve(app: object, http: str) -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="on", loop="asyncio", http=http)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(server.serve(sockets=[sock])), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        loop.close()
        sock.close()


def read_responses(
    conn: socket.socket, methods: str
) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    """HTTP/1.1 responses (status line, headers, body) read off ``conn``, one per request
    method in ``methods`` ("G" GET or other, "H" HEAD: no body)."""
    buf, out = b"", []
    conn.settimeout(5)
    while len(out) < len(methods):
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            assert chunk, f"closed after {len(out)} responses"
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        status, *lines = head.split(b"\r\n")
        headers = dict(line.lower().split(b": ", 1) for line in lines)
        size = 0 if methods[len(out)] == "H" else int(headers.get(b"content-length", b"0"))
        while len(buf) < size:
            buf += conn.recv(65536)
        out.append((status, headers, buf[:size]))
        buf = buf[size:]
    return out


def counted(method: str, area: str, status: int) -> float:
    value = REGISTRY.get_sample_value(
        "kitch_http_requests_total", {"method": method, "area": area, "status": str(status)}
    )
    return value or 0.0


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_hls_is_answered_ahead_of_the_router_and_counted(
    av_fixture: Fixture, http: str, tmp_path: Path
) -> None:
    registry = HlsRegistry(HlsSettings(segment_duration=1.0))
    stream = registry.open("zed", time.time())
    for p in demux_packets(av_fixture.path):
        stream.feed(p, time.time())
    started: list[bool] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started.append(True)
        yield

    async def other(request: Request) -> PlainTextResponse:
        return PlainTextResponse("app")

    settings = Settings(data_dir=tmp_path / "data", secret="s" * 40)
    app = create_app(
        settings, hls=registry, extra_routes=[Route("/other", other)], lifespan=lifespan
    )
    keys = [("GET", "hls", 200), ("HEAD", "hls", 200), ("GET", "hls", 404)]
    keys += [("OPTIONS", "hls", 204), ("GET", "web", 200)]
    before = {key: counted(*key) for key in keys}
    duration_before = REGISTRY.get_sample_value(
        "kitch_http_request_duration_seconds_count", {"area": "hls"}
    )
    with serve(app, http) as port, socket.create_connection(("127.0.0.1", port)) as conn:
        assert started  # lifespan went through to the app
        pl = b"/hls/zed/source/index.m3u8"
        # pipelined on one keep-alive connection: GET, HEAD, 404, OPTIONS, the app, GET again
        conn.sendall(
            b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % pl
            + b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % pl
            + b"GET /hls/nobody/master.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n"
            + b"OPTIONS %s HTTP/1.1\r\nHost: x\r\n\r\n" % pl
            + b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n"
            + b"GET %s HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n" % pl
        )
        (get, head, missing, options, passed, zipped) = read_responses(conn, "GHGGGG")
        assert get[0] == b"HTTP/1.1 200 OK" and get[2].startswith(b"#EXTM3U")
        assert get[1][b"content-type"] == b"application/vnd.apple.mpegurl"
        assert get[1][b"access-control-allow-origin"] == b"*"
        assert b"date" in get[1] and get[1][b"cache-control"] == b"public, max-age=1"
        assert head[0] == b"HTTP/1.1 200 OK" and head[1][b"content-length"] == b"%d" % len(get[2])
        assert head[1][b"content-type"] == b"application/vnd.apple.mpegurl"
        assert missing[0].startswith(b"HTTP/1.1 404") and b'"not_live"' in missing[2]
        assert options[0].startswith(b"HTTP/1.1 204")
        assert options[1][b"access-control-allow-methods"] == b"get, head, options"  # lowered
        assert passed[0] == b"HTTP/1.1 200 OK" and passed[2] == b"app"
        assert zipped[1][b"content-encoding"] == b"gzip"
        assert gzip.decompress(zipped[2]) == get[2]
        # Connection: close is honoured: the server closes after it
        conn.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % pl)
        assert read_responses(conn, "G")[0][0] == b"HTTP/1.1 200 OK"
        assert conn.recv(10) == b""
    delta = {key: counted(*key) - before[key] for key in keys}
    assert delta == {
        ("GET", "hls", 200): 3,
        ("HEAD", "hls", 200): 1,
        ("GET", "hls", 404): 1,
        ("OPTIONS", "hls", 204): 1,
        ("GET", "web", 200): 1,
    }
    duration_after = REGISTRY.get_sample_value(
        "kitch_http_request_duration_seconds_count", {"area": "hls"}
    )
    assert (duration_after or 0) - (duration_before or 0) == 6
