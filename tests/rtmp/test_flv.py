"""FLV audio/video payloads to MediaPackets."""

from __future__ import annotations

import pytest

from kitch.media import MediaPacket
from kitch.rtmp.errors import RtmpProtocolError, UnsupportedCodecError
from kitch.rtmp.flv import FlvTagParser, TimestampUnwrapper

AVCC = bytes.fromhex("0142c00dffe10004674200") + bytes.fromhex("01000368ce3c")
AVCC2 = bytes.fromhex("0164001fffe10004676400") + bytes.fromhex("01000368ce3c")
ASC = bytes.fromhex("1210")
NALU = b"\x00\x00\x00\x02\x65\x88"


def avc(frame_type: int, packet_type: int, cts: int, body: bytes) -> bytes:
    return bytes([(frame_type << 4) | 7, packet_type]) + cts.to_bytes(3, "big", signed=True) + body


def aac(packet_type: int, body: bytes) -> bytes:
    return bytes([0xAF, packet_type]) + body


def test_avc_sequence_header_and_frames() -> None:
    p = FlvTagParser()
    assert p.video(0, avc(1, 0, 0, AVCC)) == [
        MediaPacket("video", "h264", 0, 0, AVCC, is_config=True)
    ]
    assert p.video(40, avc(1, 1, 80, NALU)) == [
        MediaPacket("video", "h264", 40, 120, NALU, keyframe=True)
    ]
    # Negative composition time (signed 24-bit), inter frame.
    assert p.video(80, avc(2, 1, -40, NALU)) == [MediaPacket("video", "h264", 80, 40, NALU)]
    assert p.video(90, avc(1, 2, 0, b"")) == []  # end of sequence
    assert p.video(90, bytes([0x57, 0])) == []  # video info/command frame


def test_repeated_sequence_header_is_swallowed_and_a_change_is_reported() -> None:
    p = FlvTagParser()
    assert len(p.video(0, avc(1, 0, 0, AVCC))) == 1
    assert p.video(1000, avc(1, 0, 0, AVCC)) == []
    changed = p.video(2000, avc(1, 0, 0, AVCC2))
    assert changed == [MediaPacket("video", "h264", 2000, 2000, AVCC2, is_config=True)]
    assert p.audio(0, aac(0, ASC))[0].is_config
    assert p.audio(5, aac(0, ASC)) == []
    assert p.audio(6, aac(0, b"\x11\x90"))[0].data == b"\x11\x90"


def test_frames_before_config_are_dropped_and_counted() -> None:
    p = FlvTagParser()
    assert p.video(0, avc(1, 1, 0, NALU)) == []
    assert p.audio(0, aac(1, b"\x21\x00")) == []
    assert p.dropped == 2


def test_aac() -> None:
    p = FlvTagParser()
    assert p.audio(10, aac(0, ASC)) == [MediaPacket("audio", "aac", 10, 10, ASC, is_config=True)]
    assert p.audio(33, aac(1, b"\x21\x00")) == [
        MediaPacket("audio", "aac", 33, 33, b"\x21\x00", keyframe=True)
    ]
    assert p.audio_codec == "aac"


def test_legacy_hevc_codec_id_12() -> None:
    p = FlvTagParser()
    hvcc = b"\x01" + bytes(22)
    assert p.video(0, bytes([0x1C, 0, 0, 0, 0]) + hvcc)[0].codec == "hevc"


@pytest.mark.parametrize(
    "payload",
    [
        bytes([0x12, 0]),  # Sorenson H.263
        bytes([0x14, 0]),  # VP6
        bytes([0x90]) + b"vp08",  # Enhanced RTMP, FourCC VP8
    ],
)
def test_unsupported_video_codecs(payload: bytes) -> None:
    with pytest.raises(UnsupportedCodecError, match="not supported"):
        FlvTagParser().video(0, payload)


@pytest.mark.parametrize("payload", [bytes([0x2F, 0]), bytes([0x90]) + b"ac-3", bytes([0xBF, 0])])
def test_unsupported_audio_codecs(payload: bytes) -> None:
    with pytest.raises(UnsupportedCodecError, match="not supported"):
        FlvTagParser().audio(0, payload)


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("video", bytes([0x17, 1])),
        ("video", avc(1, 0, 0, b"\x00\x01")),
        ("video", avc(1, 7, 0, b"x")),
        ("audio", bytes([0xAF])),
        ("audio", aac(0, b"\x12")),
        ("audio", aac(5, b"x")),
    ],
)
def test_malformed_tags(kind: str, payload: bytes) -> None:
    p = FlvTagParser()
    with pytest.raises(RtmpProtocolError):
        p.video(0, payload) if kind == "video" else p.audio(0, payload)


def test_timestamps_unwrap_across_32_bit_rollover() -> None:
    u = TimestampUnwrapper()
    stamps = [0xFFFFFF00, 0xFFFFFFF0, 0x10, 0xFFFFFFE0, 0x500, 0x80000000, 0xF0000000, 0x100]
    assert [u.unwrap(s) for s in stamps] == [
        0xFFFFFF00,
        0xFFFFFFF0,
        (1 << 32) + 0x10,
        0xFFFFFFE0,  # slightly late (non-monotonic), before the wrap
        (1 << 32) + 0x500,
        (1 << 32) + 0x80000000,
        (1 << 32) + 0xF0000000,
        (2 << 32) + 0x100,
    ]


def test_video_timestamps_unwrap_in_packets() -> None:
    p = FlvTagParser()
    p.video(0xFFFFFFF0, avc(1, 0, 0, AVCC))
    pkt = p.video(0x20, avc(1, 1, -0x20, NALU))[0]
    assert pkt.dts == (1 << 32) + 0x20 and pkt.pts == 1 << 32
