"""RtmpServerSession driven by a scripted client, fed whole and one byte at a time."""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kitch.media import MediaPacket
from kitch.rtmp import (
    Connected,
    MediaReceived,
    MetadataReceived,
    PublishRequested,
    Refused,
    RtmpLimits,
    RtmpProtocolError,
    RtmpServerSession,
    State,
    Unpublished,
)
from kitch.rtmp.amf0 import amf0_encode
from tests.rtmp.chunks import chunk0, chunk3
from tests.rtmp.client import ASC, AVCC, ScriptedClient, c0c1, video_tag

pytestmark = pytest.mark.native  # runs again on the twin chunk reader

CAPTURE = Path(__file__).parent.parent / "data" / "rtmp_pyav_publish.bin"
NALU = b"\x00\x00\x00\x02\x65\x88"


def new(mode: str = "whole", **limits: int) -> ScriptedClient:
    return ScriptedClient(RtmpServerSession(RtmpLimits(**limits), 0.0), mode)


@pytest.mark.parametrize("mode", ["whole", "bytes"])
def test_publish_flow(mode: str) -> None:
    c = new(mode)
    c.start_publish("key?token=1")
    assert c.events == [
        Connected("live", "rtmp://h/live", "t/1", ()),
        PublishRequested("key", "live"),
    ]
    names = [v[0] for t, _, v in c.replies if t == 20]
    assert names == ["_result", "_result", "_result", "onFCPublish", "_result"]
    assert c.replies[0][:2] == (5, 0) and c.replies[1][0] == 6 and c.replies[2][0] == 1
    assert c.replies[3][2][3]["code"] == "NetConnection.Connect.Success"
    assert c.reader.chunk_size == 4096
    assert c.replies[-1][2] == ["_result", 4.0, None, 1.0]  # createStream -> stream id 1
    c.media(9, 0, video_tag(1, 0, 0, AVCC))  # held until the publish is answered
    assert len(c.events) == 2 and c.session.buffered > 0
    c.session.accept_publish()
    c.send(b"")
    assert c.replies[-2] == (4, 0, b"\x00\x00\x00\x00\x00\x01")  # Stream Begin 1
    assert c.statuses()[-1]["code"] == "NetStream.Publish.Start"
    assert c.session.state is State.PUBLISHING
    c.send(
        c.writer.write(
            4,
            18,
            1,
            0,
            amf0_encode("@setDataFrame", "onMetaData", {"width": 320.0, "nested": {"a": 1}}),
        )
    )
    c.media(9, 33, video_tag(1, 1, 66, NALU))
    c.media(8, 10, b"\xaf\x00" + ASC)
    c.media(8, 33, b"\xaf\x01\x21\x00")
    assert c.events[3] == MetadataReceived({"width": 320.0})
    assert [e.packet for e in c.events[2:] if isinstance(e, MediaReceived)] == [
        MediaPacket("video", "h264", 0, 0, AVCC, is_config=True),
        MediaPacket("video", "h264", 33, 99, NALU, keyframe=True),
        MediaPacket("audio", "aac", 10, 10, ASC, is_config=True),
        MediaPacket("audio", "aac", 33, 33, b"\x21\x00", keyframe=True),
    ]
    assert c.session.last_media_at == c.now
    assert c.session.media_packets == 4
    c.command("FCUnpublish", 6.0, None, "key")
    c.command("deleteStream", 7.0, None, 1.0)
    assert c.events[-1] == Unpublished("FCUnpublish")
    assert c.session.state is State.CONNECTED and not c.session.wants_close
    c.media(8, 60, b"\xaf\x01\x21\x00")
    assert c.session.dropped_media == 1


def test_reject_publish_sends_error_status_then_wants_close() -> None:
    c = new()
    c.start_publish("nope")
    c.session.reject_publish("NetStream.Publish.BadName", "unknown stream key")
    c.collect()
    assert c.statuses()[-1] == {
        "level": "error",
        "code": "NetStream.Publish.BadName",
        "description": "unknown stream key",
    }
    assert c.session.wants_close
    c.send(b"ignored after close")


def test_wrong_app_is_refused_by_the_session() -> None:
    c = new()
    c.handshake()
    c.connect("other")
    assert isinstance(c.events[-1], Refused)
    assert c.events[-1].code == "NetConnection.Connect.Rejected"
    assert c.replies[-1][2][0] == "_error" and c.replies[-1][2][3]["level"] == "error"
    assert c.session.wants_close


@pytest.mark.parametrize("name", [True, None, 5.0, "k" * 65536, ""])
def test_bad_publish_names_are_refused(name: object) -> None:
    c = new()
    c.start_publish(name)
    assert not any(isinstance(e, PublishRequested) for e in c.events)
    assert isinstance(c.events[-1], Refused) and c.events[-1].code == "NetStream.Publish.BadName"
    assert c.statuses()[-1]["level"] == "error"
    assert c.session.wants_close


def test_unsupported_codec_refuses_the_publish() -> None:
    c = new()
    c.start_publish()
    c.session.accept_publish()
    c.media(9, 0, bytes([0x14, 0, 0, 0]))  # VP6
    assert isinstance(c.events[-1], Refused) and "VP6" in c.events[-1].description
    assert c.statuses()[-1]["code"] == "NetStream.Publish.Rejected"
    assert c.session.wants_close


