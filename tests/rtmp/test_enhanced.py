"""Enhanced RTMP (FourCC video/audio, ModEx, multitrack) and legacy HEVC to MediaPackets.

The ``tests/data/pyav_*.flv`` captures were written by PyAV 18 (FFmpeg 8's FLV muxer, which
speaks Enhanced RTMP) from libx265, libsvtav1, libvpx-vp9 and libopus: real encoder output.
"""

from __future__ import annotations

import pytest

from kitch.media import MediaPacket
from kitch.rtmp import Connected, Refused, RtmpLimits, RtmpServerSession, State
from kitch.rtmp.errors import RtmpProtocolError, UnsupportedCodecError
from kitch.rtmp.flv import FlvTagParser
from tests.rtmp.client import ASC, ScriptedClient
from tests.rtmp.flvfile import DATA, flv_tags

HVCC = b"\x01" + bytes(22)
AV1C = b"\x81\x00\x0c\x00" + b"\x0a\x0b\x00\x00\x00\x24\xcf\x7f\x0d\xbf\xff\x30\x08"
VPCC = bytes([0, 31, 0x80, 2, 2, 2, 0, 0])  # profile 0, level 3.1, 8 bit
OPUS_HEAD = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00"


def ex_video(frame_type: int, packet_type: int, fourcc: bytes, body: bytes) -> bytes:
    return bytes([0x80 | (frame_type << 4) | packet_type]) + fourcc + body


def ex_audio(packet_type: int, fourcc: bytes, body: bytes) -> bytes:
    return bytes([0x90 | packet_type]) + fourcc + body


def run(path_name: str) -> list[MediaPacket]:
    parser = FlvTagParser()
    out: list[MediaPacket] = []
    for kind, ts, body in flv_tags(DATA / path_name):
        out += parser.video(ts, body) if kind == 9 else parser.audio(ts, body)
    assert parser.dropped == 0
    return out


@pytest.mark.parametrize(
    ("name", "codec", "config_check"),
    [
        ("pyav_hevc.flv", "hevc", lambda c: c[0] == 1 and len(c) >= 23),
        ("pyav_av1.flv", "av1", lambda c: c[0] == 0x81),
        ("pyav_vp9.flv", "vp9", lambda c: len(c) == 8 and c[0] in (0, 1, 2, 3)),
        ("pyav_opus.flv", "opus", lambda c: c.startswith(b"OpusHead")),
    ],
)
def test_real_encoder_captures(name: str, codec: str, config_check: object) -> None:
    packets = run(name)
    assert {p.codec for p in packets} == {codec}
    assert packets[0].is_config and config_check(packets[0].data)  # type: ignore[operator]
    frames = [p for p in packets if not p.is_config]
    assert len(frames) >= 9 and all(p.data for p in frames)
    assert frames[0].keyframe
    dts = [p.dts for p in frames]
    assert dts == sorted(dts)
    if codec == "hevc":  # the capture's first HEVC frame is a length-prefixed IRAP NAL
        nal_type = (frames[0].data[4] >> 1) & 0x3F
        assert 16 <= nal_type <= 23 or nal_type in (32, 33, 34, 39)


def test_hevc_coded_frames_and_coded_frames_x() -> None:
    p = FlvTagParser()
    assert p.video(0, ex_video(1, 0, b"hvc1", HVCC)) == [
        MediaPacket("video", "hevc", 0, 0, HVCC, is_config=True)
    ]
    frame = b"\x00\x00\x00\x02\x26\x01"
    cts = (-20).to_bytes(3, "big", signed=True)
    assert p.video(40, ex_video(2, 1, b"hvc1", cts + frame)) == [
        MediaPacket("video", "hevc", 40, 20, frame)
    ]
    assert p.video(80, ex_video(1, 3, b"hvc1", frame)) == [
        MediaPacket("video", "hevc", 80, 80, frame, keyframe=True)
    ]
    assert p.video(90, ex_video(1, 2, b"hvc1", b"")) == []  # SequenceEnd
    assert p.video(90, ex_video(5, 4, b"hvc1", b"\x02\x00\x09colorInfo\x03\x00\x00\x09")) == []


