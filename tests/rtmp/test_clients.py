"""Real encoders (PyAV/FFmpeg, the ffmpeg CLI, GStreamer's librtmp rtmpsink) against the session.

The session is driven by tests/rtmp/harness.py over real TCP sockets. PyAV runs in a child
process: it holds the GIL while it connects, which would starve a server thread in-process.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from kitch.media import MediaPacket
from kitch.rtmp import Connected, MetadataReceived, PublishRequested, Unpublished
from tests.rtmp.harness import Connection, RtmpTestServer
from tests.support.media import Fixture, ffmpeg_cli_publish

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
REJECT = ("NetStream.Publish.BadName", "unknown stream key")


def pyav_publish(url: str, fixture: Fixture) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; from pathlib import Path; from tests.support.media import Fixture, "
        "publish_pyav; fx = Fixture(Path(sys.argv[2]), 4.0, 320, 240, 30, 30, 0, True, True); "
        "publish_pyav(sys.argv[1], fx, realtime=False)"
    )
    return subprocess.run(
        [sys.executable, "-c", code, url, str(fixture.path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def gst_publish(
    url: str, fixture: Fixture, sink: str = "rtmpsink"
) -> subprocess.CompletedProcess[str]:
    """rtmpsink is librtmp (what OBS uses); rtmp2sink is GStreamer's own client."""
    pipeline = (
        f"filesrc location={fixture.path} ! flvdemux name=d d.video ! queue ! h264parse ! "
        f"flvmux name=m streamable=true ! {sink} LOCATION d.audio ! queue ! aacparse ! m."
    ).split()
    live = " live=1" if sink == "rtmpsink" else ""
    pipeline[pipeline.index("LOCATION")] = f"location={url}{live}"
    return subprocess.run(
        ["gst-launch-1.0", "-q", *pipeline], capture_output=True, text=True, timeout=60
    )


def source_extradata(fixture: Fixture) -> tuple[bytes, bytes]:
    with av.open(str(fixture.path)) as f:
        v = f.streams.video[0].codec_context.extradata
        a = f.streams.audio[0].codec_context.extradata
        assert v is not None and a is not None
        return bytes(v), bytes(a)


def check_stream(conn: Connection, fixture: Fixture) -> tuple[list[MediaPacket], list[MediaPacket]]:
    assert conn.error is None
    kinds = [type(e) for e in conn.events]
    assert kinds[:2] == [Connected, PublishRequested]
    assert MetadataReceived in kinds and kinds[-1] is Unpublished
    meta = next(e for e in conn.events if isinstance(e, MetadataReceived)).values
    assert (meta["width"], meta["height"]) == (fixture.width, fixture.height)
    video, audio = conn.packets("video"), conn.packets("audio")
    avcc, asc = source_extradata(fixture)
    assert [p.data for p in video if p.is_config] == [avcc]
    assert [p.data for p in audio if p.is_config] == [asc]
    assert video[0].is_config and audio[0].is_config
    frames = [p for p in video if not p.is_config]
    assert len(frames) == int(fixture.seconds * fixture.fps)
    assert frames[0].keyframe
    assert sum(p.keyframe for p in frames) == len(frames) // fixture.gop
    dts = [p.dts for p in frames]
    assert dts == sorted(dts) and 0 <= dts[0] < 200 and 3500 < dts[-1] < 4500
    samples = [p for p in audio if not p.is_config]
    assert abs(len(samples) - fixture.seconds * 44100 / 1024) < 8
    assert all(p.keyframe and p.codec == "aac" for p in samples)
    for p in frames:  # AVCC: 4-byte length-prefixed NAL units that fill the payload
        pos = 0
        while pos < len(p.data):
            pos += 4 + int.from_bytes(p.data[pos : pos + 4], "big")
        assert pos == len(p.data)
    return frames, samples


def test_pyav_publish(av_fixture: Fixture) -> None:
    with RtmpTestServer() as srv:
        result = pyav_publish(srv.url("k1"), av_fixture)
        assert result.returncode == 0, result.stderr[-2000:]
        conn = srv.wait_closed()
    assert conn.session is not None and conn.session.handshake_scheme in (0, 1)
    check_stream(conn, av_fixture)


@pytest.mark.parametrize("sink", ["rtmpsink", "rtmp2sink"])
def test_gstreamer_publish(av_fixture: Fixture, sink: str) -> None:
    with RtmpTestServer() as srv:
        result = gst_publish(srv.url("k2"), av_fixture, sink)
        assert result.returncode == 0, result.stderr[-2000:]
        conn = srv.wait_closed()
    check_stream(conn, av_fixture)


def test_ffmpeg_cli_copy_with_bframes(bframes_fixture: Fixture) -> None:
    with RtmpTestServer() as srv:
        proc = ffmpeg_cli_publish(srv.url("k3"), bframes_fixture)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        conn = srv.wait_closed()
    frames, _ = check_stream(conn, bframes_fixture)
    offsets = [p.pts - p.dts for p in frames]
    assert any(o != offsets[0] for o in offsets)  # composition offsets vary with B-frames
    pts = [p.pts for p in frames]
    assert pts != sorted(pts)  # presentation order differs from decode order
    assert len(set(pts)) == len(pts)
    steps = {b - a for a, b in zip(sorted(pts), sorted(pts)[1:], strict=False)}
    assert steps <= {33, 34}


def assert_refused_fast(srv: RtmpTestServer, started: float, returncode: int) -> None:
    assert returncode != 0
    assert time.monotonic() - started < 5
    conn = srv.wait_closed(1)
    assert conn.session is not None and conn.session.wants_close
    assert [type(e) for e in conn.events] == [Connected, PublishRequested]


def test_rejected_pyav_fails_fast(av_fixture: Fixture) -> None:
    with RtmpTestServer(reject=REJECT) as srv:
        started = time.monotonic()
        result = pyav_publish(srv.url("bad"), av_fixture)
        assert_refused_fast(srv, started, result.returncode)


def test_rejected_ffmpeg_cli_fails_fast(av_fixture: Fixture) -> None:
    with RtmpTestServer(reject=REJECT) as srv:
        started = time.monotonic()
        proc = ffmpeg_cli_publish(srv.url("bad"), av_fixture)
        proc.communicate(timeout=30)
        assert_refused_fast(srv, started, proc.returncode)


@pytest.mark.parametrize("sink", ["rtmpsink", "rtmp2sink"])
def test_rejected_gstreamer_fails_fast(av_fixture: Fixture, sink: str) -> None:
    with RtmpTestServer(reject=REJECT) as srv:
        started = time.monotonic()
        result = gst_publish(srv.url("bad"), av_fixture, sink)
        assert_refused_fast(srv, started, result.returncode)
