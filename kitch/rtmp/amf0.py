"""AMF0 values (commands and metadata): decode with a nesting limit, encode our answers.

Commands and metadata are a few messages per connection, so this is plain Python (no native
twin). Every malformed input raises :class:`RtmpError` and nothing else.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from kitch.rtmp.errors import RtmpError

if TYPE_CHECKING:
    from typing_extensions import Buffer

DEFAULT_MAX_DEPTH = 32


class _AmfDecoder:
    __slots__ = ("data", "max_depth", "n", "pos", "refs")

    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.n = len(data)
        self.pos = 0
        self.refs: list[Any] = []
        self.max_depth = max_depth

    def take(self, k: int) -> bytes:
        if self.n - self.pos < k:
            raise RtmpError("truncated AMF0 value")
        out = self.data[self.pos : self.pos + k]
        self.pos += k
        return out

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def number(self) -> float:
        value: float = struct.unpack(">d", self.take(8))[0]
        return value

    def string(self, length: int) -> str:
        return self.take(length).decode("utf-8", "replace")

    def pairs(self, obj: dict[str, Any], depth: int, ecma: bool) -> None:
        while True:
            if ecma and self.pos == self.n:
                return
            klen = self.u16()
            if klen == 0:
                if self.n - self.pos < 1:
                    raise RtmpError("truncated AMF0 value")
                if self.data[self.pos] == 0x09:
                    self.pos += 1
                    return
            key = self.string(klen)
            obj[key] = self.value(depth + 1)

    def value(self, depth: int) -> Any:
        if depth > self.max_depth:
            raise RtmpError(f"AMF0 nesting deeper than {self.max_depth}")
        marker = self.take(1)[0]
        if marker == 0x00:
            return self.number()
        if marker == 0x01:
            return self.take(1)[0] != 0
        if marker == 0x02:
            return self.string(self.u16())
        if marker in (0x03, 0x08, 0x10):
            if marker == 0x08:
                self.u32()
            elif marker == 0x10:
                self.string(self.u16())
            obj: dict[str, Any] = {}
            self.refs.append(obj)
            self.pairs(obj, depth, marker == 0x08)
            return obj
        if marker in (0x05, 0x06, 0x0D):
            return None
        if marker == 0x07:
            index = self.u16()
            if index >= len(self.refs):
                raise RtmpError("AMF0 reference to an unknown object")
            return self.refs[index]
        if marker == 0x0A:
            count = self.u32()
            if count > self.n - self.pos:
                raise RtmpError("AMF0 strict array longer than its buffer")
            arr: list[Any] = []
            self.refs.append(arr)
            for _ in range(count):
                arr.append(self.value(depth + 1))
            return arr
        if marker == 0x0B:
            d = self.number()
            self.take(2)
            return d
        if marker in (0x0C, 0x0F):
            return self.string(self.u32())
        if marker == 0x09:
            raise RtmpError("AMF0 object end outside an object")
        if marker == 0x11:
            raise RtmpError("AMF3 values are not supported")
        raise RtmpError(f"unsupported AMF0 marker 0x{marker:02x}")


def amf0_decode_all(data: Buffer, max_depth: int = DEFAULT_MAX_DEPTH) -> list[Any]:
    """Decode every AMF0 value in ``data`` (default max nesting depth 32) into a list.

    Numbers and dates -> float, boolean -> bool, strings/long strings/XML -> str (invalid
    UTF-8 replaced), null/undefined/unsupported -> None, object/ECMA array/typed object -> dict
    (class name dropped), strict array -> list, references -> the same object. AMF3 (0x11),
    movieclip and recordset markers raise :class:`RtmpError`, as does any truncated value, and
    nesting deeper than ``max_depth`` or than the interpreter's recursion limit allows.
    """
    dec = _AmfDecoder(bytes(data), max_depth)
    out = []
    try:
        while dec.pos < dec.n:
            out.append(dec.value(0))
    except RecursionError:  # a max_depth configured above what the interpreter can follow
        raise RtmpError("AMF0 nesting deeper than the decoder can follow") from None
    return out


def amf0_encode(*values: Any) -> bytes:
    """Encode values: None, bool, int/float, str, dict (object), list/tuple (strict array)."""
    out = bytearray()
    for v in values:
        _encode(out, v, 0)
    return bytes(out)


def _encode(out: bytearray, v: Any, depth: int) -> None:
    if depth > 64:
        raise ValueError("value nested too deep for AMF0")
    if v is None:
        out.append(0x05)
    elif isinstance(v, bool):
        out += b"\x01\x01" if v else b"\x01\x00"
    elif isinstance(v, (int, float)):
        out.append(0x00)
        out += struct.pack(">d", float(v))
    elif isinstance(v, str):
        raw = v.encode()
        if len(raw) <= 0xFFFF:
            out.append(0x02)
            out += struct.pack(">H", len(raw))
        else:
            out.append(0x0C)
            out += struct.pack(">I", len(raw))
        out += raw
    elif isinstance(v, dict):
        out.append(0x03)
        for key, item in v.items():
            if not isinstance(key, str):
                raise ValueError("AMF0 object keys must be str")
            raw = key.encode()
            if len(raw) > 0xFFFF:
                raise ValueError("AMF0 key too long")
            out += struct.pack(">H", len(raw))
            out += raw
            _encode(out, item, depth + 1)
        out += b"\x00\x00\x09"
    elif isinstance(v, (list, tuple)):
        out.append(0x0A)
        out += struct.pack(">I", len(v))
        for item in v:
            _encode(out, item, depth + 1)
    else:
        raise ValueError(f"cannot encode {type(v).__name__} as AMF0")
