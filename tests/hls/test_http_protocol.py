"""LL-HLS over real HTTP: blocking reload, preload hints, delta updates, errors, headers."""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import m3u8
import pytest

from kitch.hls import HlsRegistry, HlsSettings
from tests.hls.live import Feeder, LiveServer, live_server, shifted
from tests.hls.packets import demux_packets
from tests.support.media import Fixture

pytestmark = pytest.mark.slow


@pytest.fixture
def live(av_fixture: Fixture) -> Iterator[tuple[LiveServer, Feeder]]:
    """A stream with 2 s already in (fed at once), continuing in real time for 4 s more."""
    packets = shifted(demux_packets(av_fixture.path), 2, av_fixture.seconds)
    registry = HlsRegistry(HlsSettings(segment_duration=1.0, blocking_timeout=1.5))
    with live_server(registry) as srv:
        stream = registry.open("alice", time.time())
        feeder = Feeder(srv, stream, packets, realtime_from_ms=2000)
        feeder.start()
        deadline = time.monotonic() + 5
        while stream.media_playlist("source") is None and time.monotonic() < deadline:
            time.sleep(0.02)
        yield srv, feeder
        feeder.stop.set()
        feeder.done.wait(5)


@pytest.fixture
async def alice(
    live: tuple[LiveServer, Feeder],
) -> AsyncIterator[tuple[httpx.AsyncClient, str, m3u8.M3U8]]:
    """A client, the live stream's media playlist URL and that playlist as first fetched."""
    srv, _ = live
    url = f"{srv.base}/alice/source/index.m3u8"
    async with httpx.AsyncClient(timeout=10) as client:
        yield client, url, m3u8.loads((await client.get(url)).text)


def _edge(pl: m3u8.M3U8) -> tuple[int, int]:
    """(MSN of the newest segment, parts it lists): the next part is ``(msn, parts)``."""
    return pl.media_sequence + len(pl.segments) - 1, len(pl.segments[-1].parts)


async def test_blocking_reload_answers_when_the_next_part_is_listed(
    alice: tuple[httpx.AsyncClient, str, m3u8.M3U8],
) -> None:
    client, url, pl = alice
    msn, nparts = _edge(pl)
    target = pl.part_inf.part_target
    for _ in range(4):
        t0 = time.monotonic()
        r = await client.get(url, params={"_HLS_msn": msn, "_HLS_part": nparts})
        waited = time.monotonic() - t0
        assert r.status_code == 200
        print(f"blocking reload answered in {waited:.3f} s (part target {target})")
        assert waited < 2 * target + 0.3  # a part comes every target; twice that, loaded
        assert r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        assert "max-age" in r.headers["cache-control"]
        got = m3u8.loads(r.text)
        last_msn = got.media_sequence + len(got.segments) - 1
        last = got.segments[-1]
        assert (last_msn, len(last.parts)) >= (msn, nparts + 1)
        for part in last.parts:
            assert part.duration <= target
        msn, nparts = last_msn, len(last.parts)
        if last.uri is not None:  # segment complete: next one starts at part 0
            msn, nparts = msn + 1, 0


async def test_preload_hinted_part_waits_and_matches_the_listed_part(
    live: tuple[LiveServer, Feeder],
) -> None:
    srv, _ = live
    base = f"{srv.base}/alice/source/"
    async with httpx.AsyncClient(timeout=10) as client:
        pl = m3u8.loads((await client.get(base + "index.m3u8")).text)
        hint = pl.preload_hint.uri
        assert pl.preload_hint.hint_type == "PART"
        t0 = time.monotonic()
        r = await client.get(base + hint)
        assert r.status_code == 200
        waited = time.monotonic() - t0
        print(f"hinted part answered in {waited:.3f} s")
        assert waited < 2 * pl.part_inf.part_target + 0.3
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.content[4:8] == b"moof"
        pl2 = m3u8.loads((await client.get(base + "index.m3u8")).text)
        uris = [p.uri for s in pl2.segments for p in s.parts]
        assert hint in uris
        assert (await client.get(base + hint)).content == r.content
        # a part far beyond the hint is a plain 404, without waiting
        t0 = time.monotonic()
        far = hint.replace("-p", "-p9")
        assert (await client.get(base + far)).status_code == 404
        waited = time.monotonic() - t0
        print(f"far part 404 in {waited:.3f} s")
        assert waited < 1.0  # no waiting (the blocking timeout is 1.5 s)


