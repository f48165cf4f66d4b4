"""The segmenter's per-frame work done natively (``_mux.video_step`` / ``audio_step``) gives
exactly what the segmenter's own Python methods give (the twin takes no frame, so the pure
segmenter is the oracle), and takes the common frames of a regular stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kitch import _mux_py
from kitch.hls import HlsSettings, segmenter
from kitch.hls.segmenter import Segmenter
from kitch.media import MediaPacket

native = pytest.importorskip("kitch._mux")
pytestmark = pytest.mark.native

SPS = bytes.fromhex("6742c00dda0507ec04400000030040000f03c50aa8")
PPS = bytes.fromhex("68ce0f2c80")
AVCC = bytes([1, SPS[1], SPS[2], SPS[3], 0xFF, 0xE1]) + len(SPS).to_bytes(2, "big") + SPS
AVCC += b"\x01" + len(PPS).to_bytes(2, "big") + PPS
ASC = {44100: bytes([0x12, 0x10]), 48000: bytes([0x11, 0x90])}
#: What segmenter state the two must agree on besides the events.
STATE = (
    "frame_rate", "repaired_dts", "dropped_packets", "forced_cuts", "audio_resyncs",
    "part_target", "target_duration", "_frame_ticks", "_last_vdts", "_a_next", "_grid",
    "_a_end", "_a_catchup",
)  # fmt: skip


@st.composite
def streams(draw: st.DrawFn) -> list[MediaPacket]:
    """An H.264 + AAC publish as encoders send it, with the irregularities they have:
    jitter, gaps, late and repeated stamps, stamps that jump for good, B-frames, irregular
    keyframes, audio that jumps."""
    fps = draw(st.sampled_from([30.0, 30000 / 1001, 25.0, 60.0, 24.0, 15.0, 29.0]))
    key_every = draw(st.integers(10, 150))
    bframes = draw(st.booleans())
    rate = draw(st.sampled_from([44100, 48000]))
    start = draw(st.sampled_from([0, 1000, 123456]))
    odd = st.sampled_from(["jitter", "gap", "late", "same", "shift", "key", "none", "none", "none"])
    packets = [
        MediaPacket("video", "h264", start, start, AVCC, True, True),
        MediaPacket("audio", "aac", start, start, ASC[rate], True, True),
    ]
    timed: list[tuple[int, int, MediaPacket]] = []
    k = shift = 0
    for i in range(draw(st.integers(30, 240))):
        how = draw(odd)
        k += 1 + (draw(st.integers(1, 40)) if how == "gap" else 0)
        shift += draw(st.sampled_from([2, 5, 9, 14, -9])) if how == "shift" else 0
        t = start + shift + round(k * 1000 / fps)
        t += draw(st.integers(-3, 3)) if how == "jitter" else 0
        t -= draw(st.integers(1, 80)) if how == "late" else 0
        t = timed[-1][0] if how == "same" and timed else t
        pts = t + (round(draw(st.integers(0, 3)) * 1000 / fps) if bframes else 0)
        data = b"\x00\x00\x00\x02\x65" + bytes([i % 256])
        key = i == 0 or i % key_every == 0 or how == "key"
        timed.append((t, 0, MediaPacket("video", "h264", t, pts, data, key)))
    audio_ms = float(start)
    skew = draw(st.sampled_from([1.0, 1.0, 1.0, 0.98, 1.02]))  # an audio clock that runs off
    for j in range(int((timed[-1][0] - start) * rate / 1024 / 1000)):
        audio_ms += 1024 * 1000 / rate * skew
        if draw(st.integers(0, 60)) == 0:
            audio_ms += draw(st.sampled_from([-300, -120, -60, 250, 1000]))
        t = round(audio_ms)
        timed.append((t, 1, MediaPacket("audio", "aac", t, t, bytes([0x21, j % 256]), True)))
    timed.sort(key=lambda x: (x[0], x[1]))
    return packets + [p for _, _, p in timed]


def run(packets: list[MediaPacket], twin: bool) -> tuple[list[Any], dict[str, Any]]:
    with pytest.MonkeyPatch.context() as mp:
        if twin:
            mp.setattr(segmenter, "_video_step", _mux_py.video_step)
            mp.setattr(segmenter, "_audio_step", _mux_py.audio_step)
        seg = Segmenter(HlsSettings(segment_duration=1.0, part_duration=0.2))
        events: list[Any] = []
        for i, p in enumerate(packets):
            events += seg.feed(p, 1_700_000_000.0 + i / 60)
        events += seg.end()
    return events, {name: getattr(seg, name) for name in STATE}


@settings(max_examples=150, derandomize=True, deadline=None)
@given(streams())
def test_native_steps_give_what_the_segmenter_gives(packets: list[MediaPacket]) -> None:
    assert run(packets, twin=False) == run(packets, twin=True)


@pytest.fixture
def counted() -> Iterator[dict[str, int]]:
    counts = {"video": 0, "audio": 0}

    def video(seg: Any, packet: Any, frame_type: Any) -> int:
        step: int = native.video_step(seg, packet, frame_type)
        counts["video"] += step > 0
        return step

    def audio(seg: Any, packet: Any, frame_type: Any) -> int:
        step: int = native.audio_step(seg, packet, frame_type)
        counts["audio"] += step > 0
        return step

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(segmenter, "_video_step", video)
        mp.setattr(segmenter, "_audio_step", audio)
        yield counts


@pytest.mark.parametrize(
    ("jump_ms", "audio_skew"),
    [(0, 1.0), (9, 1.0), (0, 1.01)],
    ids=["steady", "stamps-jump-for-good", "audio-clock-fast"],
)
def test_the_common_frames_take_the_native_steps(
    counted: dict[str, int], jump_ms: int, audio_skew: float
) -> None:
    """A regular 29.97 fps stream with B-frames: all but the keyframes and the first frames go
    the native way (without this the parity test above would pass with steps that take
    nothing); also after its stamps jump off the frame grid for good (a looped file, an encoder
    that skipped), where every later frame is off the grid; and with an audio clock that runs
    1 % fast against its stamps, where only the frames dropped to keep audio in step with video
    go the Python way (once the audio ran 100 ms ahead, every later frame used to)."""
    seg = Segmenter(HlsSettings())
    seg.feed(MediaPacket("video", "h264", 0, 0, AVCC, True, True))
    seg.feed(MediaPacket("audio", "aac", 0, 0, ASC[48000], True, True))
    frames = 1200  # 40 s: an audio clock 1 % fast is 400 ms ahead by the end
    for k in range(frames):
        t = round(k * 1001 / 30) + (jump_ms if k >= 300 else 0)
        seg.feed(MediaPacket("video", "h264", t, t + 67, b"\x00\x00\x00\x01\x65", k % 60 == 0))
        for j in range(round(k * 1001 / 30 * 48 / 1024), round((k + 1) * 1001 / 30 * 48 / 1024)):
            ms = round(j * 1024 / 48 / audio_skew)
            seg.feed(MediaPacket("audio", "aac", ms, ms, b"\x21\x00", True))
    assert seg.part_target is not None and seg.frame_rate == pytest.approx(29.97, abs=0.01)
    print(
        f"native: {counted['video']} of {frames} video frames, {counted['audio']} audio "
        f"({seg.dropped_packets} dropped)"
    )
    assert counted["video"] >= frames - frames // 60 - 10
    assert counted["audio"] >= frames * 1001 / 30 * 48 / 1024 - seg.dropped_packets - 10
    assert seg.dropped_packets <= frames * 1001 / 30 * 48 / 1024 * (audio_skew - 1) * 1.2
