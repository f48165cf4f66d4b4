"""The native media fast path (``MediaFastPath``) and its twin take exactly the messages the FLV
parser would turn into one coded frame, and make the same packet of them; anything else is left
to the parser, so a session with the fast path sees what the parser alone would give."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kitch import _rtmp_py
from kitch.media import MediaPacket
from kitch.rtmp import flv
from kitch.rtmp.chunks import ChunkWriter
from kitch.rtmp.errors import RtmpError
from kitch.rtmp.events import MediaReceived

pytestmark = pytest.mark.native

MODULES: list[ModuleType] = [_rtmp_py]
try:
    from kitch import _rtmp

    MODULES.append(_rtmp)
except ImportError:  # pragma: no cover - the native build is missing
    pass

AVCC = bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 4]) + b"\x67\x64\x00\x1f" + b"\x01\x00\x02\x68\xee"
HVCC = bytes([1]) + bytes(22)
AV1C = bytes([0x81, 0x08, 0x0C, 0x00])
ASC = bytes([0x12, 0x10])
OPUS_HEAD = b"OpusHead" + bytes([1, 2, 0x38, 1, 0x80, 0xBB, 0, 0, 0, 0, 0])
FRAME = b"\x00\x00\x00\x05\x65\x88\x84\x00\x10"


def parser_with(mod: ModuleType) -> flv.FlvTagParser:
    """A parser whose clocks and fast path come from ``mod`` (native or twin)."""
    with pytest.MonkeyPatch.context() as mp:  # the parser picks them at construction only
        mp.setattr(flv, "_core", mod)
        mp.setattr(flv, "TimestampUnwrapper", mod.TimestampUnwrapper)
        parser = flv.FlvTagParser()
    assert type(parser.fast).__module__ == mod.__name__
    return parser


def parse(parser: flv.FlvTagParser, msg_type: int, ts: int, payload: bytes) -> list[Any]:
    """What the parser alone makes of one message (packets with their bytes, or the error)."""
    try:
        packets = parser.video(ts, payload) if msg_type == 9 else parser.audio(ts, payload)
    except RtmpError as exc:
        return [type(exc).__name__, str(exc)]
    return [(p._replace(data=bytes(p.data)), type(p.data)) for p in packets]


def with_fast(parser: flv.FlvTagParser, msg_type: int, ts: int, payload: bytes) -> list[Any]:
    """The same message as the session handles it: the fast path first, else the parser."""
    packet = parser.fast.packet(msg_type, ts, payload)
    if packet is None:
        return parse(parser, msg_type, ts, payload)
    assert type(packet) is MediaPacket
    return [(packet._replace(data=bytes(packet.data)), type(packet.data))]


# -- message templates ------------------------------------------------------------------------


def legacy_video(frame_type: int, codec_id: int, packet_type: int, cts: int, body: bytes) -> bytes:
    head = bytes([frame_type << 4 | codec_id, packet_type])
    return head + cts.to_bytes(3, "big", signed=True) + body


def ex_video(frame_type: int, packet_type: int, fourcc: bytes, body: bytes) -> bytes:
    return bytes([0x80 | frame_type << 4 | packet_type]) + fourcc + body


def ex_audio(packet_type: int, fourcc: bytes, body: bytes) -> bytes:
    return bytes([0x90 | packet_type]) + fourcc + body


FOURCCS = st.sampled_from([b"avc1", b"hvc1", b"av01", b"vp09", b"mp4a", b"Opus", b"xxxx"])
BODIES = st.sampled_from([b"", FRAME, AVCC, b"\x00\x00\x01" + FRAME, b"\x00\x00"])
#: Valid configurations, so that frames after them have a codec to go to.
CONFIGS = st.sampled_from([
    (9, legacy_video(1, 7, 0, 0, AVCC)),
    (9, legacy_video(1, 12, 0, 0, HVCC)),
    (9, ex_video(1, 0, b"avc1", AVCC)),
    (9, ex_video(1, 0, b"hvc1", HVCC)),
    (9, ex_video(1, 0, b"av01", AV1C)),
    (9, ex_video(1, 0, b"vp09", FRAME)),
    (8, bytes([0xAF, 0]) + ASC),
    (8, ex_audio(0, b"mp4a", ASC)),
    (8, ex_audio(0, b"Opus", OPUS_HEAD)),
])  # fmt: skip
MESSAGES = st.one_of(
    CONFIGS,
    st.builds(
        lambda f, c, t, cts, b: (9, legacy_video(f, c, t, cts, b)),
        st.sampled_from([1, 2, 3, 4, 5]),
        st.sampled_from([7, 12, 2]),
        st.sampled_from([1, 1, 1, 0, 2, 3]),
        st.integers(-(1 << 23), (1 << 23) - 1),
        BODIES,
    ),
    st.builds(
        lambda f, t, c, b: (9, ex_video(f, t, c, b)),
        st.sampled_from([1, 2, 5]),
        st.sampled_from([1, 3, 1, 3, 0, 2, 4, 6, 7]),
        FOURCCS,
        BODIES,
    ),
    st.builds(lambda t, b: (8, bytes([0xAF, t]) + b), st.sampled_from([1, 1, 0, 2]), BODIES),
    st.builds(
        lambda t, c, b: (8, ex_audio(t, c, b)), st.sampled_from([1, 1, 0, 5, 7]), FOURCCS, BODIES
    ),
    st.builds(lambda t, b: (t, b), st.sampled_from([8, 9]), st.binary(max_size=12)),
)
#: Steps of the message clock (32 bits, it wraps): mostly small, now and then a jump.
STEPS = st.one_of(
    *[st.integers(-50, 100)] * 12,
    st.sampled_from([1 << 31, (1 << 31) + 1, (1 << 31) - 1, 1 << 30, -(1 << 31)]),
)
STARTS = st.sampled_from([0, (1 << 32) - 200, (1 << 31) - 100])
VIDEO_FORMS = [(None, 7, AVCC), (None, 12, HVCC), (b"avc1", 0, AVCC), (b"hvc1", 0, HVCC),
               (b"av01", 0, AV1C), (b"vp09", 0, FRAME)]  # fmt: skip
AUDIO_FORMS = [(None, ASC), (b"mp4a", ASC), (b"Opus", OPUS_HEAD)]


@st.composite
def streams(draw: st.DrawFn) -> list[tuple[int, bytes]]:
    """A publish as an encoder sends it (a configuration, then frames of that codec), with
    odd frames, other codecs' configurations and garbage mixed in."""
    fourcc, codec_id, vcfg = draw(st.sampled_from(VIDEO_FORMS))
    afourcc, acfg = draw(st.sampled_from(AUDIO_FORMS))

    def video(frame_type: int, packet_type: int, cts: int, body: bytes) -> bytes:
        if fourcc is None:
            return legacy_video(frame_type, codec_id, packet_type, cts, body)
        prefix = cts.to_bytes(3, "big", signed=True) if packet_type == 1 else b""
        return ex_video(frame_type, packet_type, fourcc, prefix + body)

    def audio(packet_type: int, body: bytes) -> bytes:
        if afourcc is None:
            return bytes([0xAF, packet_type]) + body
        return ex_audio(packet_type, afourcc, body)

    out = [(9, video(1, 0, 0, vcfg)), (8, audio(0, acfg))]
    for _ in range(draw(st.integers(0, 40))):
        pick = draw(st.integers(0, 9))
        if pick < 4:
            frame_type = draw(st.sampled_from([1, 2, 2, 2, 3, 4, 5]))
            packet_type = draw(st.sampled_from([1, 1, 1, 3, 0, 2]))
            cts = draw(st.integers(-(1 << 23), (1 << 23) - 1))
            out.append((9, video(frame_type, packet_type, cts, draw(BODIES))))
        elif pick < 7:
            out.append((8, audio(draw(st.sampled_from([1, 1, 1, 0, 2])), draw(BODIES))))
        elif pick == 7:
            out.append(draw(CONFIGS))
        else:
            out.append(draw(MESSAGES))
    return out


