"""Type stub for the native RTMP chunk reader (see kitch/_rtmp.pyx; twin: kitch/_rtmp_py.py)."""

from typing_extensions import Buffer

DEFAULT_CHUNK_SIZE: int
MAX_CHUNK_SIZE: int

__all__ = ["DEFAULT_CHUNK_SIZE", "MAX_CHUNK_SIZE", "ChunkReader", "Message", "RtmpError"]

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
