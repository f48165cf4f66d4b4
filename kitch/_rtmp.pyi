"""Type stub for the native RTMP wire module (see kitch/_rtmp.pyx)."""

from typing import Any

from typing_extensions import Buffer

HANDSHAKE_SIZE: int
FMS_KEY: bytes
FP_KEY: bytes
DEFAULT_CHUNK_SIZE: int
MAX_CHUNK_SIZE: int
DEFAULT_MAX_DEPTH: int

#: (csid, msg_type, stream_id, timestamp, payload)
Message = tuple[int, int, int, int, bytes]

class RtmpError(ValueError): ...

def digest_offset(block: bytes | bytearray, scheme: int) -> int: ...
def handshake_reply(c0c1: Buffer, random_bytes: Buffer) -> tuple[bytes, int]: ...

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

class ChunkWriter:
    chunk_size: int
    def __init__(self, chunk_size: int = ...) -> None: ...
    def write(
        self, csid: int, msg_type: int, stream_id: int, timestamp: int, payload: Buffer
    ) -> bytes: ...

def amf0_decode_all(data: Buffer, max_depth: int = ...) -> list[Any]: ...
def amf0_encode(*values: Any) -> bytes: ...
