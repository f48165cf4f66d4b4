"""Type stub for the native muxer core (kitch/_mux.pyx; twin: kitch/_mux_py.py)."""

from collections.abc import Callable, Sequence
from typing import Any

#: ``(data, duration, composition_offset, keyframe)``, times in the track's timescale.
Sample = tuple[bytes | memoryview, int, int, bool]
#: ``(track_id, base_decode_time, samples)``.
Run = tuple[int, int, Sequence[Sample]]

__all__ = [
    "MuxError",
    "Run",
    "Sample",
    "TsMuxer",
    "adts_header",
    "audio_step",
    "crc32_mpeg",
    "fragment",
    "video_step",
]

class MuxError(ValueError): ...

def fragment(sequence: int, runs: Sequence[Run]) -> bytes: ...
def crc32_mpeg(data: bytes) -> int: ...
def adts_header(asc: bytes, frame_size: int) -> bytes: ...
def video_step(seg: Any, packet: Any, frame_type: Callable[..., Any]) -> int: ...
def audio_step(seg: Any, packet: Any, frame_type: Callable[..., Any]) -> int: ...

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
    def video(self, data: bytes | memoryview, pts: int, dts: int, keyframe: bool) -> bytes: ...
    def audio(self, data: bytes | memoryview, pts: int) -> bytes: ...
