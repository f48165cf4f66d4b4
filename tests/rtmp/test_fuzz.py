"""Fuzzing: chunk reader, AMF0, FLV tags and the whole session take any bytes.

One invariant each (h11 style): parse it or raise the protocol error, never anything else; and
the bytes held per connection, measured through the parser's own ``buffered`` accounting, stay
under the configured bound.

CI runs a small derandomised sample. A longer, randomised run::

    KITCH_FUZZ_EXAMPLES=100000 python3 -m pytest -q tests/rtmp/test_fuzz.py
    KITCH_FUZZ_EXAMPLES=100000 KITCH_PUREPYTHON=1 python3 -m pytest -q tests/rtmp/test_fuzz.py
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitch.rtmp import PublishRequested, RtmpLimits, RtmpProtocolError, RtmpServerSession
from kitch.rtmp.amf0 import amf0_decode_all, amf0_encode
from kitch.rtmp.chunks import ChunkWriter
from kitch.rtmp.errors import RtmpError
from kitch.rtmp.flv import FlvTagParser
from kitch.rtmp.handshake import HANDSHAKE_SIZE
from kitch.twins import rtmp
from tests.rtmp.chunks import chunk0, chunk3, set_chunk_size
from tests.rtmp.flvfile import DATA, flv_tags

pytestmark = pytest.mark.native  # CI re-runs these on the pure-Python twin

_LONG = os.environ.get("KITCH_FUZZ_EXAMPLES")


def fuzz(ci_examples: int) -> Any:
    """CI: derandomised, ``ci_examples`` examples; KITCH_FUZZ_EXAMPLES=N: N random examples."""
    return settings(
        max_examples=int(_LONG) if _LONG else ci_examples,
        derandomize=not _LONG,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


CAPTURE = (DATA / "rtmp_pyav_publish.bin").read_bytes()
FLV_CAPTURES = sorted(DATA.glob("pyav_*.flv"))
#: Small limits so the fuzzer can reach them.
LIMITS = RtmpLimits(
    max_message_size=8192, max_chunk_streams=8, max_amf_depth=16, max_buffered_bytes=12_000
)
#: What may be held beyond ``max_buffered_bytes`` between two checks: one read of input is
#: checked after parsing, plus the handshake buffer.
SLACK = 2 * HANDSHAKE_SIZE + 1


def mutate(data: st.DataObject, raw: bytes, start: int = 0) -> bytes:
    """Overwrite, insert or delete a few bytes at positions >= ``start``."""
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 8), label="edits")):
        pos = data.draw(st.integers(start, max(start, len(out) - 1)), label="pos")
        op = data.draw(st.sampled_from(("set", "insert", "delete", "flip")), label="op")
        if op == "set":
            out[pos : pos + 1] = bytes([data.draw(st.integers(0, 255))])
        elif op == "insert":
            out[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del out[pos : pos + data.draw(st.integers(1, 16))]
        elif pos < len(out):
            out[pos] ^= 1 << data.draw(st.integers(0, 7))
    return bytes(out)


# -- chunk reader -----------------------------------------------------------------------------


def feed_reader(data: bytes, step: int) -> None:
    reader = rtmp.ChunkReader(max_message_size=8192, max_chunk_streams=8)
    try:
        for i in range(0, len(data), step):
            reader.feed(data[i : i + step])
            while reader.next_message() is not None:
                pass
            # Held: what was fed and not consumed, plus unfinished message buffers, each at
            # most max_message_size (a small message is counted whole from its first chunk).
            assert reader.buffered <= step + 8 * 8192
    except RtmpError:
        pass


@fuzz(300)
@given(st.binary(max_size=2000), st.integers(1, 300))
def test_chunk_reader_random_bytes(data: bytes, step: int) -> None:
    feed_reader(data, step)


@fuzz(200)
@given(st.data(), st.integers(1, 4096))
def test_chunk_reader_mutated_capture(data: st.DataObject, step: int) -> None:
    feed_reader(mutate(data, CAPTURE[3073:20000]), step)


@fuzz(200)
@given(st.data())
def test_chunk_reader_structured_chunks(data: st.DataObject) -> None:
    # Plausible headers with hostile values (chunk sizes, lengths, ids, extended stamps).
    pieces = []
    for _ in range(data.draw(st.integers(1, 12))):
        kind = data.draw(st.sampled_from(("c0", "c3", "size", "abort")))
        csid = data.draw(st.sampled_from((2, 3, 4, 63, 64, 319, 320, 65599)))
        if kind == "c0":
            pieces.append(
                chunk0(
                    csid,
                    data.draw(st.sampled_from((0, 1, 0xFFFFFE, 0xFFFFFF, 0xFFFFFFFF))),
                    data.draw(st.integers(0, 0xFFFFFF)),
                    data.draw(st.integers(0, 255)),
                    data.draw(st.integers(0, 3)),
                    data.draw(st.binary(max_size=300)),
                )
            )
        elif kind == "c3":
            pieces.append(chunk3(csid, data.draw(st.binary(max_size=300))))
        elif kind == "size":
            pieces.append(set_chunk_size(data.draw(st.integers(0, 0xFFFFFFFF))))
        else:
            pieces.append(chunk0(2, 0, 4, 2, 0, csid.to_bytes(4, "big")))
    feed_reader(b"".join(pieces), data.draw(st.integers(1, 512)))


# -- AMF0 -------------------------------------------------------------------------------------

amf_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@fuzz(400)
@given(st.binary(max_size=600))
def test_amf0_random_bytes(data: bytes) -> None:
    with contextlib.suppress(RtmpError):
        amf0_decode_all(data, 16)


@fuzz(300)
@given(st.data(), st.lists(amf_values, min_size=1, max_size=4))
def test_amf0_mutated_values(data: st.DataObject, values: list[Any]) -> None:
    with contextlib.suppress(RtmpError):
        amf0_decode_all(mutate(data, amf0_encode(*values)), 16)


# -- FLV tags ---------------------------------------------------------------------------------


def parse_tags(tags: list[tuple[int, int, bytes]]) -> None:
    parser = FlvTagParser()
    for kind, ts, body in tags:
        try:
            parser.video(ts, body) if kind == 9 else parser.audio(ts, body)
        except RtmpProtocolError:
            return


@fuzz(400)
@given(st.lists(st.tuples(st.sampled_from((8, 9)), st.integers(0, 2**32 - 1), st.binary())))
def test_flv_random_tags(tags: list[tuple[int, int, bytes]]) -> None:
    parse_tags(tags)


@fuzz(300)
@given(st.data(), st.sampled_from(FLV_CAPTURES))
def test_flv_mutated_captures(data: st.DataObject, path: Path) -> None:
    tags = flv_tags(path)
    i = data.draw(st.integers(0, len(tags) - 1))
    kind, ts, body = tags[i]
    tags[i] = (kind, ts, mutate(data, body))
    parse_tags(tags)


# -- whole session ----------------------------------------------------------------------------


def run_session(raw: bytes, step: int, limits: RtmpLimits = LIMITS) -> RtmpServerSession:
    s = RtmpServerSession(limits, 0.0)
    try:
        for i in range(0, len(raw), step):
            s.receive_data(raw[i : i + step], 0.0)
            assert s.buffered <= limits.max_buffered_bytes + step + SLACK
            while (event := s.next_event()) is not None:
                if isinstance(event, PublishRequested):
                    s.accept_publish()
                    s.receive_data(b"", 0.0)
            s.data_to_send()
            if s.wants_close:
                break
    except RtmpProtocolError:
        assert s.wants_close
    return s


PLAIN_HANDSHAKE = b"\x03" + bytes(1536) + bytes(1536)


@fuzz(300)
@given(st.binary(max_size=3000), st.integers(1, 2048))
def test_session_random_bytes_after_handshake(data: bytes, step: int) -> None:
    run_session(PLAIN_HANDSHAKE + data, step)


@fuzz(100)
@given(st.binary(max_size=3200), st.integers(1, 2048))
def test_session_random_bytes_from_the_start(data: bytes, step: int) -> None:
    run_session(b"\x03" + data, step)


@fuzz(150)
@given(st.data(), st.sampled_from((1000, 4096, 65536)))
def test_session_mutated_capture(data: st.DataObject, step: int) -> None:
    limits = RtmpLimits(max_buffered_bytes=200_000)
    run_session(mutate(data, CAPTURE[:30000], start=3073), step, limits)


def test_session_bound_holds_against_many_small_messages() -> None:
    # 8 chunk streams each starting a 8 KiB message: 64 KiB held once the first chunks are in.
    limits = RtmpLimits(max_message_size=8192, max_chunk_streams=8, max_buffered_bytes=40_000)
    first_chunks = b"".join(chunk0(10 + i, 0, 8192, 9, 1, bytes(128)) for i in range(8))
    with pytest.raises(RtmpProtocolError, match="buffered"):
        s = RtmpServerSession(limits, 0.0)
        s.receive_data(PLAIN_HANDSHAKE, 0.0)
        s.receive_data(first_chunks, 0.0)


def test_session_writer_round_trip_under_the_bound() -> None:
    # The same traffic with a bound it fits is accepted.
    w = ChunkWriter(128)
    s = RtmpServerSession(RtmpLimits(max_buffered_bytes=100_000), 0.0)
    s.receive_data(PLAIN_HANDSHAKE, 0.0)
    s.receive_data(w.write(3, 20, 0, 0, amf0_encode("connect", 1.0, {"app": "live"})), 0.0)
    assert s.buffered == 0 and not s.wants_close
