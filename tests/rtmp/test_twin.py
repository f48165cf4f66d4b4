"""The native chunk reader and its pure-Python twin give identical results."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kitch import _rtmp_py as twin
from kitch.rtmp.chunks import ChunkWriter

native = pytest.importorskip("kitch._rtmp")
CAPTURE = __import__("pathlib").Path(__file__).parent.parent / "data" / "rtmp_pyav_publish.bin"


def run_reader(mod: Any, data: bytes, step: int) -> tuple[list[Any], str | None, int]:
    reader = mod.ChunkReader(max_message_size=1 << 16, max_chunk_streams=8)
    out: list[Any] = []
    try:
        for i in range(0, len(data), step):
            reader.feed(data[i : i + step])
            while (msg := reader.next_message()) is not None:
                out.append(msg)
    except mod.RtmpError as exc:
        return out, str(exc), reader.buffered
    return out, None, reader.buffered


def test_capture_parses_identically() -> None:
    body = CAPTURE.read_bytes()[3073:]
    for step in (1, 333, len(body)):
        a = run_reader(native, body, step)
        b = run_reader(twin, body, step)
        assert a == b and a[0]


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.binary(max_size=500), st.integers(1, 64))
def test_random_chunks_identical(data: bytes, step: int) -> None:
    assert run_reader(native, data, step) == run_reader(twin, data, step)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.data())
def test_mutated_capture_identical(data: st.DataObject) -> None:
    raw = bytearray(CAPTURE.read_bytes()[3073:9000])
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    assert run_reader(native, bytes(raw), 97) == run_reader(twin, bytes(raw), 97)


def test_capture_with_trailing_bytes_identical() -> None:
    body = CAPTURE.read_bytes()[3073:] + b"\x06\x00\x00\x00\x00\x10"  # a header cut short
    for step in (1, 4096, len(body)):
        a = run_reader(native, body, step)
        assert a == run_reader(twin, body, step)
        assert a[1] is None and a[2] == 6


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.data())
def test_structured_chunks_identical_with_accounting(data: st.DataObject) -> None:
    # Small and large messages on several chunk streams, cut anywhere, with aborts: the
    # messages, the error and the held-bytes accounting all agree.
    writer = ChunkWriter(data.draw(st.sampled_from((64, 128, 4096))))
    out = bytearray(writer.write(2, 1, 0, 0, writer.chunk_size.to_bytes(4, "big")))
    for _ in range(data.draw(st.integers(1, 6))):
        size = data.draw(st.sampled_from((0, 5, 300, 65536, 70000)))
        csid = data.draw(st.integers(3, 12))
        msg = writer.write(csid, 9, 1, data.draw(st.integers(0, 2**32 - 1)), bytes(size))
        out += msg[: data.draw(st.integers(1, len(msg)))]
        if data.draw(st.booleans()):
            out += writer.write(2, 2, 0, 0, csid.to_bytes(4, "big"))
    raw = bytes(out)
    step = data.draw(st.integers(1, 5000))
    a = run_reader(native, raw, step)
    assert a == run_reader(twin, raw, step)
