"""The transcoding ladder end to end: a real `kitch serve`, a real RTMP publisher, every
rendition read back over HTTP and decoded, health over the API and /metrics."""

from __future__ import annotations

import io
import re
import urllib.error
from pathlib import Path
from typing import Any

import av
import m3u8
import pytest

from tests.server.conftest import BackgroundPublisher, is_live
from tests.support.media import make_fixture
from tests.support.server import KitchServer

pytestmark = pytest.mark.slow

# small rungs keep two shared cores in real time; bench_ladder measures the 1080p ladder
LADDER = ("--ladder", "240p:240:400,160p:160:200", "--reconnect-grace", "3")


def _text(server: KitchServer, path: str) -> str:
    try:
        return bytes(server.get(path)).decode()
    except urllib.error.URLError:
        return ""


def _variants(server: KitchServer, channel: str) -> list[str]:
    master = _text(server, f"/hls/{channel}/master.m3u8")
    return [line.split("/")[0] for line in master.splitlines() if line.endswith(".m3u8")]


def _health(server: KitchServer, channel: str, token: str) -> dict[str, Any]:
    status, body = server.request("GET", f"/api/v1/channels/{channel}/health", token=token)
    assert status == 200, body
    return dict(body)


def _complete(pl: m3u8.M3U8) -> dict[int, float]:
    return {pl.media_sequence + i: s.duration for i, s in enumerate(pl.segments) if s.uri}


@pytest.mark.parametrize(
    ("width", "height", "flags", "rungs"),
    [
        (640, 360, LADDER, {"240p": 400, "160p": 200}),
        # the default ladder on a 1080p source (a simple pattern: the rates stay well below)
        (1920, 1080, ("--reconnect-grace", "3"), {"720p": 3000, "480p": 1400, "360p": 800}),
    ],
    ids=["360p-source", "1080p-source"],
)
def test_a_publish_yields_every_rendition_aligned(
    server_factory: Any,
    media_dir: Path,
    width: int,
    height: int,
    flags: tuple[str, ...],
    rungs: dict[str, int],
) -> None:
    server: KitchServer = server_factory(*flags)
    fx = make_fixture(media_dir, seconds=4, width=width, height=height, gop=30)
    acct = server.create_account("ladder")
    names = ["source", *rungs]
    pub = BackgroundPublisher(server.rtmp_url(acct.stream_key), fx)
    try:
        server.wait_for(lambda: _variants(server, "ladder") == names, 40, "every rendition")
        master = _text(server, "/hls/ladder/master.m3u8")
        sizes = {n: (round(width * int(n[:-1]) / height / 2) * 2, int(n[:-1])) for n in rungs}
        for w, h in sizes.values():
            assert f"RESOLUTION={w}x{h}" in master, master

        def playlists() -> dict[str, m3u8.M3U8]:
            return {n: m3u8.loads(_text(server, f"/hls/ladder/{n}/index.m3u8")) for n in names}

        server.wait_for(
            lambda: all(len(_complete(p)) >= 3 for p in playlists().values()), 40, "segments"
        )
        pls = playlists()
        src = _complete(pls["source"])
        for name in rungs:
            got = _complete(pls[name])
            common = sorted(set(got) & set(src))
            assert len(common) >= 2, (name, got, src)
            for msn in common:  # same numbers, same instants
                assert got[msn] == pytest.approx(src[msn], abs=1e-4), (name, msn)
            # init + a complete segment decode at the rung's size, starting on a keyframe
            pl = pls[name]
            seg = next(s for s in pl.segments if s.uri)
            init = bytes(server.get(f"/hls/ladder/{name}/{seg.init_section.uri}"))
            body = bytes(server.get(f"/hls/ladder/{name}/{seg.uri}"))
            with av.open(io.BytesIO(init + body)) as inp:
                frames = list(inp.decode(video=0))
            assert frames and frames[0].key_frame
            assert {(f.width, f.height) for f in frames} == {sizes[name]}
            assert len(frames) == pytest.approx(seg.duration * 30, abs=1)
            assert pl.rendition_reports
        health = _health(server, "ladder", acct.access_token)
        assert health["live"] and health["ladder"]["state"] == "running", health
        by_name = {r["name"]: r for r in health["renditions"]}
        assert list(by_name) == names
        for name, kbps in rungs.items():
            r = by_name[name]
            print(name, r)
            assert r["encode_speed"] is not None and r["encode_speed"] > 1
            assert r["cpu_seconds"] > 0 and r["bytes_held"] > 0 and r["error"] is None
            assert 0 < r["bitrate_kbps"] < 2 * kbps and (r["width"], r["height"]) == sizes[name]
        metrics = bytes(server.get("/metrics")).decode()
        first = next(iter(rungs))
        assert re.search(
            rf'kitch_rendition_encode_speed\{{channel="ladder",rendition="{first}"\}} [\d.]+',
            metrics,
        ), metrics[-2000:]
    finally:
        pub.stop()
    assert pub.error is None, pub.error


def test_a_full_pool_runs_passthrough_until_a_slot_frees(
    server_factory: Any, media_dir: Path
) -> None:
    server: KitchServer = server_factory(*LADDER, "--ladder-slots", "1")
    fx = make_fixture(media_dir, seconds=4, width=640, height=360, gop=30)
    first, second = server.create_account("first"), server.create_account("second")
    pub1 = BackgroundPublisher(server.rtmp_url(first.stream_key), fx)
    pub2 = None
    try:
        server.wait_for(lambda: len(_variants(server, "first")) == 3, 30, "first's ladder")
        pub2 = BackgroundPublisher(server.rtmp_url(second.stream_key), fx)
        server.wait_for(
            lambda: (
                _health(server, "second", second.access_token).get("ladder", {}).get("state")
                == "waiting"
            ),
            20,
            "second waits for a slot",
        )
        health = _health(server, "second", second.access_token)
        assert "slot" in (health["ladder"]["reason"] or "")
        assert [r["name"] for r in health["renditions"]] == ["source"]
        server.wait_for(lambda: _variants(server, "second") == ["source"], 20, "second plays")
        pub1.stop()  # the first streamer stops: its slot goes to the second
        server.wait_for(lambda: not is_live(server, "first"), 10, "first offline")
        took = server.wait_for(lambda: len(_variants(server, "second")) == 3, 30, "second's ladder")
        print(f"second got its ladder {took:.1f} s after the slot freed")
        assert _health(server, "second", second.access_token)["ladder"]["state"] == "running"
    finally:
        pub1.stop()
        if pub2 is not None:
            pub2.stop()


def test_hevc_source_gets_h264_rungs_listed_first(server_factory: Any, media_dir: Path) -> None:
    server: KitchServer = server_factory(*LADDER)
    fx = make_fixture(media_dir, seconds=3, width=640, height=360, gop=30, vcodec="libx265")
    acct = server.create_account("hevcladder")
    pub = BackgroundPublisher(server.rtmp_url(acct.stream_key), fx)
    try:
        server.wait_for(lambda: len(_variants(server, "hevcladder")) == 3, 40, "renditions")
        master = _text(server, "/hls/hevcladder/master.m3u8")
        codecs = re.findall(r'CODECS="([^"]+)"', master)
        assert _variants(server, "hevcladder") == ["240p", "160p", "source"], master
        assert codecs[0].startswith("avc1.") and codecs[1].startswith("avc1.")
        assert codecs[2].startswith("hvc1."), master  # the source keeps its real CODECS
    finally:
        pub.stop()
    assert pub.error is None, pub.error
