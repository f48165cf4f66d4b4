"""FLV audio/video tag payloads (as RTMP messages 8 and 9 carry them) to MediaPackets.

Supported now: H.264 (codec id 7), legacy HEVC under codec id 12 (same layout as AVC), AAC
(sound format 10). Enhanced RTMP (ExVideoTagHeader / ExAudioTagHeader) and other codecs raise
:class:`UnsupportedCodecError`, which the session turns into a publish refusal.
"""

from __future__ import annotations

from kitch.media import MediaPacket
from kitch.rtmp.errors import RtmpProtocolError, UnsupportedCodecError

_WRAP = 1 << 32
_HALF = 1 << 31

#: FLV video codec ids we ingest, with their Kitch codec names.
VIDEO_CODEC_IDS = {7: "h264", 12: "hevc"}
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


class TimestampUnwrapper:
    """Turn 32-bit millisecond timestamps into 64-bit ones across rollovers.

    Each value is placed within 2^31 ms of the previous one, so both forward wraps and slightly
    late (non-monotonic) stamps land right. The first value is taken as is.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: int | None = None

    def unwrap(self, ts32: int) -> int:
        last = self._last
        if last is None:
            value = ts32
        else:
            value = (last & ~(_WRAP - 1)) | ts32
            if value - last > _HALF:
                value -= _WRAP
            elif last - value > _HALF:
                value += _WRAP
            if value < 0:
                value += _WRAP
        self._last = value
        return value


class FlvTagParser:
    """Parses the audio and video messages of one publish; keeps per-track state.

    A sequence header identical to the previous one is swallowed; a different one yields a new
    config packet (the muxer treats it as a codec change). Frames that arrive before their
    track's configuration are dropped and counted in ``dropped``.
    """

    def __init__(self) -> None:
        self._video_clock = TimestampUnwrapper()
        self._audio_clock = TimestampUnwrapper()
        self.video_config: bytes | None = None
        self.audio_config: bytes | None = None
        self.video_codec: str | None = None
        self.audio_codec: str | None = None
        self.dropped = 0

    def video(self, timestamp: int, data: bytes) -> list[MediaPacket]:
        """Parse one video message payload taken at 32-bit ``timestamp`` (ms)."""
        if not data:
            return []
        head = data[0]
        if head & 0x80:
            raise UnsupportedCodecError(
                "Enhanced RTMP video (FourCC codecs) is not supported yet; send H.264"
            )
        frame_type, codec_id = head >> 4, head & 0x0F
        if frame_type == _VIDEO_INFO_FRAME:
            return []
        codec = VIDEO_CODEC_IDS.get(codec_id)
        if codec is None:
            name = _VIDEO_CODEC_NAMES.get(codec_id, f"codec id {codec_id}")
            raise UnsupportedCodecError(f"video codec {name} is not supported; send H.264")
        if len(data) < 5:
            raise RtmpProtocolError("video tag shorter than its AVC header")
        packet_type = data[1]
        cts = int.from_bytes(data[2:5], "big", signed=True)
        dts = self._video_clock.unwrap(timestamp)
        if packet_type == 0:
            config = data[5:]
            if len(config) < 7 or config[0] != 1:
                raise RtmpProtocolError(f"malformed {codec} sequence header")
            if config == self.video_config and codec == self.video_codec:
                return []
            self.video_config, self.video_codec = config, codec
            return [MediaPacket("video", codec, dts, dts, config, is_config=True)]
        if packet_type == 1:
            payload = data[5:]
            if not payload:
                return []
            if self.video_config is None:
                self.dropped += 1
                return []
            keyframe = frame_type in _KEYFRAME_TYPES
            return [MediaPacket("video", codec, dts, dts + cts, payload, keyframe=keyframe)]
        if packet_type == 2:
            return []  # end of sequence
        raise RtmpProtocolError(f"unknown AVC packet type {packet_type}")

    def audio(self, timestamp: int, data: bytes) -> list[MediaPacket]:
        """Parse one audio message payload taken at 32-bit ``timestamp`` (ms)."""
        if not data:
            return []
        sound_format = data[0] >> 4
        if sound_format == 9:
            raise UnsupportedCodecError(
                "Enhanced RTMP audio (FourCC codecs) is not supported yet; send AAC"
            )
        if sound_format != 10:
            name = _AUDIO_FORMAT_NAMES.get(sound_format, f"sound format {sound_format}")
            raise UnsupportedCodecError(f"audio codec {name} is not supported; send AAC")
        if len(data) < 2:
            raise RtmpProtocolError("audio tag shorter than its AAC header")
        dts = self._audio_clock.unwrap(timestamp)
        if data[1] == 0:
            config = data[2:]
            if len(config) < 2:
                raise RtmpProtocolError("malformed AAC sequence header")
            if config == self.audio_config:
                return []
            self.audio_config, self.audio_codec = config, "aac"
            return [MediaPacket("audio", "aac", dts, dts, config, is_config=True)]
        if data[1] == 1:
            frame = data[2:]
            if not frame:
                return []
            if self.audio_config is None:
                self.dropped += 1
                return []
            return [MediaPacket("audio", "aac", dts, dts, frame, keyframe=True)]
        raise RtmpProtocolError(f"unknown AAC packet type {data[1]}")