@pytest.mark.parametrize("mod", MODULES, ids=lambda m: m.__name__)
@settings(max_examples=400, derandomize=True, deadline=None)
@given(STARTS, streams(), st.lists(STEPS, min_size=50, max_size=50))
def test_fast_path_gives_what_the_parser_gives(
    mod: ModuleType, start: int, messages: list[tuple[int, bytes]], steps: list[int]
) -> None:
    alone, fast = parser_with(mod), parser_with(mod)
    ts = start
    for (msg_type, payload), step in zip(messages, steps, strict=False):
        ts = (ts + step) % (1 << 32)
        assert with_fast(fast, msg_type, ts, payload) == parse(alone, msg_type, ts, payload)
    assert fast.dropped == alone.dropped
    assert fast._video_clock.unwrap(7) == alone._video_clock.unwrap(7)
    assert fast._audio_clock.unwrap(7) == alone._audio_clock.unwrap(7)


@pytest.mark.parametrize("mod", MODULES, ids=lambda m: m.__name__)
def test_the_common_frames_take_the_fast_path(mod: ModuleType) -> None:
    """Without this, the tests above would pass with a fast path that takes nothing."""
    p = parser_with(mod)
    frame = legacy_video(2, 7, 1, 40, FRAME)
    assert p.fast.packet(9, 0, frame) is None  # no configuration yet: the parser drops it
    p.video(0, legacy_video(1, 7, 0, 0, AVCC))
    p.audio(0, bytes([0xAF, 0]) + ASC)
    packet = p.fast.packet(9, 33, frame)
    assert packet == MediaPacket("video", "h264", 33, 73, memoryview(frame)[5:], False)
    assert type(packet.data) is memoryview and packet.data.obj is frame  # a view, no copy
    key = p.fast.packet(9, 66, legacy_video(1, 7, 1, 0, FRAME))
    assert key is not None and key.keyframe
    audio = p.fast.packet(8, 40, b"\xaf\x01" + FRAME)
    assert audio == MediaPacket("audio", "aac", 40, 40, FRAME, True)
    assert p.fast.packet(9, 99, legacy_video(1, 7, 0, 0, AVCC)) is None  # configs: the parser's
    # Enhanced RTMP once its track 0 is chosen
    p.video(100, ex_video(1, 0, b"hvc1", HVCC))
    assert p.fast.packet(9, 133, ex_video(2, 1, b"hvc1", b"\x00\x00\x10" + FRAME)) == MediaPacket(
        "video", "hevc", 133, 149, FRAME, False
    )
    assert p.fast.packet(9, 166, ex_video(1, 3, b"hvc1", FRAME)) == MediaPacket(
        "video", "hevc", 166, 166, FRAME, True
    )


@pytest.mark.parametrize("mod", MODULES, ids=lambda m: m.__name__)
def test_drain_stops_at_the_first_message_it_does_not_take(mod: ModuleType) -> None:
    p = parser_with(mod)
    p.video(0, legacy_video(1, 7, 0, 0, AVCC))
    w = ChunkWriter()
    frames = [legacy_video(2, 7, 1, 0, FRAME + bytes([i])) for i in range(3)]
    data = b"".join(w.write(6, 9, 1, 10 * i, f) for i, f in enumerate(frames))
    data += w.write(3, 20, 1, 0, b"\x02\x00\x04ping") + w.write(6, 9, 1, 40, frames[0])
    reader = mod.ChunkReader()
    reader.feed(data)
    events: list[Any] = []
    message = p.fast.drain(reader, events)
    assert p.fast.taken == 3 and message is not None and message[1] == 20
    assert [type(e) for e in events] == [MediaReceived] * 3
    assert [bytes(e.packet.data) for e in events] == [f[5:] for f in frames]
    assert p.fast.drain(reader, events) is None and p.fast.taken == 1 and len(events) == 4
