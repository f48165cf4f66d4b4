"""AMF0 decode/encode: every type, limits, and the one-error invariant."""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kitch.rtmp.amf0 import amf0_decode_all, amf0_encode
from kitch.rtmp.errors import RtmpError


def s16(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


END = b"\x00\x00\x09"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x00" + struct.pack(">d", 1.5), 1.5),
        (b"\x01\x01", True),
        (b"\x01\x00", False),
        (b"\x02" + s16("héllo"), "héllo"),
        (b"\x03" + s16("a") + b"\x00" + struct.pack(">d", 2) + END, {"a": 2.0}),
        (b"\x05", None),
        (b"\x06", None),
        (b"\x08\x00\x00\x00\x01" + s16("k") + b"\x02" + s16("v") + END, {"k": "v"}),
        (b"\x0a\x00\x00\x00\x02\x05\x01\x01", [None, True]),
        (b"\x0b" + struct.pack(">d", 1e12) + b"\x00\x00", 1e12),
        (b"\x0c\x00\x00\x00\x03abc", "abc"),
        (b"\x0d", None),
        (b"\x0f\x00\x00\x00\x04<a/>", "<a/>"),
        (b"\x10" + s16("Cls") + s16("x") + b"\x01\x01" + END, {"x": True}),
        (b"\x02" + s16(""), ""),
        (b"\x02\x00\x02\xff\xfe", "\ufffd\ufffd"),
    ],
)
def test_decode_every_type(data: bytes, expected: Any) -> None:
    assert amf0_decode_all(data) == [expected]
    assert amf0_decode_all(data + b"\x05") == [expected, None]


def test_trailing_ecma_array_without_end_marker() -> None:
    assert amf0_decode_all(b"\x08\x00\x00\x00\x01" + s16("k") + b"\x05") == [{"k": None}]


def test_reference_returns_the_same_object() -> None:
    obj = b"\x03" + s16("a") + b"\x05" + END
    values = amf0_decode_all(obj + b"\x07\x00\x00")
    assert values == [{"a": None}, {"a": None}]
    assert values[0] is values[1]


@pytest.mark.parametrize(
    "data",
    [
        b"\x07\x00\x00",  # reference to nothing
        b"\x09",  # object end outside an object
        b"\x11\x02",  # AMF3 switch
        b"\x04",  # movieclip
        b"\x0e",  # recordset
        b"\x12",  # unknown
        b"\x00\x00\x00",  # short number
        b"\x01",  # short boolean
        b"\x02\x00\x10abc",  # string longer than its buffer
        b"\x0c\xff\xff\xff\xffabc",  # long string longer than its buffer
        b"\x0a\xff\xff\xff\xff\x05",  # strict array longer than its buffer
        b"\x03" + s16("a"),  # object cut short
        b"\x03" + s16("a") + b"\x05",  # object without end
        b"\x0b" + struct.pack(">d", 1.0),  # date without time zone
    ],
)
def test_malformed_raises_rtmp_error(data: bytes) -> None:
    with pytest.raises(RtmpError):
        amf0_decode_all(data)


@pytest.mark.parametrize("depth", [33, 10_000, 20_000])
def test_deep_nesting_is_refused(depth: int) -> None:
    nested_objects = (b"\x03" + s16("a")) * depth + b"\x05" + END * depth
    nested_arrays = b"\x0a\x00\x00\x00\x01" * depth + b"\x05"
    for data in (nested_objects, nested_arrays):
        with pytest.raises(RtmpError, match="nesting"):
            amf0_decode_all(data)


def test_nesting_past_the_recursion_limit_is_refused_whatever_the_configured_depth() -> None:
    data = b"\x0a\x00\x00\x00\x01" * 20_000 + b"\x05"
    with pytest.raises(RtmpError, match="nesting"):
        amf0_decode_all(data, max_depth=1_000_000)


def test_depth_limit_is_configurable() -> None:
    data = b"\x0a\x00\x00\x00\x01" * 5 + b"\x05"
    assert amf0_decode_all(data, max_depth=5) == [[[[[[None]]]]]]
    with pytest.raises(RtmpError):
        amf0_decode_all(data, max_depth=4)


def test_name_of_64_kib_decodes_as_long_string() -> None:
    name = "k" * 65536
    assert amf0_decode_all(amf0_encode(name)) == [name]


amf_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(amf_values, max_size=4))
def test_encode_decode_round_trip(values: list[Any]) -> None:
    assert amf0_decode_all(amf0_encode(*values)) == values


def test_encode_refuses_unknown_types() -> None:
    with pytest.raises(ValueError):
        amf0_encode(object())


@settings(max_examples=500, derandomize=True, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_rtmp_error(data: bytes) -> None:
    with contextlib.suppress(RtmpError):
        amf0_decode_all(data)