def test_ping_request_gets_a_response() -> None:
    c = new()
    c.handshake()
    c.connect()
    c.send(c.writer.write(2, 4, 0, 0, b"\x00\x06\x00\x00\x12\x34"))
    assert c.replies[-1] == (4, 0, b"\x00\x07\x00\x00\x12\x34")


def test_acknowledgement_when_the_peer_window_is_crossed() -> None:
    c = new()
    c.handshake()
    c.send(c.writer.write(2, 5, 0, 0, struct.pack(">I", 3100)))
    assert not [r for r in c.replies if r[0] == 3]
    c.connect()
    c.command("_checkbw", 9.0, None)
    acks = [r for r in c.replies if r[0] == 3]
    assert len(acks) == 1
    assert 3100 <= struct.unpack(">I", acks[0][2])[0] <= c.session.bytes_received


def test_bad_version_byte_fails_at_once() -> None:
    s = RtmpServerSession(RtmpLimits(), 0.0)
    with pytest.raises(RtmpProtocolError, match="version"):
        s.receive_data(b"\x06", 0.0)
    assert s.wants_close


def test_garbage_after_the_handshake() -> None:
    c = new()
    c.handshake()
    with pytest.raises(RtmpProtocolError):
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


def test_command_before_connect() -> None:
    c = new()
    c.handshake()
    with pytest.raises(RtmpProtocolError, match="before connect"):
        c.command("publish", 1.0, None, "key")


def test_buffered_bytes_are_capped() -> None:
    c = new(max_buffered_bytes=10_000, max_message_size=1 << 20)
    c.handshake()
    c.send(c.writer.write(2, 1, 0, 0, struct.pack(">I", 4096)))
    with pytest.raises(RtmpProtocolError, match="buffered"):
        c.send(chunk0(6, 0, 1 << 20, 9, 1, bytes(4096)))
        for _ in range(5):
            c.send(chunk3(6, bytes(4096)))


def test_connect_then_silence_holds_nothing() -> None:
    c = new()
    c.handshake()
    c.connect()
    assert c.session.buffered == 0 and c.session.last_data_at == c.now


def test_handshake_split_anywhere() -> None:
    s = RtmpServerSession(RtmpLimits(), 0.0)
    data = c0c1() + bytes(1536)
    for i in range(0, len(data), 700):
        s.receive_data(data[i : i + 700], 0.0)
    assert s.state is State.CONNECTING and len(s.data_to_send()) == 3073


def replay(data: bytes, step: int) -> tuple[list[object], RtmpServerSession]:
    s = RtmpServerSession(RtmpLimits(), 0.0)
    events: list[object] = []
    for i in range(0, len(data), step):
        s.receive_data(data[i : i + step], i / 1e6)
        while (e := s.next_event()) is not None:
            events.append(e)
            if isinstance(e, PublishRequested):
                s.accept_publish()
                s.receive_data(b"", i / 1e6)
        s.data_to_send()
    return events, s


def test_replay_of_a_captured_pyav_session() -> None:
    data = CAPTURE.read_bytes()
    whole, session = replay(data, len(data))
    media = [e.packet for e in whole if isinstance(e, MediaReceived)]
    assert session.handshake_scheme in (0, 1)  # FFmpeg sends the digest form
    assert sum(p.kind == "video" and not p.is_config for p in media) == 120
    assert sum(p.kind == "audio" and p.is_config for p in media) == 1
    assert isinstance(whole[-1], Unpublished)
    assert replay(data, 1000)[0] == whole
    assert replay(data, 7)[0] == whole


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_after_handshake_raise_only_protocol_errors(data: bytes) -> None:
    s = RtmpServerSession(RtmpLimits(max_message_size=1 << 16), 0.0)
    s.receive_data(c0c1() + bytes(1536), 0.0)
    try:
        s.receive_data(data, 0.0)
    except RtmpProtocolError:
        assert s.wants_close


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.data())
def test_mutated_capture_raises_only_protocol_errors(data: st.DataObject) -> None:
    raw = bytearray(CAPTURE.read_bytes()[:12000])
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(3073, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    with contextlib.suppress(RtmpProtocolError):
        replay(bytes(raw), 4096)


def test_deeply_nested_amf_command_is_a_protocol_error() -> None:
    c = new()
    c.handshake()
    deep = b"\x02\x00\x07connect\x00" + bytes(8) + b"\x0a\x00\x00\x00\x01" * 10_000 + b"\x05"
    with pytest.raises(RtmpProtocolError, match="nesting"):
        c.send(
            chunk0(3, 0, len(deep), 20, 0, deep[:128])
            + b"".join(chunk3(3, deep[i : i + 128]) for i in range(128, len(deep), 128))
        )


def test_huge_chunk_size_then_a_message_that_never_ends() -> None:
    c = new()
    c.handshake()
    c.send(chunk0(2, 0, 4, 1, 0, struct.pack(">I", 0x7FFFFFFF)))
    with pytest.raises(RtmpProtocolError, match="exceeds"):
        c.send(chunk0(6, 0, 16 * 1024 * 1024 - 1, 9, 1, bytes(1000)))
    assert c.session.buffered < 2000
