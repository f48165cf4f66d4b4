"""A live stream fed in real time plays over real HTTP in FFmpeg's HLS demuxer (via PyAV)."""

from __future__ import annotations

import itertools
import time

import av
import av.logging
import pytest

from kitch.hls import HlsRegistry, HlsSettings
from kitch.media import MediaPacket
from tests.hls.live import Feeder, live_server, shifted
from tests.hls.packets import demux_packets
from tests.support.media import Fixture

pytestmark = pytest.mark.slow


def _read_all(url: str) -> tuple[list[int], list[int], list[str]]:
    """Demux+decode until EXT-X-ENDLIST: (video pts in 90 kHz, audio pts, FFmpeg errors)."""
    vpts: list[int] = []
    apts: list[int] = []
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as logs:
            _demux(url, vpts, apts)
    finally:
        av.logging.set_level(None)
    errors = [f"{name}: {msg}" for level, name, msg in logs if level <= av.logging.ERROR]
    return vpts, apts, errors


def _demux(url: str, vpts: list[int], apts: list[int]) -> None:
    with av.open(url, options={"live_start_index": "0"}, timeout=10) as inp:
        vs = inp.streams.video[0]
        for pkt in inp.demux():
            if pkt.stream.type == "video":  # the empty packets at the end flush the decoder
                for frame in pkt.decode():
                    vpts.append(round(frame.pts * frame.time_base * 90000))
            elif pkt.size and pkt.pts is not None:
                apts.append(round(pkt.pts * pkt.time_base * 44100))
        assert vs.codec_context.width == 320


@pytest.mark.parametrize("case", ["plain", "bframes", "reconnect"])
def test_pyav_plays_live_master_playlist(
    case: str, av_fixture: Fixture, bframes_fixture: Fixture
) -> None:
    """Two fixture lengths fed in real time: continuous, with B-frames (CTS != 0), or with a
    publisher reconnect in the middle (timestamps restart; output stays continuous)."""
    fx = bframes_fixture if case == "bframes" else av_fixture
    packets: list[MediaPacket | None]
    if case == "reconnect":
        one = demux_packets(fx.path)
        packets = [*one, None, *one]
    else:
        packets = list(shifted(demux_packets(fx.path), 2, fx.seconds))
    registry = HlsRegistry(HlsSettings(segment_duration=1.0))
    with live_server(registry) as srv:
        stream = registry.open("alice", time.time())
        feeder = Feeder(srv, stream, packets)
        feeder.start()
        deadline = time.monotonic() + 10
        while stream.master_playlist() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        vpts, apts, errors = _read_all(f"{srv.base}/alice/master.m3u8")
        assert feeder.done.wait(15)
    assert errors == []
    frames = 2 * fx.fps * int(fx.seconds)
    # every frame arrives, in order, 1/30 s apart (ms-rounded input: +-1 ms)
    assert len(vpts) == frames
    steps = sorted({b - a for a, b in itertools.pairwise(vpts)})
    if case == "reconnect":  # one step of up to 2 frames across the reconnect
        assert sum(1 for a, b in itertools.pairwise(vpts) if b - a > 3100) <= 1
        steps = steps[:-1] if steps[-1] <= 6100 else steps
    assert set(steps) <= {2910, 2970, 2990, 3000, 3010, 3060, 3090}, steps
    assert len(apts) > 300
    jumps = [b - a for a, b in itertools.pairwise(apts) if b - a != 1024]
    assert len(jumps) <= (1 if case == "reconnect" else 0) and all(j > 0 for j in jumps)
