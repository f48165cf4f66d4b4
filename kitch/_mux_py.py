"""Pure-Python twin of :mod:`kitch._mux` (same API, same bytes): fallback and test oracle.

Chosen by :mod:`kitch.hls.mux` when the extension is not built or ``KITCH_PUREPYTHON=1``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TypedDict

Sample = tuple[bytes, int, int, bool]
Run = tuple[int, int, Sequence[Sample]]

__all__ = [
    "MuxError",
    "Run",
    "Sample",
    "TrackInfo",
    "TsMuxer",
    "aac_codec_string",
    "adts_header",
    "annexb_to_avcc",
    "avc_codec_string",
    "avcc_to_annexb",
    "crc32_mpeg",
    "fragment",
    "init_segment",
    "opus_dops",
    "parse_asc",
    "parse_avc_config",
    "parse_sps",
]

_SYNC = 0x02000000
_NON_SYNC = 0x01010000
_TRUN_FLAGS = 0x000F01
_TFHD_FLAGS = 0x020000


class MuxError(ValueError):
    """Raised for malformed codec configuration or sample input."""


class SpsInfo(TypedDict):
    width: int
    height: int
    profile: int
    constraints: int
    level: int
    fps: float


class TrackInfo:
    """One track of the init segment (defaults: no dimensions, no audio parameters)."""

    __slots__ = (
        "channels",
        "codec",
        "config",
        "height",
        "kind",
        "sample_rate",
        "timescale",
        "track_id",
        "width",
    )

    def __init__(
        self,
        track_id: int,
        kind: str,
        codec: str,
        timescale: int,
        config: bytes,
        width: int = 0,
        height: int = 0,
        sample_rate: int = 0,
        channels: int = 0,
    ) -> None:
        self.track_id = track_id
        self.kind = kind
        self.codec = codec
        self.timescale = timescale
        self.config = config
        self.width = width
        self.height = height
        self.sample_rate = sample_rate
        self.channels = channels


def fragment(sequence: int, runs: Sequence[Run]) -> bytes:
    """One CMAF fragment: moof (mfhd, traf per non-empty run: tfhd, tfdt v1, trun v1) + mdat."""
    norm = [r for r in runs if len(r[2])]
    if not norm:
        raise MuxError("a fragment needs at least one sample")
    moof_size = 8 + 16 + sum(8 + 16 + 20 + 20 + 16 * len(r[2]) for r in norm)
    head = [struct.pack(">I4sI4sII", moof_size, b"moof", 16, b"mfhd", 0, sequence & 0xFFFFFFFF)]
    payload: list[bytes] = []
    offset = moof_size + 8
    for track_id, base, samples in norm:
        n = len(samples)
        trun_size = 20 + 16 * n
        head.append(
            struct.pack(
                ">I4sI4sIII4sIQI4sIII",
                8 + 16 + 20 + trun_size,
                b"traf",
                16,
                b"tfhd",
                _TFHD_FLAGS,
                track_id,
                20,
                b"tfdt",
                0x01000000,
                base & 0xFFFFFFFFFFFFFFFF,
                trun_size,
                b"trun",
                0x01000000 | _TRUN_FLAGS,
                n,
                offset,
            )
        )
        for data, duration, cts, key in samples:
            head.append(
                struct.pack(
                    ">IIIi", duration & 0xFFFFFFFF, len(data), _SYNC if key else _NON_SYNC, cts
                )
            )
            payload.append(data)
            offset += len(data)
    size = sum(len(d) for d in payload)
    if moof_size + 8 + size > 0xFFFFFFFF:
        raise MuxError("fragment larger than 4 GiB")
    return b"".join([*head, struct.pack(">I4s", 8 + size, b"mdat"), *payload])


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
        raise MuxError("video track needs width and height")
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
    if len(head) < 19 or head[:8] != b"OpusHead" or head[9] == 0:
        raise MuxError("not an OpusHead")
    channels = head[9]
    out = (
        b"\x00" + bytes((channels,)) + head[10:12][::-1] + head[12:16][::-1]
        + head[16:18][::-1] + head[18:19]
    )  # fmt: skip
    if head[18] != 0:
        table = head[19 : 21 + channels]
        if len(table) != 2 + channels:
            raise MuxError("OpusHead mapping table truncated")
        out += table
    return out


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
    raise MuxError(f"unsupported codec in fMP4: {t.codec!r}")


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
        raise MuxError("an init segment needs at least one track")
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


def _nal_size(data: bytes, i: int, length_size: int) -> int:
    """The big-endian NAL length at ``data[i]``; raises MuxError if it or its NAL overruns."""
    n = len(data)
    if i + length_size > n:
        raise MuxError("truncated NAL length")
    size = int.from_bytes(data[i : i + length_size], "big")
    if i + length_size + size > n:
        raise MuxError("NAL unit overruns the sample")
    return size


def avcc_to_annexb(data: bytes, length_size: int = 4) -> bytes:
    """Length-prefixed NAL units -> Annex B (4-byte start codes). Raises MuxError if truncated."""
    parts: list[bytes] = []
    i, n = 0, len(data)
    while i < n:
        size = _nal_size(data, i, length_size)
        i += length_size
        parts.append(b"\x00\x00\x00\x01")
        parts.append(data[i : i + size])
        i += size
    return b"".join(parts)


def annexb_to_avcc(data: bytes) -> bytes:
    """Annex B (3- or 4-byte start codes) -> 4-byte length-prefixed NAL units."""
    parts: list[bytes] = []
    n = len(data)
    i = 0
    start = -1
    while i + 2 < n:
        if data[i] == 0 and data[i + 1] == 0 and data[i + 2] == 1:
            if start >= 0:
                end = i
                while end > start and data[end - 1] == 0:
                    end -= 1
                parts.append((end - start).to_bytes(4, "big") + data[start:end])
            i += 3
            start = i
        else:
            i += 1
    if 0 <= start < n:
        parts.append((n - start).to_bytes(4, "big") + data[start:n])
    return b"".join(parts)


def _param_sets(avcc: bytes, i: int, count: int, what: str) -> tuple[list[bytes], int]:
    """``count`` 16-bit-length-prefixed parameter sets from ``avcc[i:]`` -> (list, next i)."""
    n = len(avcc)
    found = []
    for _ in range(count):
        if i + 2 > n:
            raise MuxError("truncated avcC")
        size = (avcc[i] << 8) | avcc[i + 1]
        if i + 2 + size > n:
            raise MuxError(f"truncated avcC {what}")
        found.append(avcc[i + 2 : i + 2 + size])
        i += 2 + size
    return found, i


def parse_avc_config(avcc: bytes) -> tuple[list[bytes], list[bytes], int]:
    """AVCDecoderConfigurationRecord -> ``(sps_list, pps_list, nal_length_size)``."""
    n = len(avcc)
    if n < 7 or avcc[0] != 1:
        raise MuxError("not an AVCDecoderConfigurationRecord")
    length_size = (avcc[4] & 3) + 1
    sps, i = _param_sets(avcc, 6, avcc[5] & 0x1F, "SPS")
    if i >= n:
        raise MuxError("avcC without PPS count")
    pps, i = _param_sets(avcc, i + 1, avcc[i], "PPS")
    if not sps:
        raise MuxError("avcC without SPS")
    return sps, pps, length_size


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.value = int.from_bytes(data, "big") if data else 0
        self.nbits = len(data) * 8
        self.pos = 0

    def u(self, count: int) -> int:
        if self.pos + count > self.nbits:
            raise MuxError("SPS truncated")
        self.pos += count
        return (self.value >> (self.nbits - self.pos)) & ((1 << count) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise MuxError("bad exp-Golomb code in SPS")
        return ((1 << zeros) - 1) + self.u(zeros) if zeros else 0

    def se(self) -> int:
        k = self.ue()
        return (k + 1) >> 1 if k & 1 else -(k >> 1)


def unescape_rbsp(nal: bytes) -> bytes:
    """NAL payload -> RBSP: drops emulation-prevention bytes (00 00 03 -> 00 00)."""
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def parse_sps(sps: bytes) -> SpsInfo:
    """H.264 SPS NAL (with its header byte) -> width, height, profile, constraints, level, fps
    (0.0 when the VUI carries no timing)."""
    if len(sps) < 4 or (sps[0] & 0x1F) != 7:
        raise MuxError("not an H.264 SPS")
    b = _Bits(unescape_rbsp(sps[1:]))
    profile, constraints, level = b.u(8), b.u(8), b.u(8)
    chroma = 1
    separate = False
    b.ue()
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma = b.ue()
        if chroma == 3:
            separate = bool(b.u(1))
        b.ue()
        b.ue()
        b.u(1)
        if b.u(1):
            for i in range(8 if chroma != 3 else 12):
                if b.u(1):
                    last_scale = next_scale = 8
                    for _ in range(16 if i < 6 else 64):
                        if next_scale != 0:
                            next_scale = (last_scale + b.se() + 256) % 256
                        if next_scale != 0:
                            last_scale = next_scale
    b.ue()
    poc_type = b.ue()
    if poc_type == 0:
        b.ue()
    elif poc_type == 1:
        b.u(1)
        b.se()
        b.se()
        for _ in range(b.ue()):
            b.se()
    b.ue()
    b.u(1)
    width_mbs = b.ue() + 1
    height_units = b.ue() + 1
    frame_mbs_only = b.u(1)
    if not frame_mbs_only:
        b.u(1)
    b.u(1)
    crop = [0, 0, 0, 0]
    if b.u(1):
        crop = [b.ue(), b.ue(), b.ue(), b.ue()]
    chroma_type = 0 if separate else chroma
    sub_w = 2 if chroma_type in (1, 2) else 1
    sub_h = 2 if chroma_type == 1 else 1
    unit_x = 1 if chroma_type == 0 else sub_w
    unit_y = (1 if chroma_type == 0 else sub_h) * (2 - frame_mbs_only)
    width = width_mbs * 16 - unit_x * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_units * 16 - unit_y * (crop[2] + crop[3])
    fps = 0.0
    try:
        if b.u(1):
            if b.u(1) and b.u(8) == 255:
                b.u(16)
                b.u(16)
            if b.u(1):
                b.u(1)
            if b.u(1):
                b.u(3)
                b.u(1)
                if b.u(1):
                    b.u(24)
            if b.u(1):
                b.ue()
                b.ue()
            if b.u(1):
                units = b.u(32)
                scale = b.u(32)
                if units:
                    fps = scale / (2.0 * units)
    except MuxError:
        fps = 0.0
    return {
        "width": width,
        "height": height,
        "profile": profile,
        "constraints": constraints,
        "level": level,
        "fps": fps,
    }


def avc_codec_string(avcc: bytes) -> str:
    """RFC 6381 CODECS value from the first SPS of an avcC: ``avc1.PPCCLL``."""
    s = parse_avc_config(avcc)[0][0]
    if len(s) < 4:
        raise MuxError("SPS too short")
    return f"avc1.{s[1]:02x}{s[2]:02x}{s[3]:02x}"


_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
              8000, 7350)  # fmt: skip


def parse_asc(asc: bytes) -> tuple[int, int, int]:
    """AudioSpecificConfig -> ``(object_type, sample_rate, channels)``."""
    b = _Bits(asc)
    try:
        aot = b.u(5)
        if aot == 31:
            aot = 32 + b.u(6)
        idx = b.u(4)
        rate = b.u(24) if idx == 15 else (_AAC_RATES[idx] if idx < len(_AAC_RATES) else 0)
        channels = b.u(4)
    except MuxError:
        raise MuxError("AudioSpecificConfig truncated") from None
    if aot == 0 or rate == 0:
        raise MuxError("bad AudioSpecificConfig")
    return aot, rate, channels


def aac_codec_string(asc: bytes) -> str:
    """RFC 6381 CODECS value for AAC: ``mp4a.40.<audio object type>``."""
    return f"mp4a.40.{parse_asc(asc)[0]}"


# ---- MPEG-TS ---------------------------------------------------------------------------------

TS_PACKET = 188
PMT_PID = 0x1000
VIDEO_PID = 0x100
AUDIO_PID = 0x101
_STREAM_TYPES = {"h264": 0x1B, "hevc": 0x24, "aac": 0x0F, "opus": 0x06}
_AUD = {"h264": b"\x00\x00\x00\x01\x09\xf0", "hevc": b"\x00\x00\x00\x01\x46\x01\x50"}
_ADTS_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
               8000, 7350)  # fmt: skip


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 24
        for _ in range(8):
            c = ((c << 1) ^ 0x04C11DB7) if c & 0x80000000 else (c << 1)
        table.append(c & 0xFFFFFFFF)
    return table


_CRC = _crc_table()


def crc32_mpeg(data: bytes) -> int:
    """CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial 0xFFFFFFFF, no reflection, no final xor)."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[((crc >> 24) ^ b) & 0xFF]
    return crc