async def test_requests_too_far_ahead_are_400_and_bad_queries_too(
    alice: tuple[httpx.AsyncClient, str, m3u8.M3U8],
) -> None:
    client, url, pl = alice
    msn, _ = _edge(pl)
    t0 = time.monotonic()
    # msn + 2 is the first that is too far; + 3 leaves room for a segment completing
    # between the two requests on a loaded machine.
    assert (await client.get(url, params={"_HLS_msn": msn + 3})).status_code == 400
    r = await client.get(url, params={"_HLS_msn": msn, "_HLS_part": 40})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "too_far_ahead"
    assert (await client.get(url, params={"_HLS_part": 1})).status_code == 400
    assert (await client.get(url, params={"_HLS_msn": "-1"})).status_code == 400
    assert (await client.get(url, params={"_HLS_msn": "x"})).status_code == 400
    assert time.monotonic() - t0 < 1.0
    # the next segment (msn + 1) is allowed and answers within about a segment
    r = await client.get(url, params={"_HLS_msn": msn + 1})
    assert r.status_code == 200


async def test_blocking_reload_times_out_with_503_when_the_publisher_stalls(
    av_fixture: Fixture,
) -> None:
    packets = demux_packets(av_fixture.path)
    registry = HlsRegistry(HlsSettings(segment_duration=1.0, blocking_timeout=0.8))
    with live_server(registry) as srv:
        stream = registry.open("bob", time.time())
        feeder = Feeder(
            srv, stream, packets[: len(packets) // 2], realtime_from_ms=10**9, end=False
        )
        feeder.run()  # all at once, then silence (no end)
        srv.call_wait(lambda: None)
        url = f"{srv.base}/bob/source/index.m3u8"
        async with httpx.AsyncClient(timeout=10) as client:
            pl = m3u8.loads((await client.get(url)).text)
            msn, part = _edge(pl)
            t0 = time.monotonic()
            r = await client.get(url, params={"_HLS_msn": msn, "_HLS_part": part})
            assert r.status_code == 503
            assert 0.7 < time.monotonic() - t0 < 2.0
            # the hinted part never comes either: 404 after the same bound
            t0 = time.monotonic()
            r = await client.get(f"{srv.base}/bob/source/{pl.preload_hint.uri}")
            assert r.status_code == 404
            assert 0.7 < time.monotonic() - t0 < 2.0
            # ending the stream releases waiters at once, with ENDLIST
            waiting = client.get(url, params={"_HLS_msn": msn, "_HLS_part": part})
            threading.Timer(0.2, lambda: srv.call(lambda: stream.end(time.time()))).start()
            t0 = time.monotonic()
            r = await waiting
            assert r.status_code == 200 and "#EXT-X-ENDLIST" in r.text
            waited = time.monotonic() - t0
            print(f"released {waited:.3f} s after asking (end at 0.2 s)")
            assert waited < 1.5  # well before the 0.8 s timeout would have run out twice


async def test_delta_update_skips_old_segments(av_fixture: Fixture) -> None:
    packets = shifted(demux_packets(av_fixture.path), 3, av_fixture.seconds)
    registry = HlsRegistry(HlsSettings(segment_duration=1.0, segment_count=10))
    with live_server(registry) as srv:
        stream = registry.open("carol", time.time())
        Feeder(srv, stream, packets[: len(packets) * 3 // 4], 10**9, end=False).run()
        srv.call_wait(lambda: None)
        url = f"{srv.base}/carol/source/index.m3u8"
        async with httpx.AsyncClient(timeout=10) as client:
            full = m3u8.loads((await client.get(url)).text)
            r = await client.get(url, params={"_HLS_skip": "YES"})
            delta = m3u8.loads(r.text)
    assert full.server_control.can_skip_until >= 6 * full.target_duration
    assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=" in r.text
    skipped = delta.skip.skipped_segments
    assert skipped > 0
    assert delta.media_sequence == full.media_sequence
    assert [s.uri for s in delta.segments] == [s.uri for s in full.segments][skipped:]
    # what is skipped ends at least CAN-SKIP-UNTIL before the end of the playlist
    kept = sum(s.duration for s in full.segments[skipped:] if s.uri)
    kept += sum(p.duration for p in full.segments[-1].parts if full.segments[-1].uri is None)
    assert kept >= full.server_control.can_skip_until - 1.0


async def test_headers_head_cors_gzip_and_404s(live: tuple[LiveServer, Feeder]) -> None:
    srv, _ = live
    base = f"{srv.base}/alice"
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(f"{base}/master.m3u8", headers={"accept-encoding": "identity"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in r.headers
        master = m3u8.loads(r.text)
        v = master.playlists[0]
        assert v.stream_info.resolution == (320, 240)
        assert v.stream_info.codecs == "avc1.42c00d,mp4a.40.2"
        assert v.stream_info.bandwidth > 50_000
        assert v.stream_info.average_bandwidth <= v.stream_info.bandwidth
        assert round(v.stream_info.frame_rate) == 30
        raw = await client.get(f"{base}/source/index.m3u8", headers={"accept-encoding": "identity"})
        z = await client.get(f"{base}/source/index.m3u8", headers={"accept-encoding": "gzip"})
        assert z.headers.get("content-encoding") == "gzip"
        assert "content-encoding" not in raw.headers
        assert z.headers["vary"] == "Accept-Encoding"
        assert z.text.splitlines()[:5] == raw.text.splitlines()[:5]  # httpx decoded it
        pl = m3u8.loads(raw.text)
        seg_uri = next(s.uri for s in pl.segments if s.uri)
        init_uri = pl.segments[0].init_section.uri
        seg = await client.get(f"{base}/source/{seg_uri}")
        assert seg.headers["content-type"] == "video/iso.segment"
        assert seg.headers["cache-control"] == "public, max-age=31536000, immutable"
        init = await client.get(f"{base}/source/{init_uri}")
        assert init.headers["content-type"] == "video/mp4"
        assert init.content[4:8] == b"ftyp"
        head = await client.head(f"{base}/source/{seg_uri}")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len(seg.content)
        opt = await client.options(f"{base}/source/index.m3u8")
        assert opt.status_code == 204 and "GET" in opt.headers["access-control-allow-methods"]
        for path in (
            f"{srv.base}/nobody/master.m3u8",
            f"{srv.base}/nobody/source/index.m3u8",
            f"{base}/720p/index.m3u8",
            f"{base}/source/{seg_uri.replace(seg_uri.split('-')[0], 'dead')}",
            f"{base}/source/..%2Fsecret",
            f"{base}/source/whatever.ts",
        ):
            t0 = time.monotonic()
            r = await client.get(path)
            assert r.status_code == 404, path
            waited = time.monotonic() - t0
            assert waited < 1.0, (path, waited)  # no waiting (blocking timeout 1.5 s)
            assert r.headers["access-control-allow-origin"] == "*"
        assert gzip.decompress(gzip.compress(b"x")) == b"x"


async def test_ended_stream_lists_endlist_then_answers_404(av_fixture: Fixture) -> None:
    packets = demux_packets(av_fixture.path)
    registry = HlsRegistry(HlsSettings(segment_duration=1.0, ended_retention=5.0))
    with live_server(registry) as srv:
        stream = registry.open("dave", 1000.0)
        Feeder(srv, stream, packets, 10**9, end=True).run()
        url = f"{srv.base}/dave/source/index.m3u8"
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.get(url, params={"_HLS_msn": 99})
            assert r.status_code == 200  # ended: no waiting, no 400
            pl = m3u8.loads(r.text)
            assert pl.is_endlist and pl.preload_hint is None
            seg = await client.get(f"{srv.base}/dave/source/{pl.segments[0].uri}")
            assert seg.status_code == 200
            srv.call_wait(lambda: registry.expire(time.time() + 10))
            assert (await client.get(url)).status_code == 404
            assert (await client.get(f"{srv.base}/dave/master.m3u8")).status_code == 404


async def test_many_waiters_are_all_released_when_the_stream_ends(av_fixture: Fixture) -> None:
    """150 blocking playlist reloads and 50 preload-hinted part requests wait on a stalled
    stream; ending it answers every one of them at once (nothing hangs, nothing is lost)."""
    packets = demux_packets(av_fixture.path)
    registry = HlsRegistry(HlsSettings(segment_duration=1.0, blocking_timeout=20.0))
    with live_server(registry) as srv:
        stream = registry.open("crowd", time.time())
        Feeder(srv, stream, packets[: len(packets) // 2], 10**9, end=False).run()
        srv.call_wait(lambda: None)
        url = f"{srv.base}/crowd/source/index.m3u8"
        limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            pl = m3u8.loads((await client.get(url)).text)
            msn, part = _edge(pl)
            hint = f"{srv.base}/crowd/source/{pl.preload_hint.uri}"
            params = {"_HLS_msn": msn, "_HLS_part": part}
            t0 = time.monotonic()
            waiting = [asyncio.ensure_future(client.get(url, params=params)) for _ in range(150)]
            waiting += [asyncio.ensure_future(client.get(hint)) for _ in range(50)]
            await asyncio.sleep(1.0)
            assert not any(w.done() for w in waiting)  # they really wait
            srv.call(lambda: stream.end(time.time()))
            t_end = time.monotonic()
            done = await asyncio.wait_for(asyncio.gather(*waiting), 10)
            took = time.monotonic() - t_end
            print(f"{len(done)} answered {took:.2f} s after the end ({time.monotonic() - t0:.2f})")
    # 200 answers take 1-5 s on a loaded 2-core box (client and server share it); the point
    # is that they come with the end, long before the 20 s blocking timeout
    assert took < 10.0
    playlists, parts = done[:150], done[150:]
    assert all(r.status_code == 200 and "#EXT-X-ENDLIST" in r.text for r in playlists)
    # the end flushes the part in progress: the hinted part is listed in the final playlist
    # and every waiter gets it whole (or, if nothing was in progress, it is never made: 404)
    final = m3u8.loads(playlists[0].text)
    listed = {p.uri for s in final.segments for p in s.parts}
    want = 200 if pl.preload_hint.uri in listed else 404
    print("hinted part", pl.preload_hint.uri, "listed" if want == 200 else "never made")
    assert {r.status_code for r in parts} == {want}
    assert len({r.content for r in parts}) == 1
