"""Guards for the ingest's fast paths: they must not switch off without a test failing.

* The native modules are the ones the hot path uses when ``KITCH_PUREPYTHON`` is unset (a
  broken or missing build would otherwise fall back to the twins silently, ~10-50x slower).
* Frames travel from the RTMP message to the fMP4 muxer without a copy: the session hands
  each frame over as a ``memoryview`` of the message payload the chunk reader built, the
  segmenter keeps that view, and ``fragment()`` receives it as the sample data (a stray
  ``bytes(...)`` or slice of ``bytes`` anywhere on the way makes these tests fail).
* ``fragment()`` and the TS muxer take any buffer and give the same bytes as for ``bytes``,
  native and twin alike.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kitch import _mux_py, twins
from kitch.hls.registry import HlsRegistry
from kitch.media import MediaPacket
from kitch.rtmp import RtmpLimits, RtmpServerSession
from kitch.rtmp.amf0 import amf0_encode
from kitch.rtmp.chunks import ChunkWriter
from kitch.rtmp.events import MediaReceived, PublishRequested
from kitch.rtmp.handshake import HANDSHAKE_SIZE
from tests.support.media import Fixture

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
from pathlib import Path
import kitch
from kitch import twins
from kitch.hls import segmenter
from kitch.rtmp import RtmpLimits, RtmpServerSession
session = RtmpServerSession(RtmpLimits(), 0.0)
here = Path(kitch.__file__).parent
own = all(Path(m.__file__).parent == here for m in (twins.rtmp, twins.mux, twins.ingest))
print(twins.NATIVE, type(session._reader).__module__, segmenter._mux.__name__, own)
"""


def _muxers() -> list[Any]:
    out: list[Any] = [_mux_py]
    try:
        from kitch import _mux

        out.append(_mux)
    except ImportError:
        pass
    return out


def test_native_modules_are_the_hot_path_when_not_asked_for_the_twins() -> None:
    env = {k: v for k, v in os.environ.items() if k != twins.ENV_VAR}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    native, reader, mux, own = [*proc.stdout.split(), "", "", "", ""][:4]
    assert native == "True", (
        "the native modules did not load (build them: python setup.py build_ext --inplace); "
        f"got {proc.stdout!r}"
    )
    assert reader == "kitch._rtmp", proc.stdout  # the session's chunk reader
    assert mux == "kitch._mux", proc.stdout  # the segmenter's muxer
    assert own == "True", f"a native module was loaded from outside {ROOT / 'kitch'}: stale build?"


# -- the zero-copy path ------------------------------------------------------------------------


def _flv_tags(path: Path) -> Iterator[tuple[int, int, bytes]]:
    data = path.read_bytes()
    pos = struct.unpack(">I", data[5:9])[0] + 4
    while pos + 11 <= len(data):
        kind = data[pos] & 0x1F
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | (data[pos + 7] << 24)
        yield kind, ts, data[pos + 11 : pos + 11 + size]
        pos += 11 + size + 4


def _publish_reads(fixture: Fixture) -> list[bytes]:
    """The client side of a publish session, one read per message as FFmpeg writes them."""
    w = ChunkWriter()
    reads = [b"\x03" + bytes(HANDSHAKE_SIZE), bytes(HANDSHAKE_SIZE)]
    connect = {"app": "live", "type": "nonprivate", "tcUrl": "rtmp://127.0.0.1/live"}
    reads.append(w.write(3, 20, 0, 0, amf0_encode("connect", 1.0, connect)))
    reads.append(w.write(2, 1, 0, 0, struct.pack(">I", 4096)))
    w.chunk_size = 4096
    reads.append(w.write(3, 20, 0, 0, amf0_encode("createStream", 2.0, None)))
    reads.append(w.write(4, 20, 1, 0, amf0_encode("publish", 3.0, None, "key", "live")))
    for kind, ts, body in _flv_tags(fixture.path):
        if kind in (8, 9):
            reads.append(w.write(4 if kind == 8 else 6, kind, 1, ts, body))
    return reads


