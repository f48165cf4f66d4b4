"""Sans-IO RTMP server session (h11 style): bytes in, events out, bytes to send.

The caller owns the socket and the clock::

    session = RtmpServerSession(RtmpLimits(), now)
    session.receive_data(data, now)          # raises RtmpProtocolError: close the socket
    while (event := session.next_event()) is not None: ...
    sock.send(session.data_to_send())
    if session.wants_close: flush, then close

On :class:`PublishRequested` look the key up, then call :meth:`accept_publish` or
:meth:`reject_publish` (then ``receive_data(b"", now)`` to process anything that arrived while
the answer was pending). A :class:`Refused` event means the session refused the peer itself
(wrong app, bad name, unsupported codec): it ends any publish; flush and close. Acknowledgements
and pings are answered here.
"""

from __future__ import annotations

import enum
import os
import struct
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from kitch.media import MediaPacket
from kitch.rtmp.amf0 import amf0_decode_all, amf0_encode
from kitch.rtmp.chunks import ChunkWriter
from kitch.rtmp.errors import RtmpError, RtmpProtocolError, UnsupportedCodecError
from kitch.rtmp.events import (
    Connected,
    Event,
    MediaReceived,
    MetadataReceived,
    MetaValue,
    PublishRequested,
    Refused,
    Unpublished,
)
from kitch.rtmp.flv import AUDIO_FOURCCS, INGEST_CODECS, VIDEO_FOURCCS, FlvTagParser
from kitch.rtmp.handshake import HANDSHAKE_SIZE, handshake_reply
from kitch.rtmp.limits import RtmpLimits
from kitch.twins import rtmp as _core

#: Window acknowledgement size and peer bandwidth we announce (bytes).
WINDOW_ACK_SIZE = 2_500_000
#: Chunk size we switch to right after connect.
OUR_CHUNK_SIZE = 4096

_CSID_CONTROL = 2
_CSID_COMMAND = 3
_CSID_STREAM = 5

_MSG_SET_CHUNK_SIZE = 1
_MSG_ACK = 3
_MSG_USER_CONTROL = 4
_MSG_WINDOW_ACK = 5
_MSG_PEER_BANDWIDTH = 6
_MSG_AUDIO = 8
_MSG_VIDEO = 9
_MSG_DATA_AMF3 = 15
_MSG_COMMAND_AMF3 = 17
_MSG_DATA = 18
_MSG_COMMAND = 20

_UC_STREAM_BEGIN = 0
_UC_PING_REQUEST = 6
_UC_PING_RESPONSE = 7


class State(enum.Enum):
    HANDSHAKE = "handshake"  # waiting for C0+C1
    HANDSHAKE_ACK = "handshake-ack"  # waiting for C2
    CONNECTING = "connecting"  # waiting for connect
    CONNECTED = "connected"
    PUBLISH_PENDING = "publish-pending"  # PublishRequested emitted, waiting for the server
    PUBLISHING = "publishing"
    CLOSED = "closed"  # refused or failed; ignores further input


# the states as module constants: the hot path compares them at every read
_HANDSHAKE, _HANDSHAKE_ACK = State.HANDSHAKE, State.HANDSHAKE_ACK
_PUBLISH_PENDING, _PUBLISHING, _CLOSED = State.PUBLISH_PENDING, State.PUBLISHING, State.CLOSED


