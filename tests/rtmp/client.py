"""A scripted RTMP client built from our own wire pieces, for session tests."""

from __future__ import annotations

import os
import struct
from typing import Any

from kitch.rtmp import Event, RtmpServerSession
from kitch.rtmp.amf0 import amf0_decode_all, amf0_encode
from kitch.rtmp.chunks import ChunkWriter
from kitch.twins import rtmp

AVCC = bytes.fromhex("0142c00dffe10004674200") + bytes.fromhex("01000368ce3c")
ASC = bytes.fromhex("1210")


def c0c1() -> bytes:
    return b"\x03" + bytes(8) + os.urandom(1528)


class ScriptedClient:
    """Talks to a session in-process; ``mode`` "bytes" feeds one byte at a time."""

    def __init__(self, session: RtmpServerSession, mode: str = "whole") -> None:
        self.session = session
        self.mode = mode
        self.writer = ChunkWriter()
        self.reader = rtmp.ChunkReader()
        self.events: list[Event] = []
        self.replies: list[tuple[int, int, Any]] = []  # (msg_type, stream_id, decoded)
        self._skip = 3073
        self.now = 0.0

    def send(self, data: bytes) -> None:
        self.now += 0.01
        pieces = [data[i : i + 1] for i in range(len(data))] if self.mode == "bytes" else [data]
        for piece in pieces:
            self.session.receive_data(piece, self.now)
        while (event := self.session.next_event()) is not None:
            self.events.append(event)
        self.collect()

    def collect(self) -> None:
        out = self.session.data_to_send()
        if self._skip:
            taken = out[: self._skip]
            self._skip -= len(taken)
            out = out[len(taken) :]
        self.reader.feed(out)
        while (msg := self.reader.next_message()) is not None:
            _, msg_type, sid, _, payload = msg
            decoded: Any = amf0_decode_all(payload) if msg_type == 20 else payload
            self.replies.append((msg_type, sid, decoded))

    def handshake(self) -> None:
        self.send(c0c1())
        self.send(bytes(1536))

    def command(self, *values: Any, sid: int = 0, csid: int = 3) -> None:
        self.send(self.writer.write(csid, 20, sid, 0, amf0_encode(*values)))

    def connect(self, app: str = "live") -> None:
        self.command("connect", 1.0, {"app": app, "tcUrl": f"rtmp://h/{app}", "flashVer": "t/1"})

    def start_publish(self, name: Any = "key") -> None:
        self.handshake()
        self.connect()
        self.command("releaseStream", 2.0, None, name)
        self.command("FCPublish", 3.0, None, name)
        self.command("createStream", 4.0, None)
        self.command("publish", 5.0, None, name, "live", sid=1, csid=8)

    def media(self, msg_type: int, ts: int, payload: bytes, csid: int = 6) -> None:
        self.send(self.writer.write(csid, msg_type, 1, ts, payload))

    def statuses(self) -> list[dict[str, Any]]:
        return [v[3] for t, _, v in self.replies if t == 20 and v[0] == "onStatus"]


def video_tag(frame_type: int, packet_type: int, cts: int, body: bytes) -> bytes:
    head = bytes([(frame_type << 4) | 7, packet_type]) + cts.to_bytes(3, "big", signed=True)
    return head + body


def window_ack_size(size: int) -> bytes:
    return struct.pack(">I", size)
