"""Type stub for the native muxer core (kitch/_mux.pyx)."""

from collections.abc import Sequence
from typing import TypedDict

#: ``(data, duration, composition_offset, keyframe)``, times in the track's timescale.
Sample = tuple[bytes, int, int, bool]
#: ``(track_id, base_decode_time, samples)``.
Run = tuple[int, int, Sequence[Sample]]

class MuxError(ValueError): ...

class SpsInfo(TypedDict):
    width: int
    height: int
    profile: int
    constraints: int
    level: int
    fps: float

class TrackInfo:
    track_id: int
    kind: str
    codec: str
    timescale: int
    config: bytes
    width: int
    height: int
    sample_rate: int
    channels: int
    def __init__(
        self,
        track_id: int,
        kind: str,
        codec: str,
        timescale: int,
        config: bytes,
        width: int = 0,
        height: int = 0,
        sample_rate: int = 0,
        channels: int = 0,
    ) -> None: ...

def fragment(sequence: int, runs: Sequence[Run]) -> bytes: ...
def init_segment(tracks: Sequence[TrackInfo]) -> bytes: ...
def avcc_to_annexb(data: bytes, length_size: int = 4) -> bytes: ...
def annexb_to_avcc(data: bytes) -> bytes: ...
def parse_avc_config(avcc: bytes) -> tuple[list[bytes], list[bytes], int]: ...
def unescape_rbsp(nal: bytes) -> bytes: ...
def parse_sps(sps: bytes) -> SpsInfo: ...
def avc_codec_string(avcc: bytes) -> str: ...
def parse_asc(asc: bytes) -> tuple[int, int, int]: ...
def aac_codec_string(asc: bytes) -> str: ...
def opus_dops(head: bytes) -> bytes: ...
def crc32_mpeg(data: bytes) -> int: ...
def adts_header(asc: bytes, frame_size: int) -> bytes: ...

class TsMuxer:
    video_codec: str | None
    audio_codec: str | None
    param_sets: bytes
    length_size: int
    audio_config: bytes
    opus_channels: int
    pcr_pid: int
    def __init__(
        self,
        video_codec: str | None = None,
        param_sets: bytes = b"",
        length_size: int = 4,
        audio_codec: str | None = None,
        audio_config: bytes = b"",
    ) -> None: ...
    def psi(self) -> bytes: ...
    def video(self, data: bytes, pts: int, dts: int, keyframe: bool) -> bytes: ...
    def audio(self, data: bytes, pts: int) -> bytes: ...
