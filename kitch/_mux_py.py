"""Pure-Python twin of :mod:`kitch._mux`: the muxer's per-sample loops, same API, same bytes.

:mod:`kitch.twins` selects it with ``KITCH_PUREPYTHON=1`` or when the extension is not built;
it is also the oracle the native build is tested against. Keep the two in step. What runs once
per broadcast (init segment, codec configuration readers) exists once, in plain Python, in
:mod:`kitch.hls`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

Sample = tuple[bytes | memoryview, int, int, bool]
Run = tuple[int, int, Sequence[Sample]]

__all__ = [
    "MuxError",
    "Run",
    "Sample",
    "TsMuxer",
    "adts_header",
    "audio_step",
    "crc32_mpeg",
    "fragment",
    "video_step",
]

_SYNC = 0x02000000
_NON_SYNC = 0x01010000
_TRUN_FLAGS = 0x000F01
_TFHD_FLAGS = 0x020000


class MuxError(ValueError):
    """Raised for malformed codec configuration or sample input."""


def fragment(sequence: int, runs: Sequence[Run]) -> bytes:
    """One CMAF fragment: moof (mfhd, traf per non-empty run: tfhd, tfdt v1, trun v1) + mdat."""
    norm = [r for r in runs if len(r[2])]
    if not norm:
        raise MuxError("a fragment needs at least one sample")
    moof_size = 8 + 16 + sum(8 + 16 + 20 + 20 + 16 * len(r[2]) for r in norm)
    head = [struct.pack(">I4sI4sII", moof_size, b"moof", 16, b"mfhd", 0, sequence & 0xFFFFFFFF)]
    payload: list[bytes | memoryview] = []
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


def _nal_size(data: bytes | memoryview, i: int, length_size: int) -> int:
    """The big-endian NAL length at ``data[i]``; raises MuxError if it or its NAL overruns."""
    n = len(data)
    if i + length_size > n:
        raise MuxError("truncated NAL length")
    size = int.from_bytes(data[i : i + length_size], "big")
    if i + length_size + size > n:
        raise MuxError("NAL unit overruns the sample")
    return size


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

    def video(self, data: bytes | memoryview, pts: int, dts: int, keyframe: bool) -> bytes:
        """One access unit (length-prefixed NALs) -> TS packets: AUD, parameter sets before a
        keyframe that lacks them, PES with PTS/DTS, PCR and random-access indicator."""
        if self.video_codec is None:
            raise MuxError("no video track")
        hevc = self.video_codec == "hevc"
        ls = self.length_size
        nals: list[bytes | memoryview] = []
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
        parts: list[bytes | memoryview] = [_AUD[self.video_codec]]
        if keyframe and not has_params:
            parts.append(self.param_sets)
        for nal in nals:
            parts.append(b"\x00\x00\x00\x01")
            parts.append(nal)
        es = b"".join(parts)
        pes = _pes_header(0xE0, pts, dts, len(es), False) + es
        return self._packetize(VIDEO_PID, pes, dts, keyframe)

    def audio(self, data: bytes | memoryview, pts: int) -> bytes:
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


# -- the segmenter's per-frame work -------------------------------------------------------------
# Natively, the common case of each frame is done outside the segmenter's own methods; here the
# segmenter itself is the twin: these take no frame, so it takes every frame its own way.


def video_step(seg: Any, packet: Any, frame_type: Callable[..., Any]) -> int:
    """Take no frame (0): ``Segmenter._video`` does the work (see the native module)."""
    return 0


def audio_step(seg: Any, packet: Any, frame_type: Callable[..., Any]) -> int:
    """Take no frame (0): ``Segmenter._audio`` does the work (see the native module)."""
    return 0
