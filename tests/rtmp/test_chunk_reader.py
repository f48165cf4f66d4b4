"""ChunkReader / ChunkWriter: every case fed whole, one byte at a time, and with trailing bytes."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitch.rtmp.chunks import ChunkWriter
from kitch.rtmp.errors import RtmpError
from kitch.twins import rtmp
from tests.rtmp.chunks import (
    MODES,
    chunk0,
    chunk1,
    chunk2,
    chunk3,
    drain,
    parse,
    set_chunk_size,
)

pytestmark = pytest.mark.native


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("csid", [2, 63, 64, 319, 320, 65599])
def test_basic_header_sizes(mode: str, csid: int) -> None:
    assert parse(chunk0(csid, 7, 3, 8, 1, b"abc"), mode) == [(csid, 8, 1, 7, b"abc")]


@pytest.mark.parametrize("mode", MODES)
def test_header_types_accumulate_deltas(mode: str) -> None:
    # The Adobe spec's example: type 0 at 1000, type 2 with delta 33, then type 3 chunks
    # starting new messages repeat the delta.
    data = (
        chunk0(3, 1000, 4, 8, 1, b"aaaa")
        + chunk2(3, 33, b"bbbb")
        + chunk3(3, b"cccc")
        + chunk3(3, b"dddd")
        + chunk1(3, 10, 2, 9, b"ee")
        + chunk3(3, b"ff")
    )
    assert parse(data, mode) == [
        (3, 8, 1, 1000, b"aaaa"),
        (3, 8, 1, 1033, b"bbbb"),
        (3, 8, 1, 1066, b"cccc"),
        (3, 8, 1, 1099, b"dddd"),
        (3, 9, 1, 1109, b"ee"),
        (3, 9, 1, 1119, b"ff"),
    ]


@pytest.mark.parametrize("mode", MODES)
def test_type3_after_type0_uses_its_timestamp_as_delta(mode: str) -> None:
    data = chunk0(4, 40, 1, 8, 1, b"a") + chunk3(4, b"b")
    assert [m[3] for m in parse(data, mode)] == [40, 80]


@pytest.mark.parametrize("mode", MODES)
def test_multi_chunk_message(mode: str) -> None:
    body = bytes(range(256)) + b"x" * 44
    data = chunk0(4, 5, 300, 9, 1, body[:128]) + chunk3(4, body[128:256]) + chunk3(4, body[256:])
    assert parse(data, mode) == [(4, 9, 1, 5, body)]


@pytest.mark.parametrize("mode", MODES)
def test_extended_timestamp_on_type3_continuations(mode: str) -> None:
    ts = 0x01234567
    body = b"y" * 300
    data = (
        chunk0(4, ts, 300, 9, 1, body[:128])
        + chunk3(4, body[128:256], ext=ts)
        + chunk3(4, body[256:], ext=ts)
    )
    assert parse(data, mode) == [(4, 9, 1, ts, body)]


@pytest.mark.parametrize("mode", MODES)
def test_extended_delta_then_type3_new_message(mode: str) -> None:
    delta = 0x01000000
    data = (
        chunk0(4, 1, 1, 8, 1, b"a")
        + chunk1(4, delta, 1, 8, b"b")
        + chunk3(4, b"c", ext=delta)  # new message: the delta repeats, ext field present
    )
    assert [m[3] for m in parse(data, mode)] == [1, 1 + delta, 1 + 2 * delta]


@pytest.mark.parametrize("mode", MODES)
def test_timestamp_accumulates_modulo_2_32(mode: str) -> None:
    data = chunk0(4, 0xFFFFFFF0, 1, 8, 1, b"a") + chunk2(4, 0x20, b"b")
    assert [m[3] for m in parse(data, mode)] == [0xFFFFFFF0, 0x10]


@pytest.mark.parametrize("mode", MODES)
def test_zero_length_message(mode: str) -> None:
    assert parse(chunk0(3, 0, 0, 20, 0, b"") + chunk0(3, 0, 1, 20, 0, b"z"), mode) == [
        (3, 20, 0, 0, b""),
        (3, 20, 0, 0, b"z"),
    ]


def test_set_chunk_size_zero_is_an_error() -> None:
    with pytest.raises(RtmpError):
        parse(set_chunk_size(0))


def test_set_chunk_size_with_high_bit_is_an_error() -> None:
    with pytest.raises(RtmpError):
        parse(set_chunk_size(0x80000000))


def test_short_set_chunk_size_is_an_error() -> None:
    with pytest.raises(RtmpError):
        parse(chunk0(2, 0, 2, 1, 0, b"\x00\x10"))


def test_set_chunk_size_above_24_bits_is_clamped_and_message_size_capped() -> None:
    reader = rtmp.ChunkReader(max_message_size=1000)
    reader.feed(set_chunk_size(0x7FFFFFFF))
    assert drain(reader) == [(2, 1, 0, 0, b"\x7f\xff\xff\xff")]
    assert reader.chunk_size == rtmp.MAX_CHUNK_SIZE
    # A message too big for the cap fails on its header, before any payload arrives.
    reader.feed(chunk0(4, 0, 0xFFFFFF, 9, 1, b""))
    with pytest.raises(RtmpError, match="exceeds"):
        reader.next_message()
    assert reader.buffered < 100


@pytest.mark.parametrize("mode", MODES)
def test_set_chunk_size_mid_message_applies_at_its_byte_position(mode: str) -> None:
    body = b"m" * 200
    big = b"n" * 256
    data = (
        chunk0(4, 0, 200, 9, 1, body[:128])  # first chunk at 128
        + set_chunk_size(256)  # arrives while csid 4 has a message in progress
        + chunk3(4, body[128:])  # the rest (72 bytes) fits one chunk
        + chunk0(5, 0, 256, 8, 1, big)  # one 256-byte chunk under the new size
    )
    assert parse(data, mode) == [
        (2, 1, 0, 0, struct.pack(">I", 256)),
        (4, 9, 1, 0, body),
        (5, 8, 1, 0, big),
    ]


@pytest.mark.parametrize(
    "fmt_chunk", [chunk1(9, 0, 1, 8, b"a"), chunk2(9, 0, b"a"), chunk3(9, b"a")]
)
def test_types_1_2_3_without_previous_header(fmt_chunk: bytes) -> None:
    with pytest.raises(RtmpError, match="no previous header"):
        parse(fmt_chunk)


def test_continuation_header_disagreeing_with_message_in_progress() -> None:
    start = chunk0(4, 0, 200, 9, 1, b"a" * 128)
    with pytest.raises(RtmpError, match="disagrees"):
        parse(start + chunk1(4, 0, 100, 9, b"b" * 72))


@pytest.mark.parametrize("mode", MODES)
def test_continuation_header_agreeing_with_message_in_progress(mode: str) -> None:
    start = chunk0(4, 9, 200, 9, 1, b"a" * 128)
    assert parse(start + chunk1(4, 0, 200, 9, b"b" * 72), mode) == [
        (4, 9, 1, 9, b"a" * 128 + b"b" * 72)
    ]


def test_chunk_stream_count_is_capped_not_ids() -> None:
    reader = rtmp.ChunkReader(max_chunk_streams=64)
    for i in range(64):
        reader.feed(chunk0(65599 - i, 0, 1, 8, 1, b"x"))
    assert len(drain(reader)) == 64
    assert reader.chunk_streams == 64
    reader.feed(chunk0(3, 0, 1, 8, 1, b"x"))
    with pytest.raises(RtmpError, match="chunk streams"):
        reader.next_message()


def test_tens_of_thousands_of_chunk_stream_ids_fail_fast() -> None:
    data = b"".join(chunk0(csid, 0, 1, 8, 1, b"x") for csid in range(2, 40000))
    reader = rtmp.ChunkReader()
    reader.feed(data)
    with pytest.raises(RtmpError):
        drain(reader)
    assert reader.chunk_streams <= 64


def test_message_over_the_cap_fails_on_its_header() -> None:
    reader = rtmp.ChunkReader(max_message_size=4 * 1024 * 1024)
    reader.feed(chunk0(4, 0, 16 * 1024 * 1024 - 1, 9, 1, b""))
    with pytest.raises(RtmpError, match="exceeds"):
        reader.next_message()


def test_unfinished_message_buffers_only_what_arrived() -> None:
    reader = rtmp.ChunkReader(chunk_size=4096)
    reader.feed(chunk0(4, 0, 4 * 1024 * 1024, 9, 1, b"z" * 4096))
    for _ in range(9):
        reader.feed(chunk3(4, b"z" * 4096))
    assert drain(reader) == []
    assert reader.buffered == 10 * 4096


def test_abort_discards_the_partial_message() -> None:
    reader = rtmp.ChunkReader()
    reader.feed(chunk0(4, 0, 300, 9, 1, b"a" * 128))
    assert drain(reader) == [] and reader.buffered == 300  # its whole buffer exists already
    reader.feed(chunk0(2, 0, 4, 2, 0, struct.pack(">I", 4)))
    assert drain(reader) == [(2, 2, 0, 0, b"\x00\x00\x00\x04")]
    assert reader.buffered == 0
    reader.feed(chunk0(4, 3, 2, 8, 1, b"ok"))
    assert drain(reader) == [(4, 8, 1, 3, b"ok")]


@pytest.mark.parametrize("chunk_size", [1, 128, 4096])
@pytest.mark.parametrize("ts", [0, 1000, 0xFFFFFE, 0xFFFFFF, 0xFFFFFFFF])
def test_writer_round_trip(chunk_size: int, ts: int) -> None:
    writer = ChunkWriter(chunk_size)
    body = bytes(range(256)) * 40
    data = (
        writer.write(6, 9, 1, ts, body)
        + writer.write(320, 20, 0, ts, b"")
        + writer.write(64, 8, 7, ts, b"q")
    )
    for mode in MODES:
        assert parse(data, mode, chunk_size=chunk_size) == [
            (6, 9, 1, ts, body),
            (320, 20, 0, ts, b""),
            (64, 8, 7, ts, b"q"),
        ]


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.binary(max_size=600), st.integers(min_value=1, max_value=40))
def test_any_bytes_parse_or_raise_rtmp_error(data: bytes, step: int) -> None:
    reader = rtmp.ChunkReader(max_message_size=1 << 16, max_chunk_streams=8)
    try:
        for i in range(0, len(data), step):
            reader.feed(data[i : i + step])
            drain(reader)
    except RtmpError:
        return
    assert reader.buffered <= len(data)


@settings(
    max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.data())
def test_mutated_valid_stream_parses_or_raises(data: st.DataObject) -> None:
    writer = ChunkWriter(64)
    valid = bytearray(
        writer.write(3, 20, 0, 0, b"c" * 100)
        + writer.write(4, 9, 1, 0x1000000, b"v" * 300)
        + set_chunk_size(4096)
    )
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(valid) - 1))
        valid[pos] = data.draw(st.integers(0, 255))
    reader = rtmp.ChunkReader(max_message_size=1 << 16, max_chunk_streams=8)
    reader.feed(bytes(valid))
    with contextlib.suppress(RtmpError):
        drain(reader)


@pytest.mark.parametrize("mode", ["whole", "bytes"])
def test_small_messages_count_their_whole_buffer_from_the_first_chunk(mode: str) -> None:
    # Messages up to 64 KiB get their final buffer when their first chunk arrives: 64 chunk
    # streams each starting one must show 64 x 64 KiB held, not 64 x 128 bytes.
    reader = rtmp.ChunkReader(max_chunk_streams=64)
    data = b"".join(chunk0(10 + i, 0, 65536, 9, 1, b"x" * 128) for i in range(64))
    if mode == "whole":
        reader.feed(data)
        drain(reader)
    else:
        for i in range(0, len(data), 7):
            reader.feed(data[i : i + 7])
            drain(reader)
    assert reader.buffered == 64 * 65536
    # Finishing one releases its buffer; the others stay counted.
    reader.feed(b"".join(chunk3(10, b"y" * 128) for _ in range(511)))
    assert [len(m[4]) for m in drain(reader)] == [65536]
    assert reader.buffered == 63 * 65536


def test_large_messages_count_only_what_arrived() -> None:
    reader = rtmp.ChunkReader()
    reader.feed(chunk0(4, 0, 1 << 20, 9, 1, b"a" * 128))
    assert drain(reader) == [] and reader.buffered == 128
    reader.feed(chunk0(2, 0, 4, 2, 0, struct.pack(">I", 4)))  # Abort
    drain(reader)
    assert reader.buffered == 0
