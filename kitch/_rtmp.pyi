"""Type stub for the native RTMP chunk reader (see kitch/_rtmp.pyx; twin: kitch/_rtmp_py.py)."""

from collections.abc import Callable
from typing import Any, Protocol

from typing_extensions import Buffer

DEFAULT_CHUNK_SIZE: int
MAX_CHUNK_SIZE: int

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "ChunkReader",
    "MediaFastPath",
    "Message",
    "RtmpError",
    "TimestampUnwrapper",
]

#: ``(csid, msg_type, stream_id, timestamp, payload)``
Message = tuple[int, int, int, int, bytes]

class RtmpError(ValueError): ...

class ChunkReader:
    chunk_size: int
    max_message_size: int
    max_chunk_streams: int
    def __init__(
        self, max_message_size: int = ..., max_chunk_streams: int = ..., chunk_size: int = ...
    ) -> None: ...
    @property
    def buffered(self) -> int: ...
    @property
    def chunk_streams(self) -> int: ...
    def feed(self, data: Buffer) -> None: ...
    def next_message(self) -> Message | None: ...

class TimestampUnwrapper:
    def unwrap(self, ts32: int) -> int: ...

class _Appendable(Protocol):
    def append(self, item: Any, /) -> None: ...
    def __len__(self) -> int: ...

class MediaFastPath:
    video_codec: str | None
    audio_codec: str | None
    ex_video: bool
    ex_audio: bool
    @property
    def taken(self) -> int: ...
    def __init__(
        self,
        video_clock: TimestampUnwrapper,
        audio_clock: TimestampUnwrapper,
        packet_type: Callable[..., Any],
        event_type: Callable[[Any], Any],
    ) -> None: ...
    def drain(
        self,
        reader: ChunkReader,
        events: _Appendable,
        lane: Callable[[Any], bool] | None = None,
    ) -> Message | None: ...
    def packet(self, msg_type: int, timestamp: int, payload: bytes) -> Any: ...