def adts_header(asc: bytes, frame_size: int) -> bytes:
    """The 7-byte ADTS header (no CRC) for one raw AAC frame of ``frame_size`` bytes.
    HE-AAC (object types 5 and 29) is signalled as AAC-LC at the core rate."""
    if len(asc) < 2:
        raise MuxError("AudioSpecificConfig truncated")
    aot = asc[0] >> 3
    index = ((asc[0] & 7) << 1) | (asc[1] >> 7)
    channels = (asc[1] >> 3) & 0xF
    if aot == 31 or index == 15:
        raise MuxError("AudioSpecificConfig not expressible in ADTS")
    profile = 1 if aot in (5, 29) else aot - 1
    if not 0 <= profile <= 3 or index >= len(_ADTS_RATES):
        raise MuxError("AAC object type or rate not expressible in ADTS")
    size = frame_size + 7
    if size > 0x1FFF:
        raise MuxError("AAC frame too large for ADTS")
    return bytes(
        (
            0xFF,
            0xF1,
            (profile << 6) | (index << 2) | (channels >> 2),
            ((channels & 3) << 6) | (size >> 11),
            (size >> 3) & 0xFF,
            ((size & 7) << 5) | 0x1F,
            0xFC,
        )
    )


def _ts_time(marker: int, t: int) -> bytes:
    t &= (1 << 33) - 1
    return bytes(
        (
            (marker << 4) | (((t >> 30) & 7) << 1) | 1,
            (t >> 22) & 0xFF,
            (((t >> 15) & 0x7F) << 1) | 1,
            (t >> 7) & 0xFF,
            ((t & 0x7F) << 1) | 1,
        )
    )


