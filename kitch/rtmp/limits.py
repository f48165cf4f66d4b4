"""Per-connection limits of the RTMP session."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RtmpLimits:
    """Limits one RTMP connection must stay within; past one the connection is closed.

    * ``max_message_size`` (default 4 MiB): largest RTMP message; a larger declared length is an
      error at once, nothing is allocated by it.
    * ``max_chunk_streams`` (default 64): how many chunk stream ids one peer may open (ids
      themselves may be anything up to 65599).
    * ``max_amf_depth`` (default 32): deepest AMF0 nesting accepted in commands and metadata.
    * ``max_buffered_bytes`` (default 16 MiB): bytes held for one connection (unparsed input plus
      unfinished messages).
    * ``max_stream_key_length`` (default 256): longer publish names are refused with BadName.
    """

    max_message_size: int = 4 * MiB
    max_chunk_streams: int = 64
    max_amf_depth: int = 32
    max_buffered_bytes: int = 16 * MiB
    max_stream_key_length: int = 256
