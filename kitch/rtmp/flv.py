"""FLV audio/video tag payloads (as RTMP messages 8 and 9 carry them) to MediaPackets.

Ingested:

* legacy FLV: H.264 (codec id 7), the non-standard HEVC under codec id 12 (same layout as AVC,
  Larix and some CDNs), AAC (sound format 10);
* Enhanced RTMP (veovera v1/v2): video FourCC ``avc1``, ``hvc1``, ``av01``, ``vp09``
  (SequenceStart, CodedFrames, CodedFramesX, SequenceEnd, Metadata), audio FourCC ``mp4a``
  (AAC) and ``Opus``; ModEx preludes are skipped; multitrack packets use the first track id
  seen per kind and log the others once.

Data is put in the formats pinned in :mod:`kitch.media`. Other codecs, and codecs outside the
``accepted`` set (what the configured output can carry), raise :class:`UnsupportedCodecError`,
which the session turns into a publish refusal. Malformed tags raise
:class:`RtmpProtocolError`; nothing else escapes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kitch.media import AUDIO_CODECS, VIDEO_CODECS, MediaPacket
from kitch.rtmp.errors import RtmpProtocolError, UnsupportedCodecError
from kitch.rtmp.events import MediaReceived
from kitch.twins import rtmp as _core

#: 32-bit RTMP timestamps to 64-bit ones (native, with a pure-Python twin).
TimestampUnwrapper = _core.TimestampUnwrapper

log = logging.getLogger("kitch.rtmp.flv")

#: FLV video codec ids we ingest, with their Kitch codec names.
VIDEO_CODEC_IDS = {7: "h264", 12: "hevc"}
#: Enhanced RTMP video FourCCs we ingest.
VIDEO_FOURCCS = {b"avc1": "h264", b"hvc1": "hevc", b"av01": "av1", b"vp09": "vp9"}
#: Enhanced RTMP audio FourCCs we ingest.
AUDIO_FOURCCS = {b"mp4a": "aac", b"Opus": "opus"}
#: Every codec this parser can produce (the default ``accepted`` set).
INGEST_CODECS = frozenset(VIDEO_FOURCCS.values()) | frozenset(AUDIO_FOURCCS.values())

_VIDEO_CODEC_NAMES = {
    2: "Sorenson H.263",
    3: "Screen video",
    4: "VP6",
    5: "VP6 alpha",
    6: "Screen video 2",
}
_AUDIO_FORMAT_NAMES = {
    0: "PCM",
    1: "ADPCM",
    2: "MP3",
    3: "PCM LE",
    4: "Nellymoser 16k",
    5: "Nellymoser 8k",
    6: "Nellymoser",
    7: "G.711 A-law",
    8: "G.711 mu-law",
    11: "Speex",
    14: "MP3 8k",
    15: "device-specific",
}
_KEYFRAME_TYPES = (1, 4)
_VIDEO_INFO_FRAME = 5

# Enhanced RTMP packet types.
_SEQUENCE_START = 0
_CODED_FRAMES = 1
_SEQUENCE_END = 2
_CODED_FRAMES_X = 3  # video: no composition time
_V_METADATA = 4
_V_MPEG2TS_SEQUENCE_START = 5
_V_MULTITRACK = 6
_A_MULTICHANNEL_CONFIG = 4
_A_MULTITRACK = 5
_MODEX = 7
_ONE_TRACK, _MANY_TRACKS, _MANY_TRACKS_MANY_CODECS = 0, 1, 2


class _Cursor:
    """Reads a tag payload front to back; running past the end is a protocol error."""

    __slots__ = ("data", "pos", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 1  # the first byte (the tag header) is read by the caller
        self.what = what

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise RtmpProtocolError(f"truncated {self.what}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")

    def rest(self) -> memoryview:
        """The rest of the payload, as a view (no copy)."""
        out = memoryview(self.data)[self.pos :]
        self.pos = len(self.data)
        return out

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def skip_modex(self, packet_type: int) -> int:
        """Skip Enhanced RTMP v2 ModEx preludes; return the real packet type."""
        while packet_type == _MODEX:
            size = self.u8() + 1
            if size == 256:
                size = int.from_bytes(self.take(2), "big") + 1
            self.take(size)  # e.g. TimestampOffsetNano: sub-millisecond, ignored
            packet_type = self.u8() & 0x0F
        return packet_type

    def tracks(self, multitrack_type: int) -> list[tuple[bytes, int, bytes | memoryview]]:
        """Split a multitrack body into ``(fourcc, track_id, body)``."""
        if multitrack_type > _MANY_TRACKS_MANY_CODECS:
            raise RtmpProtocolError(f"unknown multitrack type {multitrack_type} in {self.what}")
        shared = self.take(4) if multitrack_type != _MANY_TRACKS_MANY_CODECS else b""
        out: list[tuple[bytes, int, bytes | memoryview]] = []
        while True:
            fourcc = self.take(4) if multitrack_type == _MANY_TRACKS_MANY_CODECS else shared
            track = self.u8()
            if multitrack_type == _ONE_TRACK:
                out.append((fourcc, track, self.rest()))
                return out
            out.append((fourcc, track, self.take(self.u24())))
            if not self.remaining:
                return out


def _vp9_record(config: bytes) -> bytes:
    """The VPCodecConfigurationRecord without the vpcC version/flags word FFmpeg puts first.

    A bare record starts with profile, level, then bitDepth in the high nibble of byte 2,
    never 0; so ``01 00 00 00`` can only be version 1 + flags 0.
    """
    if len(config) >= 12 and config[:4] == b"\x01\x00\x00\x00":
        return config[4:]
    return config


def _check_video_config(codec: str, config: bytes | memoryview) -> bytes:
    config = bytes(config)  # kept and compared: a config is rare and small
    if codec == "vp9":
        config = _vp9_record(config)
        ok = len(config) >= 8
    elif codec == "av1":
        ok = len(config) >= 4 and config[0] == 0x81  # marker 1, version 1
    elif codec == "hevc":
        ok = len(config) >= 23 and config[0] == 1
    else:
        ok = len(config) >= 7 and config[0] == 1
    if not ok:
        raise RtmpProtocolError(f"malformed {codec} sequence header")
    return config


def _fourcc_text(fourcc: bytes) -> str:
    return fourcc.decode("latin-1").encode("unicode_escape").decode("ascii")


class FlvTagParser:
    """Parses the audio and video messages of one publish; keeps per-track state.

    ``accepted`` (default: every codec this module ingests) is the set of Kitch codec names the
    output can carry; media in another codec raises :class:`UnsupportedCodecError`.

    A sequence header identical to the previous one is swallowed; a different one yields a new
    config packet (the muxer treats it as a codec change). Frames that arrive before their
    track's configuration are dropped and counted in ``dropped``.
    """

    def __init__(self, accepted: Iterable[str] | None = None) -> None:
        self.accepted = INGEST_CODECS if accepted is None else frozenset(accepted)
        self._video_clock = TimestampUnwrapper()
        self._audio_clock = TimestampUnwrapper()
        #: The common frames, parsed natively (the session drains the chunk reader through it);
        #: kept in step with this parser's state: the codecs with a configuration, the tracks.
        self.fast = _core.MediaFastPath(
            self._video_clock, self._audio_clock, MediaPacket, MediaReceived
        )
        self.video_config: bytes | None = None
        self.audio_config: bytes | None = None
        self.video_codec: str | None = None
        self.audio_codec: str | None = None
        self.dropped = 0
        #: Multitrack: the track id used per kind, and the other track ids seen (ignored).
        self.track: dict[str, int] = {}
        self.ignored_tracks: set[tuple[str, int]] = set()

    # -- shared -------------------------------------------------------------------------------

    def _accept(self, kind: str, codec: str) -> None:
        if codec not in self.accepted:
            known = VIDEO_CODECS if kind == "video" else AUDIO_CODECS
            usable = [c for c in known if c in self.accepted]
            raise UnsupportedCodecError(
                f"{kind} codec {codec} cannot be carried by this server's output; "
                f"send {' or '.join(usable) or 'no ' + kind}"
            )

    def _use_track(self, kind: str, track: int, fourcc: bytes) -> bool:
        chosen = self.track.setdefault(kind, track)
        if kind == "video":
            self.fast.ex_video = chosen == 0
        else:
            self.fast.ex_audio = chosen == 0
        if track == chosen:
            return True
        if (kind, track) not in self.ignored_tracks:
            self.ignored_tracks.add((kind, track))
            log.info(
                "ignoring %s track %d (%s); only track %d is used",
                kind,
                track,
                _fourcc_text(fourcc),
                chosen,
            )
        return False

    def _video_config(self, codec: str, dts: int, config: bytes | memoryview) -> list[MediaPacket]:
        config = _check_video_config(codec, config)
        if config == self.video_config and codec == self.video_codec:
            return []
        self.video_config, self.video_codec = config, codec
        self.fast.video_codec = codec
        return [MediaPacket("video", codec, dts, dts, config, is_config=True)]

    def _video_frame(
        self, codec: str, dts: int, cts: int, frame_type: int, payload: bytes | memoryview
    ) -> list[MediaPacket]:
        if not payload:
            return []
        if self.video_config is None or self.video_codec != codec:
            self.dropped += 1
            return []
        keyframe = frame_type in _KEYFRAME_TYPES
        return [MediaPacket("video", codec, dts, dts + cts, payload, keyframe=keyframe)]

    def _audio_config(self, codec: str, dts: int, config: bytes | memoryview) -> list[MediaPacket]:
        config = bytes(config)  # kept and compared: a config is rare and small
        if codec == "aac" and len(config) < 2:
            raise RtmpProtocolError("malformed AAC sequence header")
        if codec == "opus" and (len(config) < 19 or not config.startswith(b"OpusHead")):
            raise RtmpProtocolError("malformed Opus sequence header (want an OpusHead)")
        if config == self.audio_config and codec == self.audio_codec:
            return []
        self.audio_config, self.audio_codec = config, codec
        self.fast.audio_codec = codec
        return [MediaPacket("audio", codec, dts, dts, config, is_config=True)]

    def _audio_frame(self, codec: str, dts: int, frame: bytes | memoryview) -> list[MediaPacket]:
        if not frame:
            return []
        if self.audio_config is None or self.audio_codec != codec:
            self.dropped += 1
            return []
        return [MediaPacket("audio", codec, dts, dts, frame, keyframe=True)]

    # -- video --------------------------------------------------------------------------------

    def video(self, timestamp: int, data: bytes) -> list[MediaPacket]:
        """Parse one video message payload taken at 32-bit ``timestamp`` (ms)."""
        if not data:
            return []
        head = data[0]
        if head & 0x80:
            return self._ex_video(timestamp, data)
        frame_type, codec_id = head >> 4, head & 0x0F
        if frame_type == _VIDEO_INFO_FRAME:
            return []
        codec = VIDEO_CODEC_IDS.get(codec_id)
        if codec is None:
            name = _VIDEO_CODEC_NAMES.get(codec_id, f"codec id {codec_id}")
            raise UnsupportedCodecError(f"video codec {name} is not supported; send H.264")
        if codec not in self.accepted:
            self._accept("video", codec)
        if len(data) < 5:
            raise RtmpProtocolError("video tag shorter than its AVC header")
        packet_type = data[1]
        dts = self._video_clock.unwrap(timestamp)
        if packet_type == 1:  # a coded frame, the hot path: a view of the message, no copy
            cts = int.from_bytes(data[2:5], "big", signed=True)
            return self._video_frame(codec, dts, cts, frame_type, memoryview(data)[5:])
        if packet_type == 0:
            return self._video_config(codec, dts, data[5:])
        if packet_type == 2:
            return []  # end of sequence
        raise RtmpProtocolError(f"unknown AVC packet type {packet_type}")

    def _ex_video(self, timestamp: int, data: bytes) -> list[MediaPacket]:
        cur = _Cursor(data, "Enhanced RTMP video tag")
        frame_type = (data[0] >> 4) & 0x07
        packet_type = cur.skip_modex(data[0] & 0x0F)
        if frame_type == _VIDEO_INFO_FRAME and packet_type != _V_METADATA:
            return []  # video command (seek start/end)
        if packet_type == _V_MULTITRACK:
            byte = cur.u8()
            packet_type = byte & 0x0F
            tracks = cur.tracks(byte >> 4)
        else:
            tracks = [(cur.take(4), 0, cur.rest())]
        dts = self._video_clock.unwrap(timestamp)
        out: list[MediaPacket] = []
        for fourcc, track, body in tracks:
            if self._use_track("video", track, fourcc):
                out += self._ex_video_body(fourcc, frame_type, packet_type, dts, body)
        return out

    def _ex_video_body(
        self,
        fourcc: bytes,
        frame_type: int,
        packet_type: int,
        dts: int,
        body: bytes | memoryview,
    ) -> list[MediaPacket]:
        codec = VIDEO_FOURCCS.get(fourcc)
        if codec is None:
            raise UnsupportedCodecError(
                f"video codec {_fourcc_text(fourcc)!r} is not supported; "
                "send H.264, HEVC, AV1 or VP9"
            )
        self._accept("video", codec)
        if packet_type == _SEQUENCE_START:
            return self._video_config(codec, dts, body)
        if packet_type in (_CODED_FRAMES, _CODED_FRAMES_X):
            cts = 0
            if packet_type == _CODED_FRAMES and codec in ("h264", "hevc"):
                if len(body) < 3:
                    raise RtmpProtocolError(f"{codec} coded frames without a composition time")
                cts = int.from_bytes(body[:3], "big", signed=True)
                body = body[3:]
            return self._video_frame(codec, dts, cts, frame_type, body)
        if packet_type in (_SEQUENCE_END, _V_METADATA, _V_MPEG2TS_SEQUENCE_START):
            return []  # end of sequence, HDR colour metadata, AV1 TS descriptor: not needed
        raise RtmpProtocolError(f"unknown Enhanced RTMP video packet type {packet_type}")

    # -- audio --------------------------------------------------------------------------------

    def audio(self, timestamp: int, data: bytes) -> list[MediaPacket]:
        """Parse one audio message payload taken at 32-bit ``timestamp`` (ms)."""
        if not data:
            return []
        sound_format = data[0] >> 4
        if sound_format == 9:
            return self._ex_audio(timestamp, data)
        if sound_format != 10:
            name = _AUDIO_FORMAT_NAMES.get(sound_format, f"sound format {sound_format}")
            raise UnsupportedCodecError(f"audio codec {name} is not supported; send AAC")
        if "aac" not in self.accepted:
            self._accept("audio", "aac")
        if len(data) < 2:
            raise RtmpProtocolError("audio tag shorter than its AAC header")
        dts = self._audio_clock.unwrap(timestamp)
        if data[1] == 1:  # a raw frame, the hot path: a view of the message, no copy
            return self._audio_frame("aac", dts, memoryview(data)[2:])
        if data[1] == 0:
            return self._audio_config("aac", dts, data[2:])
        raise RtmpProtocolError(f"unknown AAC packet type {data[1]}")

    def _ex_audio(self, timestamp: int, data: bytes) -> list[MediaPacket]:
        cur = _Cursor(data, "Enhanced RTMP audio tag")
        packet_type = cur.skip_modex(data[0] & 0x0F)
        if packet_type == _A_MULTITRACK:
            byte = cur.u8()
            packet_type = byte & 0x0F
            tracks = cur.tracks(byte >> 4)
        else:
            tracks = [(cur.take(4), 0, cur.rest())]
        dts = self._audio_clock.unwrap(timestamp)
        out: list[MediaPacket] = []
        for fourcc, track, body in tracks:
            if self._use_track("audio", track, fourcc):
                out += self._ex_audio_body(fourcc, packet_type, dts, body)
        return out

    def _ex_audio_body(
        self, fourcc: bytes, packet_type: int, dts: int, body: bytes | memoryview
    ) -> list[MediaPacket]:
        codec = AUDIO_FOURCCS.get(fourcc)
        if codec is None:
            raise UnsupportedCodecError(
                f"audio codec {_fourcc_text(fourcc)!r} is not supported; send AAC or Opus"
            )
        self._accept("audio", codec)
        if packet_type == _SEQUENCE_START:
            return self._audio_config(codec, dts, body)
        if packet_type == _CODED_FRAMES:
            return self._audio_frame(codec, dts, body)
        if packet_type in (_SEQUENCE_END, _A_MULTICHANNEL_CONFIG):
            return []
        raise RtmpProtocolError(f"unknown Enhanced RTMP audio packet type {packet_type}")
