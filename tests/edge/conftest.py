"""A live channel on a real `kitch serve` (RTMP publish of a paced fixture) and an edge in
front of it, shared by the module's tests (starting them is the slow part)."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.edge.nginx import NGINX, EdgeNginx, free_port, hls_requests
from tests.support.media import Fixture, publish_pyav
from tests.support.server import Account, KitchServer, serving

CHANNEL = "edgecast"

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


@dataclass
class Live:
    origin: KitchServer
    account: Account
    edge: EdgeNginx  # /hls from the origin's main port
    hls_port: int  # the origin's HLS worker (one)

    @property
    def playlist(self) -> str:
        return f"/hls/{CHANNEL}/source/index.m3u8"


def segments(base: str, path: str) -> int:
    """Complete segments listed at ``base`` + ``path`` (0 while there is no playlist)."""
    try:
        with urllib.request.urlopen(base + path, timeout=5) as resp:
            text: str = resp.read().decode()
            return text.count("#EXTINF")
    except OSError:
        return 0


def settled_hls_requests(base: str, quiet: float) -> float:
    """:func:`hls_requests` once it has not moved for ``quiet`` seconds."""
    last = hls_requests(base)
    while True:
        time.sleep(quiet)
        now = hls_requests(base)
        if now == last:
            return now
        last = now


@pytest.fixture(scope="package")
def live(tmp_path_factory: pytest.TempPathFactory, av_fixture: Fixture) -> Iterator[Live]:
    hls_port = free_port()
    with serving(
        tmp_path_factory.mktemp("edge"),
        "--hls-workers",
        "1",
        "--hls-port",
        str(hls_port),
        KITCH_LADDER="off",
        KITCH_THUMBNAIL_INTERVAL="0",
        KITCH_RECORDINGS="off",
    ) as srv:
        account = srv.create_account(CHANNEL)
        stop = threading.Event()
        publisher = threading.Thread(
            target=publish_pyav,
            args=(srv.rtmp_url(account.stream_key), av_fixture),
            kwargs={"loops": 1000, "stop": stop},
            daemon=True,
        )
        publisher.start()
        try:
            path = f"/hls/{CHANNEL}/source/index.m3u8"
            srv.wait_for(lambda: segments(srv.base, path) >= 2, 30, "two segments")
            worker = f"http://127.0.0.1:{hls_port}"
            srv.wait_for(lambda: segments(worker, path) >= 2, 30, "the HLS worker")
            settled_hls_requests(srv.base, 1.5)  # the worker's report of those requests is in
            with EdgeNginx(origins=[f"127.0.0.1:{srv.http_port}"]) as edge:
                yield Live(srv, account, edge, hls_port)
        finally:
            stop.set()
            publisher.join(10)