def test_av1_and_vp9_coded_frames_carry_no_composition_time() -> None:
    p = FlvTagParser()
    p.video(0, ex_video(1, 0, b"av01", AV1C))
    tu = b"\x12\x00\x0a\x05abcde"
    assert p.video(33, ex_video(1, 1, b"av01", tu)) == [
        MediaPacket("video", "av1", 33, 33, tu, keyframe=True)
    ]
    q = FlvTagParser()
    # FFmpeg writes the vpcC version/flags word first; the packet holds the bare record.
    assert q.video(0, ex_video(1, 0, b"vp09", b"\x01\x00\x00\x00" + VPCC))[0].data == VPCC
    assert q.video(0, ex_video(1, 0, b"vp09", VPCC)) == []  # same record: swallowed
    assert q.video(5, ex_video(2, 1, b"vp09", b"vp9frame"))[0].data == b"vp9frame"


def test_avc_and_aac_sent_as_fourcc() -> None:
    avcc = bytes.fromhex("0142c00dffe10004674200") + bytes.fromhex("01000368ce3c")
    p = FlvTagParser()
    assert p.video(0, ex_video(1, 0, b"avc1", avcc))[0].codec == "h264"
    nalu = b"\x00\x00\x00\x02\x65\x88"
    assert p.video(10, ex_video(1, 1, b"avc1", b"\x00\x00\x28" + nalu)) == [
        MediaPacket("video", "h264", 10, 50, nalu, keyframe=True)
    ]
    assert p.audio(0, ex_audio(0, b"mp4a", ASC)) == [
        MediaPacket("audio", "aac", 0, 0, ASC, is_config=True)
    ]
    assert p.audio(23, ex_audio(1, b"mp4a", b"\x21\x00")) == [
        MediaPacket("audio", "aac", 23, 23, b"\x21\x00", keyframe=True)
    ]


def test_opus_with_multichannel_config() -> None:
    p = FlvTagParser()
    assert p.audio(0, ex_audio(0, b"Opus", OPUS_HEAD))[0].codec == "opus"
    assert p.audio(0, ex_audio(4, b"Opus", b"\x01\x02")) == []  # MultichannelConfig
    assert p.audio(20, ex_audio(1, b"Opus", b"\xfc\xff\xfe")) == [
        MediaPacket("audio", "opus", 20, 20, b"\xfc\xff\xfe", keyframe=True)
    ]


def test_modex_prelude_is_skipped() -> None:
    p = FlvTagParser()
    # ModEx: size-1 = 2 (3 bytes of TimestampOffsetNano), then type 0 | next packet type 0.
    video = bytes([0x80 | (1 << 4) | 7, 2, 0, 0, 5, 0x00]) + b"hvc1" + HVCC
    assert p.video(0, video)[0].data == HVCC
    long_modex = bytes([0x97, 255, 0x01, 0x00]) + bytes(257) + bytes([0x01]) + b"Opus" + b"\xfc"
    p.audio(0, ex_audio(0, b"Opus", OPUS_HEAD))
    assert p.audio(0, long_modex)[0].data == b"\xfc"


def test_multitrack_uses_the_first_track_and_counts_others() -> None:
    p = FlvTagParser()
    # ManyTracks (1), packet type SequenceStart, shared FourCC, then (track id, UI24 size, body).
    body = b"".join(t.to_bytes(1, "big") + len(HVCC).to_bytes(3, "big") + HVCC for t in (3, 4))
    tag = bytes([0x80 | (1 << 4) | 6, (1 << 4) | 0]) + b"hvc1" + body
    assert len(p.video(0, tag)) == 1
    assert p.track["video"] == 3 and p.ignored_tracks == {("video", 4)}
    # OneTrack (0) for track 3: the rest of the tag is the track body.
    frame = b"\x00\x00\x00\x02\x26\x01"
    one = bytes([0x80 | (1 << 4) | 6, (0 << 4) | 3]) + b"hvc1" + b"\x03" + frame
    assert p.video(40, one)[0].data == frame
    # ManyTracksManyCodecs (2): a FourCC per track; track 9 (AV1) is ignored.
    many = bytes([0x80 | (1 << 4) | 6, (2 << 4) | 3])
    many += b"av01" + b"\x09" + len(b"x").to_bytes(3, "big") + b"x"
    many += b"hvc1" + b"\x03" + len(frame).to_bytes(3, "big") + frame
    assert [x.codec for x in p.video(80, many)] == ["hevc"]
    # Audio multitrack, many codecs: Opus track 1 used, AAC track 2 ignored.
    a = bytes([0x95, (2 << 4) | 0]) + b"Opus\x01" + len(OPUS_HEAD).to_bytes(3, "big") + OPUS_HEAD
    a += b"mp4a\x02" + len(ASC).to_bytes(3, "big") + ASC
    assert [x.codec for x in p.audio(0, a)] == ["opus"]
    assert ("audio", 2) in p.ignored_tracks


