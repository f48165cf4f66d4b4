"""A live stream fed in real time plays over real HTTP in FFmpeg's HLS demuxer (via PyAV)."""

from __future__ import annotations

import itertools
import time

import av
import pytest

from kitch.hls import HlsRegistry, HlsSettings
from tests.hls.live import Feeder, live_server, shifted
from tests.hls.packets import demux_packets
from tests.support.media import Fixture

pytestmark = pytest.mark.slow


def _read_all(url: str) -> tuple[list[int], list[int], int]:
    """Demux+decode until EXT-X-ENDLIST: (video pts in 90 kHz, audio pts, decode errors)."""
    vpts: list[int] = []
    apts: list[int] = []
    with av.open(url, options={"live_start_index": "0"}, timeout=10) as inp:
        vs = inp.streams.video[0]
        for pkt in inp.demux():
            if pkt.size == 0 or pkt.pts is None:
                continue
            if pkt.stream.type == "video":
                for frame in pkt.decode():
                    vpts.append(round(frame.pts * frame.time_base * 90000))
            else:
                apts.append(round(pkt.pts * pkt.time_base * 44100))
        assert vs.codec_context.width == 320
    return vpts, apts, 0


def test_pyav_plays_live_master_playlist(av_fixture: Fixture) -> None:
    packets = shifted(demux_packets(av_fixture.path), 2, av_fixture.seconds)
    registry = HlsRegistry(HlsSettings(segment_duration=1.0))
    with live_server(registry) as srv:
        stream = registry.open("alice", time.time())
        feeder = Feeder(srv, stream, packets)
        feeder.start()
        deadline = time.monotonic() + 10
        while stream.master_playlist() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        vpts, apts, _ = _read_all(f"{srv.base}/alice/master.m3u8")
        assert feeder.done.wait(15)
    frames = 2 * av_fixture.fps * int(av_fixture.seconds)
    # every frame arrives, in order, 1/30 s apart (ms-rounded input: +-1 ms)
    assert len(vpts) == frames
    steps = {b - a for a, b in itertools.pairwise(vpts)}
    assert steps <= {2970, 3060, 3000, 2990, 3010}, steps
    assert len(apts) > 300
    assert all(b - a == 1024 for a, b in itertools.pairwise(apts))
