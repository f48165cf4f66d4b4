"""The caching nginx edge (deploy/nginx/kitch-edge.conf) in front of a real `kitch serve`.

A real nginx from apt runs the rendered config on loopback; the origin takes a real RTMP
publish. Origin requests are counted on the origin side (Kitch's ``kitch_http_requests_total``
for the ``hls`` area: nothing else reads the origin's /hls during these tests) and, beside
that, from the edge's access log (``$upstream_addr``).
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import re
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import connect

from tests.edge.conftest import CHANNEL, Live, settled_hls_requests
from tests.edge.nginx import EdgeNginx

pytestmark = pytest.mark.slow

Answer = tuple[int, dict[str, str], bytes]


def fetch(
    base: str, path: str, headers: dict[str, str] | None = None, timeout: float = 40
) -> Answer:
    """One GET on its own connection: (status, lower-cased headers, raw body)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def settled_count(live: Live) -> float:
    """The origin's /hls count once it stopped moving (requests on the main port are counted
    as they are answered)."""
    return settled_hls_requests(live.origin.base, 0.3)


def next_part(playlist: str) -> tuple[int, int]:
    """(msn, part) of the part after the newest one listed."""
    msn = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", playlist).group(1))  # type: ignore[union-attr]
    msn += playlist.count("#EXTINF")
    tail = playlist.rsplit("#EXTINF", 1)[-1]
    return msn, tail.count("#EXT-X-PART:")


def together(calls: list[Callable[[], Answer]]) -> list[tuple[Answer, float]]:
    """Each call in its own thread, all released at once; the answers in the calls' order,
    each with the seconds it took."""
    barrier = threading.Barrier(len(calls))
    results: list[tuple[Answer, float] | None] = [None] * len(calls)

    def one(i: int) -> None:
        barrier.wait()
        t0 = time.monotonic()
        answer = calls[i]()
        results[i] = (answer, time.monotonic() - t0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    done = [r for r in results if r is not None]
    assert len(done) == len(calls)
    return done


def crowd(n: int, call: Callable[[], Answer]) -> list[tuple[Answer, float]]:
    """``n`` threads making ``call()`` at once."""
    return together([call] * n)


def test_media_and_playlists_through_the_edge_are_the_origins(live: Live) -> None:
    edge, origin = live.edge.base, live.origin.base
    master = f"/hls/{CHANNEL}/master.m3u8"
    s1, h1, b1 = fetch(edge, master)
    s2, _, b2 = fetch(origin, master)
    assert (s1, b1) == (s2, b2) and s1 == 200
    assert h1["x-cache"] in ("MISS", "HIT") and h1["cache-control"] == "public, max-age=2"
    assert fetch(edge, master)[1]["x-cache"] == "HIT"

    status, _, body = fetch(origin, live.playlist)
    assert status == 200
    text = body.decode()
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text).group(1)  # type: ignore[union-attr]
    segments = re.findall(r"#EXTINF:[\d.]+,\n(\S+)", text)
    parts = re.findall(r'#EXT-X-PART:[^\n]*URI="([^"]+)"', text)
    base = live.playlist.rsplit("/", 1)[0] + "/"
    for name in [init, segments[-1], *parts[-3:]]:
        first = fetch(edge, base + name)
        direct = fetch(origin, base + name)
        again = fetch(edge, base + name)
        assert first[0] == direct[0] == again[0] == 200, name
        assert first[2] == direct[2] == again[2], name  # byte-identical
        assert first[1]["cache-control"] == "public, max-age=31536000, immutable"
        assert again[1]["x-cache"] == "HIT", name

    # a blocking reload for the next part, through the edge and straight to the origin at
    # once: both answered on the same change of the stream, with the same bytes (a part
    # landing between the two answers makes them differ: try again, a few times)
    for _ in range(5):
        msn, part = next_part(fetch(origin, live.playlist)[2].decode())
        query = f"{live.playlist}?_HLS_msn={msn}&_HLS_part={part}"
        (a, _), (b, _) = together(
            [lambda q=query: fetch(edge, q), lambda q=query: fetch(origin, q)]  # type: ignore[misc]
        )
        assert a[0] == b[0] == 200
        if a[2] == b[2]:
            break
    else:
        pytest.fail("the edge's blocking reload never matched the origin's")

    # gzip: the edge keeps one gzipped copy, and unzips it for clients that take no gzip
    zipped = fetch(edge, query, {"Accept-Encoding": "gzip"})
    plain = fetch(edge, query)
    assert zipped[1].get("content-encoding") == "gzip"
    assert gzip.decompress(zipped[2]) == plain[2] == a[2]
    assert "content-encoding" not in plain[1]