class RtmpServerSession:
    """One RTMP connection, server side. ``app`` (default "live") is the only accepted app.

    ``accepted_codecs`` (default: every codec :mod:`kitch.rtmp.flv` ingests) are the Kitch codec
    names the output can carry; media in another codec is refused with
    NetStream.Publish.Rejected. The connect answer lists their Enhanced RTMP FourCCs
    (``fourCcList``).

    Stats: ``bytes_received``, ``messages_received``, ``media_packets``, ``last_data_at``,
    ``last_media_at`` (the ``now`` of the last media message, None before any),
    ``dropped_media`` (media outside an accepted publish or before its codec config).
    """

    def __init__(
        self,
        limits: RtmpLimits,
        now: float,
        app: str = "live",
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
        accepted_codecs: Iterable[str] | None = None,
    ) -> None:
        self.limits = limits
        self.app = app
        self.state = State.HANDSHAKE
        self.wants_close = False
        self.close_reason = ""
        self.stream_key: str | None = None
        self.handshake_scheme: int | None = None
        self.created_at = now
        self.last_data_at = now
        self.last_media_at: float | None = None
        self.bytes_received = 0
        self.messages_received = 0
        self.media_packets = 0
        self._dropped_unpublished = 0
        self._random = random_bytes
        self._handshake = bytearray()
        self._reader = _core.ChunkReader(limits.max_message_size, limits.max_chunk_streams)
        self._writer = ChunkWriter()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._peer_window = 0
        self._acked = 0
        self._next_stream_id = 1
        self._publish_stream_id = 0
        self.accepted_codecs = (
            INGEST_CODECS if accepted_codecs is None else frozenset(accepted_codecs)
        )
        self._flv = FlvTagParser(self.accepted_codecs)
        #: Set by the caller while a publish is live: ``lane(packet)`` may take a common frame
        #: instead of it becoming a :class:`MediaReceived` event (True: taken); it is only
        #: offered frames while publishing and no event is waiting, so the order of packets
        #: holds. The caller also clears it (after an unpublish, the next publish is its call).
        self.lane: Callable[[MediaPacket], bool] | None = None

    # -- public API -------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Bytes held for this connection (handshake, unparsed input, unfinished messages)."""
        return len(self._handshake) + self._reader.buffered

    @property
    def dropped_media(self) -> int:
        return self._dropped_unpublished + self._flv.dropped

    @property
    def video_codec(self) -> str | None:
        return self._flv.video_codec

    @property
    def audio_codec(self) -> str | None:
        return self._flv.audio_codec

    def receive_data(self, data: bytes, now: float) -> bool:
        """Feed bytes from the socket. Raises :class:`RtmpProtocolError` on bad input or a
        broken limit (the session is then closed). Input after a refusal is ignored.

        While a publish awaits ``accept_publish()`` / ``reject_publish()``, input is only
        buffered; ``receive_data(b"", now)`` after answering processes what arrived meanwhile.

        Returns whether the caller has something to do: events to read, bytes to send or a
        close (False for most reads while media flows).
        """
        state = self.state
        if state is _CLOSED:
            return False
        self.bytes_received += len(data)
        self.last_data_at = now
        events = self._events
        try:
            if state is _HANDSHAKE or state is _HANDSHAKE_ACK:
                data = self._handshake_data(data)
                if not data:
                    return bool(self._out)
            reader = self._reader
            reader.feed(data)
            while not self.wants_close:
                state = self.state
                if state is _PUBLISHING:
                    # the common frames become events (or go to the lane) natively; the rest
                    # comes back here
                    fast = self._flv.fast
                    try:
                        message = fast.drain(reader, events, self.lane)
                    finally:  # also what it took before a bad message
                        taken = fast.taken
                        if taken:
                            self.messages_received += taken
                            self.media_packets += taken
                            self.last_media_at = now
                elif state is _PUBLISH_PENDING:
                    break  # nothing more is parsed until the server has answered
                else:
                    message = reader.next_message()
                if message is None:
                    break
                self.messages_received += 1
                kind = message[1]
                if kind in (_MSG_VIDEO, _MSG_AUDIO):  # the hot path: no _handle(*message)
                    self._media(kind, message[3], message[4], now)
                else:
                    self._handle(*message, now)
            if reader.buffered > self.limits.max_buffered_bytes:
                raise RtmpProtocolError(
                    f"more than {self.limits.max_buffered_bytes} bytes buffered"
                )
        except RtmpProtocolError as exc:
            self._fail(str(exc))
            raise
        except RtmpError as exc:
            self._fail(str(exc))
            raise RtmpProtocolError(str(exc)) from exc
        if self._peer_window and self.bytes_received - self._acked >= self._peer_window:
            self._ack()
        return bool(events or self._out or self.wants_close)

    def next_event(self) -> Event | None:
        """The next event, or None."""
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        """Bytes to write to the socket (and forget)."""
        if not self._out:  # the usual answer while media flows: no new bytes object
            return b""
        out = bytes(self._out)
        self._out.clear()
        return out

    def accept_publish(self) -> None:
        """Answer the pending publish with Stream Begin + NetStream.Publish.Start."""
        if self.state is not State.PUBLISH_PENDING:
            raise RuntimeError(f"no publish pending (state {self.state.value})")
        sid = self._publish_stream_id
        self._send(_CSID_CONTROL, _MSG_USER_CONTROL, 0, struct.pack(">HI", _UC_STREAM_BEGIN, sid))
        self._status(
            sid, "status", "NetStream.Publish.Start", f"{self.stream_key} is now published."
        )
        self.state = State.PUBLISHING

    def reject_publish(self, code: str, description: str) -> None:
        """Queue an onStatus with level "error" (e.g. NetStream.Publish.BadName, .Rejected);
        then ``wants_close`` is true: flush ``data_to_send()`` and close the socket.

        Also ends a publish that is already live (e.g. its key was rotated); no
        :class:`Unpublished` event follows, the caller knows why it ended.
        """
        if self.state is not State.CLOSED:
            self._status(self._publish_stream_id, "error", code, description)
        self._close(f"{code}: {description}")

    # -- handshake --------------------------------------------------------------------------

    def _handshake_data(self, data: bytes) -> bytes:
        hs = self._handshake
        hs += data
        if self.state is State.HANDSHAKE:
            if hs[0] != 3:
                raise RtmpProtocolError(f"unsupported RTMP version byte {hs[0]}")
            if len(hs) < HANDSHAKE_SIZE + 1:
                return b""
            reply, scheme = handshake_reply(bytes(hs[: HANDSHAKE_SIZE + 1]), self._random(3064))
            self.handshake_scheme = scheme
            self._out += reply
            del hs[: HANDSHAKE_SIZE + 1]
            self.state = State.HANDSHAKE_ACK
        if len(hs) < HANDSHAKE_SIZE:
            return b""
        rest = bytes(hs[HANDSHAKE_SIZE:])
        hs.clear()
        self.state = State.CONNECTING
        return rest

    # -- messages ---------------------------------------------------------------------------

    def _handle(
        self, csid: int, msg_type: int, stream_id: int, ts: int, payload: bytes, now: float
    ) -> None:
        if msg_type in (_MSG_VIDEO, _MSG_AUDIO):
            self._media(msg_type, ts, payload, now)
        elif msg_type == _MSG_COMMAND:
            self._command(stream_id, self._decode(payload))
        elif msg_type == _MSG_COMMAND_AMF3:
            self._command(stream_id, self._decode(payload[1:]))
        elif msg_type == _MSG_DATA:
            self._data(self._decode(payload))
        elif msg_type == _MSG_DATA_AMF3:
            self._data(self._decode(payload[1:]))
        elif msg_type == _MSG_USER_CONTROL:
            if len(payload) >= 6 and payload[:2] == b"\x00\x06":
                self._send(_CSID_CONTROL, _MSG_USER_CONTROL, 0, b"\x00\x07" + payload[2:6])
        elif msg_type == _MSG_WINDOW_ACK:
            if len(payload) < 4:
                raise RtmpProtocolError("short Window Acknowledgement Size message")
            self._peer_window = int.from_bytes(payload[:4], "big")
        # Set Chunk Size and Abort are applied by the reader; acks, peer bandwidth and
        # unknown types need nothing from us.

    def _decode(self, payload: bytes) -> list[Any]:
        return amf0_decode_all(payload, self.limits.max_amf_depth)

    def _media(self, msg_type: int, ts: int, payload: bytes, now: float) -> None:
        if self.state is not State.PUBLISHING:
            self._dropped_unpublished += 1
            return
        self.last_media_at = now
        flv = self._flv
        try:
            packets = flv.video(ts, payload) if msg_type == _MSG_VIDEO else flv.audio(ts, payload)
        except UnsupportedCodecError as exc:
            self._refuse(self._publish_stream_id, "NetStream.Publish.Rejected", str(exc))
            return
        if packets:
            self.media_packets += len(packets)
            self._events.extend(map(MediaReceived, packets))

    def _data(self, values: list[Any]) -> None:
        if values and values[0] == "@setDataFrame":
            values = values[1:]
        if len(values) < 2 or values[0] != "onMetaData" or not isinstance(values[1], dict):
            return
        if self.state is not State.PUBLISHING:
            return
        scalars: dict[str, MetaValue] = {
            str(k): v
            for k, v in values[1].items()
            if v is None or isinstance(v, (float, str, bool))
        }
        self._events.append(MetadataReceived(scalars))

    def _command(self, stream_id: int, values: list[Any]) -> None:
        if not values or not isinstance(values[0], str):
            raise RtmpProtocolError("command message without a command name")
        name = values[0]
        txn = values[1] if len(values) > 1 and isinstance(values[1], float) else 0.0
        args = values[2:]
        if name == "connect":
            self._connect(txn, args)
            return
        if self.state is State.CONNECTING:
            raise RtmpProtocolError(f"command {name!r} before connect")
        if name == "createStream":
            sid = self._next_stream_id
            self._next_stream_id += 1
            self._command_reply("_result", txn, None, float(sid))
        elif name == "publish":
            self._publish(stream_id, args)
        elif name == "FCPublish":
            key = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
            self._command_reply("_result", txn, None, None)
            self._send_command(
                _CSID_COMMAND, 0, "onFCPublish", 0.0, None,
                {"code": "NetStream.Publish.Start", "description": key},
            )  # fmt: skip
        elif name in ("FCUnpublish", "deleteStream", "closeStream"):
            if self.state in (State.PUBLISHING, State.PUBLISH_PENDING):
                self.state = State.CONNECTED
                self._flv = FlvTagParser(self.accepted_codecs)
                self._events.append(Unpublished(name))
        elif name in ("releaseStream", "_checkbw"):
            self._command_reply("_result", txn, None, None)
        elif name == "getStreamLength":
            self._command_reply("_result", txn, None, 0.0)
        # Anything else (_result, onBWDone, unknown commands) is ignored.

    def _connect(self, txn: float, args: list[Any]) -> None:
        if self.state is not State.CONNECTING:
            raise RtmpProtocolError("connect sent twice")
        props = args[0] if args and isinstance(args[0], dict) else {}
        app = props.get("app")
        app = app if isinstance(app, str) else ""
        if app.split("?", 1)[0].strip("/") != self.app:
            code = "NetConnection.Connect.Rejected"
            desc = f"unknown application {app[:64]!r}; publish to rtmp://HOST/{self.app}/KEY"
            self._command_reply(
                "_error", txn, None, {"level": "error", "code": code, "description": desc}
            )
            self._events.append(Refused(code, desc))
            self._close(f"{code}: {desc}")
            return
        win = struct.pack(">I", WINDOW_ACK_SIZE)
        self._send(_CSID_CONTROL, _MSG_WINDOW_ACK, 0, win)
        self._send(_CSID_CONTROL, _MSG_PEER_BANDWIDTH, 0, win + b"\x02")
        self._send(_CSID_CONTROL, _MSG_SET_CHUNK_SIZE, 0, struct.pack(">I", OUR_CHUNK_SIZE))
        self._writer.chunk_size = OUR_CHUNK_SIZE
        self._command_reply(
            "_result", txn,
            {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0, "fourCcList": self._fourccs()},
            {
                "level": "status", "code": "NetConnection.Connect.Success",
                "description": "Connection succeeded.", "objectEncoding": 0.0,
            },
        )  # fmt: skip
        self.state = State.CONNECTED
        fourccs = props.get("fourCcList")
        self._events.append(
            Connected(
                app=app,
                tc_url=_text(props.get("tcUrl")),
                flash_ver=_text(props.get("flashVer")),
                fourcc_list=tuple(v for v in fourccs if isinstance(v, str))
                if isinstance(fourccs, list)
                else (),
            )
        )

    def _publish(self, stream_id: int, args: list[Any]) -> None:
        if self.state is not State.CONNECTED:
            raise RtmpProtocolError(f"publish in state {self.state.value}")
        self._publish_stream_id = stream_id
        name = args[1] if len(args) > 1 else None
        if not isinstance(name, str):
            self._refuse(stream_id, "NetStream.Publish.BadName", "the stream key must be a string")
            return
        key = name.split("?", 1)[0]
        if not key or len(key) > self.limits.max_stream_key_length:
            self._refuse(
                stream_id,
                "NetStream.Publish.BadName",
                f"the stream key must be 1 to {self.limits.max_stream_key_length} characters",
            )
            return
        kind = args[2] if len(args) > 2 and isinstance(args[2], str) else "live"
        self.stream_key = key
        self.state = State.PUBLISH_PENDING
        self._events.append(PublishRequested(key, kind))

    def _fourccs(self) -> list[str]:
        table = {**VIDEO_FOURCCS, **AUDIO_FOURCCS}
        return [fc.decode() for fc, codec in table.items() if codec in self.accepted_codecs]

    # -- output -----------------------------------------------------------------------------

    def _send(self, csid: int, msg_type: int, stream_id: int, payload: bytes) -> None:
        self._out += self._writer.write(csid, msg_type, stream_id, 0, payload)

    def _send_command(self, csid: int, stream_id: int, *values: Any) -> None:
        self._send(csid, _MSG_COMMAND, stream_id, amf0_encode(*values))

    def _command_reply(self, name: str, txn: float, *values: Any) -> None:
        self._send_command(_CSID_COMMAND, 0, name, txn, *values)

    def _status(self, stream_id: int, level: str, code: str, description: str) -> None:
        info = {"level": level, "code": code, "description": description}
        self._send_command(_CSID_STREAM, stream_id, "onStatus", 0.0, None, info)

    def _refuse(self, stream_id: int, code: str, description: str) -> None:
        self._status(stream_id, "error", code, description)
        self._events.append(Refused(code, description))
        self._close(f"{code}: {description}")

    def _close(self, reason: str) -> None:
        self.state = State.CLOSED
        self.wants_close = True
        self.close_reason = self.close_reason or reason

    def _fail(self, reason: str) -> None:
        self._close(f"protocol error: {reason}")

    def _ack(self) -> None:
        self._acked = self.bytes_received
        seq = struct.pack(">I", self.bytes_received & 0xFFFFFFFF)
        self._send(_CSID_CONTROL, _MSG_ACK, 0, seq)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
