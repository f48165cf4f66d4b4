"""The fMP4 (CMAF) init segment: ``ftyp`` + ``moov`` with one ``trak`` per track.

Written once per broadcast or configuration change, so plain Python; the per-sample ``moof`` /
``mdat`` writer is native (:func:`kitch._mux.fragment`). Raises the core's ``MuxError`` on a
track it cannot describe.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from kitch.hls.codecs import parse_opus_head
from kitch.twins import mux as _mux


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """One track of the init segment (defaults: no dimensions, no audio parameters)."""

    track_id: int
    kind: str  # "video" or "audio"
    codec: str  # h264, hevc, av1, vp9, aac, opus
    timescale: int
    config: bytes  # the codec configuration record (avcC, hvcC, av1C, vpcC, ASC, OpusHead)
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0


def _box(kind: bytes, payload: bytes) -> bytes:
    return (len(payload) + 8).to_bytes(4, "big") + kind + payload


def _full(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return _box(kind, bytes((version,)) + flags.to_bytes(3, "big") + payload)


def _u16(v: int) -> bytes:
    return (v & 0xFFFF).to_bytes(2, "big")


def _u32(v: int) -> bytes:
    return (v & 0xFFFFFFFF).to_bytes(4, "big")


_MATRIX = b"".join(_u32(v) for v in (0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000))


def _descriptor(tag: int, payload: bytes) -> bytes:
    n = len(payload)
    size = bytes(
        (0x80 | ((n >> 21) & 0x7F), 0x80 | ((n >> 14) & 0x7F), 0x80 | ((n >> 7) & 0x7F), n & 0x7F)
    )
    return bytes((tag,)) + size + payload


_VISUAL = {"h264": (b"avc1", b"avcC"), "hevc": (b"hvc1", b"hvcC"), "av1": (b"av01", b"av1C")}


def _visual_entry(t: TrackInfo, kind: bytes, config_box: bytes) -> bytes:
    if t.width <= 0 or t.height <= 0:
        raise _mux.MuxError("video track needs width and height")
    body = (
        b"\x00" * 6 + _u16(1) + b"\x00" * 16 + _u16(t.width) + _u16(t.height)
        + _u32(0x00480000) + _u32(0x00480000) + _u32(0) + _u16(1)
        + b"\x00" * 32 + _u16(0x0018) + _u16(0xFFFF) + config_box
    )  # fmt: skip
    return _box(kind, body)


def _audio_entry(kind: bytes, channels: int, rate: int, config_box: bytes) -> bytes:
    rate = rate if rate <= 0xFFFF else 0
    body = (
        b"\x00" * 6 + _u16(1) + b"\x00" * 8 + _u16(max(1, channels)) + _u16(16)
        + _u16(0) + _u16(0) + _u32(rate << 16) + config_box
    )  # fmt: skip
    return _box(kind, body)


def opus_dops(head: bytes) -> bytes:
    """OpusHead (RFC 7845, little-endian) -> the dOps box payload (big-endian)."""
    channels, pre_skip, rate, gain, family, table = parse_opus_head(head)
    return struct.pack(">BBHIhB", 0, channels, pre_skip, rate, gain, family) + table


def _sample_entry(t: TrackInfo) -> bytes:
    names = _VISUAL.get(t.codec)
    if names is not None:
        return _visual_entry(t, names[0], _box(names[1], t.config))
    if t.codec == "vp9":
        return _visual_entry(t, b"vp09", _full(b"vpcC", 1, 0, t.config))
    if t.codec == "aac":
        dec_config = (
            bytes((0x40, (0x05 << 2) | 1)) + b"\x00\x00\x00" + _u32(0) + _u32(0)
            + _descriptor(0x05, t.config)
        )  # fmt: skip
        es = _u16(t.track_id) + b"\x00" + _descriptor(0x04, dec_config) + _descriptor(0x06, b"\x02")
        esds = _full(b"esds", 0, 0, _descriptor(0x03, es))
        return _audio_entry(b"mp4a", t.channels, t.sample_rate, esds)
    if t.codec == "opus":
        return _audio_entry(b"Opus", t.channels, 48000, _box(b"dOps", opus_dops(t.config)))
    raise _mux.MuxError(f"unsupported codec in fMP4: {t.codec!r}")


def _trak(t: TrackInfo) -> bytes:
    video = t.kind == "video"
    tkhd = _full(
        b"tkhd", 0, 3,
        _u32(0) + _u32(0) + _u32(t.track_id) + _u32(0) + _u32(0)
        + b"\x00" * 8 + _u16(0) + _u16(0 if video else 1) + _u16(0 if video else 0x0100)
        + _u16(0) + _MATRIX + _u32((t.width if video else 0) << 16)
        + _u32((t.height if video else 0) << 16),
    )  # fmt: skip
    mdhd = _full(
        b"mdhd", 0, 0, _u32(0) + _u32(0) + _u32(t.timescale) + _u32(0) + _u16(0x55C4) + _u16(0)
    )
    handler = b"vide" if video else b"soun"
    name = b"VideoHandler\x00" if video else b"SoundHandler\x00"
    hdlr = _full(b"hdlr", 0, 0, _u32(0) + handler + b"\x00" * 12 + name)
    media_header = _full(b"vmhd", 0, 1, b"\x00" * 8) if video else _full(b"smhd", 0, 0, b"\x00" * 4)
    dinf = _box(b"dinf", _full(b"dref", 0, 0, _u32(1) + _full(b"url ", 0, 1, b"")))
    stbl = _box(
        b"stbl",
        _full(b"stsd", 0, 0, _u32(1) + _sample_entry(t))
        + _full(b"stts", 0, 0, _u32(0)) + _full(b"stsc", 0, 0, _u32(0))
        + _full(b"stsz", 0, 0, _u32(0) + _u32(0)) + _full(b"stco", 0, 0, _u32(0)),
    )  # fmt: skip
    minf = _box(b"minf", media_header + dinf + stbl)
    return _box(b"trak", tkhd + _box(b"mdia", mdhd + hdlr + minf))


def init_segment(tracks: Sequence[TrackInfo]) -> bytes:
    """The CMAF header: ftyp + moov (mvhd, one trak per track, mvex/trex)."""
    tracks = list(tracks)
    if not tracks:
        raise _mux.MuxError("an init segment needs at least one track")
    ftyp = _box(b"ftyp", b"iso6" + _u32(0) + b"iso6cmfcmp41dash")
    next_id = max(t.track_id for t in tracks) + 1
    mvhd = _full(
        b"mvhd", 0, 0,
        _u32(0) + _u32(0) + _u32(1000) + _u32(0) + _u32(0x00010000)
        + _u16(0x0100) + b"\x00" * 10 + _MATRIX + b"\x00" * 24 + _u32(next_id),
    )  # fmt: skip
    traks = b"".join(_trak(t) for t in tracks)
    trex = b"".join(
        _full(b"trex", 0, 0, _u32(t.track_id) + _u32(1) + _u32(0) + _u32(0) + _u32(0))
        for t in tracks
    )
    return ftyp + _box(b"moov", mvhd + traks + _box(b"mvex", trex))