def _pes_header(stream_id: int, pts: int, dts: int, es_size: int, bounded: bool) -> bytes:
    if dts != pts:
        opt = b"\x84\xc0\x0a" + _ts_time(3, pts) + _ts_time(1, dts)
    else:
        opt = b"\x84\x80\x05" + _ts_time(2, pts)
    length = len(opt) + es_size
    if length > 0xFFFF or not bounded:
        length = 0
    return bytes((0, 0, 1, stream_id)) + length.to_bytes(2, "big") + opt


class TsMuxer:
    """MPEG-TS writer of one program (sans-IO; keeps the continuity counters).

    ``video_codec`` "h264" / "hevc" (or None) with ``param_sets`` (SPS/PPS, VPS/SPS/PPS as
    Annex B, repeated before every keyframe that lacks them) and the NAL ``length_size`` of the
    samples; ``audio_codec`` "aac" (ADTS from ``audio_config``, the AudioSpecificConfig) or
    "opus" (``audio_config`` is the OpusHead) or None. PIDs: PMT 0x1000, video 0x100, audio
    0x101; the PCR rides on the video PID (audio-only: the audio PID). Times are 90 kHz ticks.
    """

    def __init__(
        self,
        video_codec: str | None = None,
        param_sets: bytes = b"",
        length_size: int = 4,
        audio_codec: str | None = None,
        audio_config: bytes = b"",
    ) -> None:
        if video_codec is None and audio_codec is None:
            raise MuxError("a transport stream needs at least one track")
        if video_codec is not None and video_codec not in _AUD:
            raise MuxError(f"unsupported video codec in MPEG-TS: {video_codec!r}")
        if audio_codec is not None and audio_codec not in ("aac", "opus"):
            raise MuxError(f"unsupported audio codec in MPEG-TS: {audio_codec!r}")
        if not 1 <= length_size <= 4:
            raise MuxError("NAL length size must be 1..4")
        self.video_codec = video_codec
        self.audio_codec = audio_codec
        self.param_sets = param_sets
        self.length_size = length_size
        self.audio_config = audio_config
        self.opus_channels = 0
        if audio_codec == "aac":
            adts_header(audio_config, 0)  # validate once
        elif audio_codec == "opus":
            if len(audio_config) < 19 or audio_config[:8] != b"OpusHead":
                raise MuxError("not an OpusHead")
            self.opus_channels = audio_config[9]
        self.pcr_pid = VIDEO_PID if video_codec is not None else AUDIO_PID
        self._cc: dict[int, int] = {}

    def _next_cc(self, pid: int) -> int:
        cc = self._cc.get(pid, 0)
        self._cc[pid] = (cc + 1) & 0xF
        return cc

    def _section(self, pid: int, section: bytes) -> bytes:
        section += crc32_mpeg(section).to_bytes(4, "big")
        head = bytes((0x47, 0x40 | (pid >> 8), pid & 0xFF, 0x10 | self._next_cc(pid), 0))
        return (head + section).ljust(TS_PACKET, b"\xff")

    def psi(self) -> bytes:
        """PAT + PMT (two packets): write at the start of every segment."""
        pat = b"\x00\x01\xc1\x00\x00\x00\x01" + (0xE000 | PMT_PID).to_bytes(2, "big")
        pat_section = b"\x00" + (0xB000 | (len(pat) + 4)).to_bytes(2, "big") + pat
        streams = b""
        if self.video_codec is not None:
            streams += bytes((_STREAM_TYPES[self.video_codec], 0xE0 | (VIDEO_PID >> 8)))
            streams += bytes((VIDEO_PID & 0xFF, 0xF0, 0))
        if self.audio_codec is not None:
            desc = b""
            if self.audio_codec == "opus":
                desc = b"\x05\x04Opus\x7f\x02\x80" + bytes((self.opus_channels,))
            streams += bytes((_STREAM_TYPES[self.audio_codec], 0xE0 | (AUDIO_PID >> 8)))
            streams += bytes((AUDIO_PID & 0xFF, 0xF0 | (len(desc) >> 8), len(desc) & 0xFF))
            streams += desc
        pmt = (
            b"\x00\x01\xc1\x00\x00" + (0xE000 | self.pcr_pid).to_bytes(2, "big") + b"\xf0\x00"
            + streams
        )  # fmt: skip
        pmt_section = b"\x02" + (0xB000 | (len(pmt) + 4)).to_bytes(2, "big") + pmt
        return self._section(0, pat_section) + self._section(PMT_PID, pmt_section)

    def _packetize(self, pid: int, pes: bytes, pcr: int, rai: bool) -> bytes:
        """Split one PES into TS packets; ``pcr`` (90 kHz, -1: none) and the random-access
        indicator go into the first packet's adaptation field, stuffing into the last's."""
        out: list[bytes] = []
        n = len(pes)
        pos = 0
        first = True
        while pos < n:
            af: bytes | None = None
            if first and (pcr >= 0 or rai):
                flags = (0x40 if rai else 0) | (0x10 if pcr >= 0 else 0)
                af = bytes((flags,))
                if pcr >= 0:
                    base = pcr & ((1 << 33) - 1)
                    af += bytes(
                        (
                            (base >> 25) & 0xFF,
                            (base >> 17) & 0xFF,
                            (base >> 9) & 0xFF,
                            (base >> 1) & 0xFF,
                            ((base & 1) << 7) | 0x7E,
                            0,
                        )
                    )
            room = 184 - (1 + len(af) if af is not None else 0)
            take = min(room, n - pos)
            stuff = room - take
            if stuff:
                if af is not None:
                    af += b"\xff" * stuff
                elif stuff == 1:
                    af = b""
                else:
                    af = b"\x00" + b"\xff" * (stuff - 2)
            head = bytes(
                (
                    0x47,
                    (0x40 if first else 0) | (pid >> 8),
                    pid & 0xFF,
                    (0x30 if af is not None else 0x10) | self._next_cc(pid),
                )
            )
            if af is not None:
                head += bytes((len(af),)) + af
            out.append(head + pes[pos : pos + take])
            pos += take
            first = False
        return b"".join(out)

    def video(self, data: bytes, pts: int, dts: int, keyframe: bool) -> bytes:
        """One access unit (length-prefixed NALs) -> TS packets: AUD, parameter sets before a
        keyframe that lacks them, PES with PTS/DTS, PCR and random-access indicator."""
        if self.video_codec is None:
            raise MuxError("no video track")
        hevc = self.video_codec == "hevc"
        ls = self.length_size
        nals: list[bytes] = []
        has_params = False
        i = 0
        n = len(data)
        while i < n:
            size = _nal_size(data, i, ls)
            i += ls
            if size:
                t = (data[i] >> 1) & 0x3F if hevc else data[i] & 0x1F
                if t == (35 if hevc else 9):
                    i += size
                    continue
                if t == (33 if hevc else 7):
                    has_params = True
                nals.append(data[i : i + size])
            i += size
        parts = [_AUD[self.video_codec]]
        if keyframe and not has_params:
            parts.append(self.param_sets)
        for nal in nals:
            parts.append(b"\x00\x00\x00\x01")
            parts.append(nal)
        es = b"".join(parts)
        pes = _pes_header(0xE0, pts, dts, len(es), False) + es
        return self._packetize(VIDEO_PID, pes, dts, keyframe)

    def audio(self, data: bytes, pts: int) -> bytes:
        """One audio frame -> TS packets (ADTS for AAC, the Opus control header for Opus)."""
        if self.audio_codec is None:
            raise MuxError("no audio track")
        if self.audio_codec == "aac":
            es = adts_header(self.audio_config, len(data)) + data
            sid = 0xC0
        else:
            size = len(data)
            es = b"\x7f\xe0" + b"\xff" * (size // 255) + bytes((size % 255,)) + data
            sid = 0xBD
        pes = _pes_header(sid, pts, pts, len(es), True) + es
        pcr = pts if self.pcr_pid == AUDIO_PID else -1
        return self._packetize(AUDIO_PID, pes, pcr, True)