def test_a_crowd_of_blocking_reloads_makes_one_origin_request(live: Live) -> None:
    msn, part = next_part(fetch(live.origin.base, live.playlist)[2].decode())
    # ask for the part after the next one: every request of the crowd is held
    part += 1
    query = f"{live.playlist}?_HLS_msn={msn}&_HLS_part={part}"
    before = settled_count(live)
    logged = len(live.edge.log())
    answers = crowd(30, lambda: fetch(live.edge.base, query))
    after = settled_count(live)

    assert {a[0] for a, _ in answers} == {200}
    bodies = {a[2] for a, _ in answers}
    assert len(bodies) == 1  # the one origin answer, to all 30
    listed = next_part(bodies.pop().decode())
    assert listed > (msn, part) or listed == (msn + 1, 0)  # the awaited part is listed
    went = [line for line in live.edge.log()[logged:] if line.upstreams]
    assert after - before == 1, (before, after, went)
    lines = [line for line in live.edge.log()[logged:] if "_HLS_msn" in line.uri]
    assert len(lines) == 30
    assert sum(line.origin_requests for line in lines) == 1
    # the waiters re-check the lock every 500 ms (nginx): none waits much longer
    assert max(t for _, t in answers) < 3.0


def test_a_crowd_on_the_preload_hinted_part_makes_one_origin_request(live: Live) -> None:
    text = fetch(live.origin.base, live.playlist)[2].decode()
    hint = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', text)
    assert hint is not None
    path = live.playlist.rsplit("/", 1)[0] + "/" + hint.group(1)
    before = settled_count(live)
    answers = crowd(30, lambda: fetch(live.edge.base, path))
    after = settled_count(live)
    assert {a[0] for a, _ in answers} == {200}
    assert len({a[2] for a, _ in answers}) == 1
    assert after - before == 1
    assert answers[0][0][2] == fetch(live.origin.base, path)[2]


def test_junk_query_arguments_share_the_cache_entry(live: Live) -> None:
    edge = live.edge.base
    msn, part = next_part(fetch(live.origin.base, live.playlist)[2].decode())
    msn, part = (msn, part - 1) if part else (msn - 1, 0)  # a listed part: answered at once
    # first seen with junk and the arguments in another order (a delta update, which no other
    # test asks for: a fresh key): stored under the clean key
    junk = f"{live.playlist}?utm_source=x&_HLS_skip=YES&_HLS_part={part}&cb=17&_HLS_msn={msn}"
    first = fetch(edge, junk)
    assert first[0] == 200 and first[1]["x-cache"] == "MISS"
    before = settled_count(live)
    clean = fetch(edge, f"{live.playlist}?_HLS_msn={msn}&_HLS_part={part}&_HLS_skip=YES")
    other = fetch(
        edge, f"{live.playlist}?session=abc&_HLS_msn={msn}&_HLS_part={part}&_HLS_skip=YES"
    )
    assert clean[1]["x-cache"] == other[1]["x-cache"] == "HIT"
    assert first[2] == clean[2] == other[2]
    text = first[2].decode()
    name = re.findall(r'#EXT-X-PART:[^\n]*URI="([^"]+)"', text)[-1]
    media = live.playlist.rsplit("/", 1)[0] + "/" + name
    fetch(edge, media)
    busted = fetch(edge, media + "?v=123&_=456")
    assert busted[0] == 200 and busted[1]["x-cache"] == "HIT"
    assert settled_count(live) - before <= 1  # only the part's first fetch, if not cached yet


def test_errors_are_not_cached(live: Live) -> None:
    text = fetch(live.origin.base, live.playlist)[2].decode()
    hint = re.search(r'URI="([0-9a-f]+)-p(\d+)\.m4s"\n*$', text.strip())
    assert hint is not None, text
    base = live.playlist.rsplit("/", 1)[0] + "/"
    missing = f"{base}{hint.group(1)}-p{int(hint.group(2)) + 1000}.m4s"  # not yet, not hinted
    msn, _ = next_part(text)
    too_far = f"{live.playlist}?_HLS_msn={msn + 5}&_HLS_part=0"
    before = settled_count(live)
    for path, status in ((missing, 404), (too_far, 400)):
        for _ in range(2):
            answer = fetch(live.edge.base, path)
            assert answer[0] == status and answer[1]["x-cache"] == "MISS", (path, answer)
            assert answer[2].startswith(b'{"error":')
    assert settled_count(live) - before == 4  # each one went to the origin


