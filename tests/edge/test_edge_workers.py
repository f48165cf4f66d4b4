"""The edge in front of Kitch's HLS worker processes (``--hls-origin`` = the ``--hls-port``):
/hls from the workers, everything else from the main port."""

from __future__ import annotations

import pytest

from tests.edge.conftest import CHANNEL, Live, settled_hls_requests
from tests.edge.nginx import EdgeNginx
from tests.edge.test_edge import crowd, fetch, next_part

pytestmark = pytest.mark.slow


def settled(base: str) -> float:
    """The /hls count once stable for 1.5 s (the workers report their requests every second)."""
    return settled_hls_requests(base, 1.5)


def test_the_edge_serves_hls_from_the_workers(live: Live) -> None:
    srv = live.origin
    worker = f"http://127.0.0.1:{live.hls_port}"
    playlist = f"/hls/{CHANNEL}/source/index.m3u8"
    with EdgeNginx(
        origins=[f"127.0.0.1:{srv.http_port}"], hls_origins=[f"127.0.0.1:{live.hls_port}"]
    ) as edge:
        msn, part = next_part(fetch(worker, playlist)[2].decode())
        query = f"{playlist}?_HLS_msn={msn}&_HLS_part={part + 1}"
        before = settled(srv.base)
        answers = crowd(20, lambda: fetch(edge.base, query))
        assert {a[0] for a, _ in answers} == {200}
        assert settled(srv.base) - before == 1  # one request, answered by the worker
        logged = [e for e in edge.log() if e.uri == query]
        assert [u for e in logged for u in e.upstreams] == [f"127.0.0.1:{live.hls_port}"]
        text = answers[0][0][2].decode()
        name = text.rsplit("#EXT-X-PART:", 1)[1].split('URI="', 1)[1].split('"', 1)[0]
        media = playlist.rsplit("/", 1)[0] + "/" + name
        assert fetch(edge.base, media)[2] == fetch(worker, media)[2]
        # the API still comes from the main port through the same edge
        status, _, body = fetch(edge.base, f"/api/v1/channels/{CHANNEL}")
        assert status == 200 and b'"live":true' in body.replace(b": ", b":")