def test_legacy_hevc_under_codec_id_12() -> None:
    p = FlvTagParser()
    assert p.video(0, bytes([0x1C, 0, 0, 0, 0]) + HVCC)[0].codec == "hevc"
    frame = b"\x00\x00\x00\x02\x26\x01"
    assert p.video(40, bytes([0x2C, 1, 0, 0, 40]) + frame) == [
        MediaPacket("video", "hevc", 40, 80, frame)
    ]


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("video", ex_video(1, 0, b"vp08", VPCC)),
        ("video", ex_video(1, 0, b"\x00\xff\x01\x02", b"")),
        ("audio", ex_audio(0, b"fLaC", b"x")),
        ("audio", ex_audio(0, b".mp3", b"x")),
    ],
)
def test_unknown_fourccs_are_unsupported(kind: str, payload: bytes) -> None:
    p = FlvTagParser()
    with pytest.raises(UnsupportedCodecError, match="not supported"):
        p.video(0, payload) if kind == "video" else p.audio(0, payload)


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("video", bytes([0x90])),  # no FourCC
        ("video", ex_video(1, 0, b"hvc1", b"\x02")),  # bad hvcC
        ("video", ex_video(1, 0, b"av01", b"\x01\x00\x00\x00")),  # bad av1C marker
        ("video", ex_video(1, 1, b"hvc1", b"\x00")),  # no composition time
        ("video", ex_video(1, 8, b"hvc1", b"")),  # unknown packet type
        ("video", bytes([0x96, 0x30]) + b"hvc1"),  # unknown multitrack type
        ("video", bytes([0x96, 0x10]) + b"hvc1\x01\x00\x00\x09ab"),  # track size past the end
        ("video", bytes([0x97, 0xFF])),  # ModEx cut short
        ("audio", ex_audio(0, b"Opus", b"NotOpus" + bytes(20))),
        ("audio", ex_audio(0, b"mp4a", b"\x12")),
        ("audio", ex_audio(6, b"Opus", b"")),
    ],
)
def test_malformed_enhanced_tags(kind: str, payload: bytes) -> None:
    p = FlvTagParser()
    with pytest.raises(RtmpProtocolError):
        p.video(0, payload) if kind == "video" else p.audio(0, payload)


@pytest.mark.parametrize(
    ("kind", "payload", "codec"),
    [
        ("video", ex_video(1, 0, b"av01", AV1C), "av1"),
        ("video", ex_video(1, 0, b"vp09", VPCC), "vp9"),
        ("audio", ex_audio(0, b"Opus", OPUS_HEAD), "opus"),
    ],
)
def test_codec_the_output_cannot_carry_is_refused_at_publish(
    kind: str, payload: bytes, codec: str
) -> None:
    session = RtmpServerSession(RtmpLimits(), 0.0, accepted_codecs={"h264", "hevc", "aac"})
    c = ScriptedClient(session)
    c.start_publish("key")
    fourccs = c.replies[3][2][2]["fourCcList"]
    assert fourccs == ["avc1", "hvc1", "mp4a"]
    session.accept_publish()
    c.send(b"")
    c.media(9 if kind == "video" else 8, 0, payload)
    refused = [e for e in c.events if isinstance(e, Refused)]
    assert len(refused) == 1 and refused[0].code == "NetStream.Publish.Rejected"
    assert codec in refused[0].description and "cannot be carried" in refused[0].description
    status = c.statuses()[-1]
    assert status["level"] == "error" and status["code"] == "NetStream.Publish.Rejected"
    assert session.wants_close and session.state is State.CLOSED


def test_connect_fourcc_list_is_reported() -> None:
    c = ScriptedClient(RtmpServerSession(RtmpLimits(), 0.0))
    c.handshake()
    c.command(
        "connect",
        1.0,
        {"app": "live", "tcUrl": "rtmp://h/live", "fourCcList": ["hvc1", "av01", 7.0]},
    )
    assert c.events == [Connected("live", "rtmp://h/live", "", ("hvc1", "av01"))]
    assert c.replies[3][2][2]["fourCcList"] == ["avc1", "hvc1", "av01", "vp09", "mp4a", "Opus"]
