"""RTMP handshake (server side): C0+C1 in, S0+S1+S2 out, plain and digest (Flash) forms.

Runs once per connection, so it is plain Python (no native twin).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from kitch.rtmp.errors import RtmpError

if TYPE_CHECKING:
    from typing_extensions import Buffer

HANDSHAKE_SIZE = 1536
_KEY_TAIL = bytes.fromhex("F0EEC24A8068BEE82E00D0D1029E7E576EEC5D2D29806FAB93B8E636CFEB31AE")
FMS_KEY = b"Genuine Adobe Flash Media Server 001" + _KEY_TAIL
FP_KEY = b"Genuine Adobe Flash Player 001" + _KEY_TAIL
_SERVER_VERSION = b"\x04\x05\x00\x01"


def _hmac256(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def digest_offset(block: bytes | bytearray, scheme: int) -> int:
    """Offset of the 32-byte digest in a 1536-byte C1/S1 under scheme 0 (bytes 8-11) or 1."""
    base = 8 if scheme == 0 else 772
    return (block[base] + block[base + 1] + block[base + 2] + block[base + 3]) % 728 + base + 4


def _client_digest(c1: bytes) -> tuple[int, bytes]:
    for scheme in (0, 1):
        off = digest_offset(c1, scheme)
        expected = _hmac256(FP_KEY[:30], c1[:off] + c1[off + 32 :])
        if hmac.compare_digest(expected, c1[off : off + 32]):
            return scheme, c1[off : off + 32]
    return -1, b""


def handshake_reply(c0c1: Buffer, random_bytes: Buffer) -> tuple[bytes, int]:
    """Answer C0+C1 (1537 bytes) with S0+S1+S2 (3073 bytes).

    ``random_bytes`` (at least 3064 bytes) fills S1's random part and S2. Returns
    ``(reply, scheme)``: scheme -1 for a plain client (S2 echoes C1), else the client's digest
    scheme 0 or 1 (S1 carries our digest, S2 is keyed from the client's digest). Raises
    :class:`RtmpError` unless the version byte is 3.
    """
    c0c1 = bytes(c0c1)
    rnd = bytes(random_bytes)
    if len(c0c1) != HANDSHAKE_SIZE + 1:
        raise RtmpError("C0+C1 must be 1537 bytes")
    if len(rnd) < 3064:
        raise ValueError("random_bytes must hold at least 3064 bytes")
    if c0c1[0] != 3:
        raise RtmpError(f"unsupported RTMP version {c0c1[0]} (only 3)")
    c1 = c0c1[1:]
    scheme, client_digest = (-1, b"")
    if c1[4:8] != b"\x00\x00\x00\x00":
        scheme, client_digest = _client_digest(c1)
    if scheme < 0:
        return b"\x03" + bytes(8) + rnd[:1528] + c1, -1
    s1 = bytearray(bytes(4) + _SERVER_VERSION + rnd[:1528])
    off = digest_offset(s1, scheme)
    s1[off : off + 32] = _hmac256(FMS_KEY[:36], bytes(s1[:off] + s1[off + 32 :]))
    s2 = bytearray(rnd[1528:3064])
    s2[1504:] = _hmac256(_hmac256(FMS_KEY, client_digest), bytes(s2[:1504]))
    return b"\x03" + bytes(s1) + bytes(s2), scheme