@pytest.mark.parametrize("mux", _muxers(), ids=lambda m: m.__name__)
def test_frames_reach_the_muxer_as_views_of_their_message(
    av_fixture: Fixture, monkeypatch: pytest.MonkeyPatch, mux: Any
) -> None:
    from kitch.hls import segmenter

    monkeypatch.setattr(segmenter, "_mux", mux)
    samples: list[Any] = []
    real = mux.fragment

    def recording(sequence: int, runs: Any) -> bytes:
        samples.extend(s[0] for _, _, ss in runs for s in ss)
        return bytes(real(sequence, runs))

    monkeypatch.setattr(mux, "fragment", recording)
    session = RtmpServerSession(RtmpLimits(), 0.0)
    stream = HlsRegistry().open("fast", 1000.0)
    frames: list[MediaPacket] = []
    for i, data in enumerate(_publish_reads(av_fixture)):
        session.receive_data(data, i * 0.01)
        while (event := session.next_event()) is not None:
            if isinstance(event, PublishRequested):
                session.accept_publish()
                session.receive_data(b"", i * 0.01)
            elif isinstance(event, MediaReceived):
                if not event.packet.is_config:
                    frames.append(event.packet)
                stream.feed(event.packet, 1000.0 + i * 0.01)
        session.data_to_send()
    stream.end(2000.0)
    # every frame is muxed but the few the segmenter drops (audio past the last video frame)
    assert len(frames) > 100 and len(frames) - 8 <= len(samples) <= len(frames), len(samples)
    header = {"video": 5, "audio": 2}  # FLV AVC / AAC packet header before the frame
    for packet in frames:
        data = packet.data
        assert isinstance(data, memoryview), f"a {packet.kind} frame was copied to {type(data)}"
        # a view of the whole message payload the chunk reader built, minus the FLV header
        assert isinstance(data.obj, bytes) and len(data.obj) == len(data) + header[packet.kind]
    by_id = {id(p.data): p.data for p in frames}
    for sample in samples:
        # the muxer got the very views the session made: no copy on the way
        assert isinstance(sample, memoryview) and by_id.get(id(sample)) is sample


@pytest.mark.parametrize("mux", _muxers(), ids=lambda m: m.__name__)
def test_fragment_reads_views_as_it_reads_bytes(mux: Any) -> None:
    payloads = [bytes(range(i, i + 40)) * (i + 1) for i in range(6)]
    message = b"\x17\x01\x00\x00\x00" + payloads[0]
    views = [memoryview(message)[5:], *(memoryview(p) for p in payloads[1:])]
    as_bytes = [(payloads[0], 3000, 0, True), *((p, 3000, 1500, False) for p in payloads[1:])]
    as_views = [(v, d, c, k) for v, (_, d, c, k) in zip(views, as_bytes, strict=True)]
    audio = [(memoryview(b"\x21" * 300), 1024, 0, True)]
    expected = mux.fragment(7, [(1, 90000, as_bytes), (2, 44100, [(b"\x21" * 300, 1024, 0, True)])])
    got = mux.fragment(7, [(1, 90000, as_views), (2, 44100, audio)])
    assert type(got) is bytes and got == expected
    assert got == _mux_py.fragment(7, [(1, 90000, as_bytes), (2, 44100, audio)])


@pytest.mark.parametrize("mux", _muxers(), ids=lambda m: m.__name__)
def test_ts_muxer_reads_views_as_it_reads_bytes(mux: Any) -> None:
    sps = b"\x67\x42\x00\x1e\xab\x40\x50\x1e\xc8"
    pps = b"\x68\xce\x38\x80"
    params = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps
    nal = b"\x65" + bytes(range(200))
    frame = len(nal).to_bytes(4, "big") + nal
    message = b"\x17\x01\x00\x00\x00" + frame
    ts = mux.TsMuxer("h264", params, 4, "aac", b"\x12\x10")
    twin = _mux_py.TsMuxer("h264", params, 4, "aac", b"\x12\x10")
    assert ts.video(memoryview(message)[5:], 9000, 6000, True) == twin.video(
        frame, 9000, 6000, True
    )
    aac = b"\x21" * 100
    assert ts.audio(memoryview(b"\xaf\x01" + aac)[2:], 9000) == twin.audio(aac, 9000)
