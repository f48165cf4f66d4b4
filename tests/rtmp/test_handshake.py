"""Handshake: plain echo, and the digest form FFmpeg/Flash clients send, checked as they do."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest

from kitch.rtmp.errors import RtmpError
from kitch.rtmp.handshake import FMS_KEY, FP_KEY, handshake_reply

RANDOM = bytes(range(256)) * 12


def _offset(block: bytes, scheme: int) -> int:
    base = 8 if scheme == 0 else 772
    return sum(block[base : base + 4]) % 728 + base + 4


def _mac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def digest_c1(scheme: int) -> tuple[bytes, bytes]:
    c1 = bytearray(b"\x00\x00\x00\x00\x0a\x00\x0c\x02" + os.urandom(1528))
    off = _offset(c1, scheme)
    digest = _mac(FP_KEY[:30], bytes(c1[:off] + c1[off + 32 :]))
    c1[off : off + 32] = digest
    return bytes(c1), digest


def test_plain_client_gets_an_echo() -> None:
    c1 = b"\x00\x00\x00\x01" + b"\x00" * 4 + os.urandom(1528)
    reply, scheme = handshake_reply(b"\x03" + c1, RANDOM)
    assert scheme == -1
    assert len(reply) == 3073 and reply[0] == 3
    assert reply[1 + 1536 :] == c1


@pytest.mark.parametrize("scheme", [0, 1])
def test_digest_client_gets_a_verifiable_reply(scheme: int) -> None:
    c1, client_digest = digest_c1(scheme)
    reply, found = handshake_reply(b"\x03" + c1, RANDOM)
    assert found == scheme
    s1, s2 = reply[1:1537], reply[1537:]
    assert s1[4] >= 3  # FFmpeg only checks digests when the server version is set
    # S1 carries a digest keyed with the FMS key (FFmpeg tries offset scheme 1 then 0).
    ok = []
    for sch in (0, 1):
        off = _offset(s1, sch)
        ok.append(_mac(FMS_KEY[:36], s1[:off] + s1[off + 32 :]) == s1[off : off + 32])
    assert ok[scheme]
    # S2's last 32 bytes: HMAC(key=HMAC(full FMS key, client digest), S2[:1504]).
    key = _mac(FMS_KEY, client_digest)
    assert _mac(key, s2[:1504]) == s2[1504:]


def test_bad_client_digest_falls_back_to_plain() -> None:
    c1, _ = digest_c1(0)
    broken = bytes([c1[0] ^ 1]) + c1[1:]
    reply, found = handshake_reply(b"\x03" + broken, RANDOM)
    assert found == -1 and reply[1537:] == broken


@pytest.mark.parametrize("version", [0, 6, 0x16, 255])
def test_versions_other_than_3_are_refused(version: int) -> None:
    with pytest.raises(RtmpError, match="version"):
        handshake_reply(bytes([version]) + bytes(1536), RANDOM)


def test_short_c1_is_refused() -> None:
    with pytest.raises(RtmpError):
        handshake_reply(b"\x03" + bytes(100), RANDOM)