def test_ffmpeg_plays_through_the_edge(live: Live) -> None:
    proc = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-i",
            f"{live.edge.base}/hls/{CHANNEL}/master.m3u8",
            "-map",
            "0:v:0",
            "-frames:v",
            "60",
            "-f",
            "framecrc",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    frames = [line for line in proc.stdout.splitlines() if line.startswith("0,")]
    assert len(frames) == 60, proc.stdout[-2000:] + proc.stderr
    served = [line for line in live.edge.log() if line.uri.endswith(".m4s")]
    assert served  # the media came through the edge


def test_a_chat_websocket_through_the_edge(live: Live) -> None:
    async def run() -> dict[str, Any]:
        url = f"ws://127.0.0.1:{live.edge.port}/ws/chat/{CHANNEL}"
        async with connect(url) as ws:
            welcome = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 10))
            assert welcome["type"] == "welcome"
            await ws.send(msgpack.packb({"type": "auth", "token": live.account.access_token}))
            await ws.send(msgpack.packb({"type": "say", "text": "via the edge", "nonce": "n1"}))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                unpacker = msgpack.Unpacker(raw=False)
                unpacker.feed(await asyncio.wait_for(ws.recv(), 10))
                for frame in unpacker:
                    if frame["type"] == "message":
                        return dict(frame)
            raise AssertionError("no chat message came back")

    message = asyncio.run(run())
    assert message["text"] == "via the edge" and message["user"]["name"] == CHANNEL


def test_the_api_passes_through_uncached(live: Live) -> None:
    edge = live.edge.base
    path = f"/api/v1/channels/{CHANNEL}"
    for title in ("first title", "second title"):
        req = urllib.request.Request(
            edge + path,
            data=f'{{"title": "{title}"}}'.encode(),
            method="PATCH",
            headers={
                "Authorization": f"Bearer {live.account.access_token}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
        status, headers, body = fetch(edge, path)
        assert status == 200 and "x-cache" not in headers
        assert f'"title":"{title}"' in body.decode().replace(": ", ":")
    assert fetch(edge, "/api/v1/no-such-route")[0] == 404


REDIRECTOR = """
server {{
    listen 127.0.0.1:{port};
    access_log off;
    location /hls/ {{ return 307 http://127.0.0.1:{target}$request_uri; }}
}}
server {{
    listen 127.0.0.1:{stray};
    access_log off;
    location /hls/ {{ return 307 http://127.0.0.1:1$request_uri; }}
}}
"""


def test_a_307_to_the_holding_node_is_followed_and_cached_under_the_original_key(
    live: Live,
) -> None:
    """The edge's /hls origin is a node that does not hold the channel (an nginx server that
    answers every /hls request with 307 to the node that does)."""
    from tests.edge.nginx import free_port

    redirector, stray = free_port(), free_port()
    origin = f"127.0.0.1:{live.origin.http_port}"
    extra = REDIRECTOR.format(port=redirector, target=live.origin.http_port, stray=stray)
    with EdgeNginx(
        origins=[origin], hls_origins=[f"127.0.0.1:{redirector}"], extra_http=extra
    ) as edge:
        text = fetch(live.origin.base, live.playlist)[2].decode()
        name = re.findall(r'#EXT-X-PART:[^\n]*URI="([^"]+)"', text)[-1]
        media = live.playlist.rsplit("/", 1)[0] + "/" + name
        first = fetch(edge.base, media)
        again = fetch(edge.base, media)
        assert first[0] == again[0] == 200
        assert first[2] == again[2] == fetch(live.origin.base, media)[2]
        assert again[1]["x-cache"] == "HIT"
        line = next(entry for entry in edge.log() if entry.uri == media)
        assert line.upstreams == [f"127.0.0.1:{redirector}", origin]

        msn, part = next_part(fetch(live.origin.base, live.playlist)[2].decode())
        query = f"{live.playlist}?_HLS_msn={msn}&_HLS_part={part + 1}&junk=1"
        before = settled_count(live)
        answers = crowd(20, lambda: fetch(edge.base, query))
        assert {a[0] for a, _ in answers} == {200}
        assert settled_count(live) - before == 1  # one request reached the holding node
        assert fetch(edge.base, query)[1]["x-cache"] == "HIT"
    with EdgeNginx(origins=[origin], hls_origins=[f"127.0.0.1:{stray}"], extra_http=extra) as bad:
        status, headers, body = fetch(bad.base, live.playlist)  # a node the edge does not know
        assert status == 502 and headers["content-type"] == "application/json"
        assert json.loads(body)["error"]["code"] == "bad_gateway"
