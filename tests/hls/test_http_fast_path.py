"""HlsFirst in front of an app, and the one-write fast path, on a real uvicorn over raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import uvicorn
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kitch.api import hls
from kitch.api.hls import HlsFirst
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


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_hls_first_answers_hls_and_passes_the_rest(av_fixture: Fixture, http: str) -> None:
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

    metrics = CollectorRegistry()
    requests = Counter("t_requests", "r", ["method", "area", "status"], registry=metrics)
    duration = Histogram("t_duration", "d", ["area"], registry=metrics)
    app = Starlette(routes=[Route("/other", other)], lifespan=lifespan)
    front = HlsFirst(app, registry, requests=requests, duration=duration)
    before = hls.ONE_WRITE_RESPONSES[0]
    with serve(front, http) as port, socket.create_connection(("127.0.0.1", port)) as conn:
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
        assert missing[0].startswith(b"HTTP/1.1 404") and b'"not_live"' in missing[2]
        assert options[0].startswith(b"HTTP/1.1 204")
        assert passed[0] == b"HTTP/1.1 200 OK" and passed[2] == b"app"
        assert zipped[1][b"content-encoding"] == b"gzip"
        # Connection: close is honoured (the plain ASGI path): the server closes after it
        conn.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % pl)
        assert read_responses(conn, "G")[0][0] == b"HTTP/1.1 200 OK"
        assert conn.recv(10) == b""
    fast = hls.ONE_WRITE_RESPONSES[0] - before
    # httptools: everything /hls but the Connection: close request took the one-write path
    assert fast == (5 if http == "httptools" else 0)
    assert requests.labels("GET", "hls", "200")._value.get() == 3
    assert requests.labels("HEAD", "hls", "200")._value.get() == 1
    assert requests.labels("GET", "hls", "404")._value.get() == 1
    assert requests.labels("OPTIONS", "hls", "204")._value.get() == 1
    assert duration.labels("hls")._sum.get() > 0
