"""A live channel on a real `kitch serve` (RTMP publish of a paced fixture) and an edge in
front of it, shared by the module's tests (starting them is the slow part)."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.edge.nginx import NGINX, EdgeNginx
from tests.support.media import Fixture, publish_pyav
from tests.support.server import Account, KitchServer, serving

CHANNEL = "edgecast"

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


@dataclass
class Live:
    origin: KitchServer
    account: Account
    edge: EdgeNginx

    @property
    def playlist(self) -> str:
        return f"/hls/{CHANNEL}/source/index.m3u8"


def _segments(srv: KitchServer, path: str) -> int:
    try:
        with urllib.request.urlopen(srv.base + path, timeout=5) as resp:
            text: str = resp.read().decode()
            return text.count("#EXTINF")
    except OSError:
        return 0


@pytest.fixture(scope="package")
def live(tmp_path_factory: pytest.TempPathFactory, av_fixture: Fixture) -> Iterator[Live]:
    with serving(
        tmp_path_factory.mktemp("edge"),
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
            srv.wait_for(lambda: _segments(srv, path) >= 2, 30, "two segments")
            with EdgeNginx(origins=[f"127.0.0.1:{srv.http_port}"]) as edge:
                yield Live(srv, account, edge)
        finally:
            stop.set()
            publisher.join(10)
