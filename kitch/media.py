"""The one packet type that crosses layers: ingest -> hub -> muxer/transcoder.

Timestamps are integers in milliseconds (the RTMP/FLV clock), already unwrapped to 64 bits by
the ingest, so they never roll over. ``pts = dts + composition offset`` (the offset is signed).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

TrackKind = Literal["video", "audio"]

#: Codec names used across Kitch (what `MediaPacket.codec` holds).
VIDEO_CODECS = ("h264", "hevc", "av1", "vp9")
AUDIO_CODECS = ("aac", "opus", "mp3")


class MediaPacket(NamedTuple):
    """One access unit, or one codec configuration record when ``is_config`` is true.

    Immutable. A named tuple rather than a frozen dataclass: every media message of every
    publisher makes one, and a tuple is built in about a third of the time (the
    ``bench_passthrough`` cost per stream is mostly such per-message work).

    ``data`` of a config packet is ``bytes``; a frame's may be a read-only ``memoryview``
    (the RTMP ingest hands each frame over as a slice of the message it arrived in, without
    copying it): use it through the buffer protocol (``len``, slicing, ``bytes(data)``,
    ``av.Packet(data)``), not through ``bytes`` methods. By codec it holds:

    * h264 / hevc: length-prefixed NAL units (4-byte lengths, as in FLV/MP4); a config packet
      holds the AVCDecoderConfigurationRecord / HEVCDecoderConfigurationRecord.
    * aac: one raw AAC frame (no ADTS); a config packet holds the AudioSpecificConfig.
    * av1: one temporal unit in the low-overhead OBU format (as in MP4); config holds the
      AV1CodecConfigurationRecord (the av1C box payload).
    * vp9: one frame; config holds the VPCodecConfigurationRecord (the vpcC payload after its
      version/flags word).
    * opus: one raw Opus packet; config holds the Opus identification header ("OpusHead", RFC
      7845 section 5.1), from which the muxer derives dOps.
    * hevc config holds the HEVCDecoderConfigurationRecord (the hvcC box payload).
    """

    kind: TrackKind
    codec: str
    dts: int
    pts: int
    data: bytes | memoryview
    keyframe: bool = False
    is_config: bool = False

    @property
    def composition_offset(self) -> int:
        return self.pts - self.dts
