"""Codec configuration records -> what a playlist and an init segment need to know.

Cold path (once per sequence header), so plain Python, written once (the native core holds
only the per-sample loops): H.264 (avcC + its SPS), AAC (AudioSpecificConfig), HEVC (hvcC + its
SPS), AV1 (av1C + the sequence header OBU), VP9 (vpcC + the keyframe's uncompressed header) and
Opus (OpusHead, packet durations from the TOC byte).

Every parser raises the core's ``MuxError`` on malformed input, never anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from kitch.twins import mux as _mux

#: Codecs MPEG-TS can carry in Kitch (the rest stay in fMP4).
TS_VIDEO = ("h264", "hevc")
TS_AUDIO = ("aac", "opus")


@dataclass(frozen=True, slots=True)
class VideoInfo:
    codec_string: str  # RFC 6381 CODECS value
    width: int
    height: int
    fps: float  # 0.0 when the stream does not say


@dataclass(frozen=True, slots=True)
class AudioInfo:
    codec_string: str
    sample_rate: int  # also the track timescale
    channels: int


class _Bits:
    """MSB-first bit reader (with exp-Golomb codes) raising MuxError past the end: the one bit
    reader of the codec parsers."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def u(self, n: int) -> int:
        if self.pos + n > len(self.data) * 8:
            raise _mux.MuxError(f"{self.what} truncated")
        v = 0
        for _ in range(n):
            v = (v << 1) | ((self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return v

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise _mux.MuxError(f"bad exp-Golomb code in {self.what}")
        return (1 << zeros) - 1 + (self.u(zeros) if zeros else 0)

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


def annexb_to_avcc(data: bytes) -> bytes:
    """Annex B (3- or 4-byte start codes) -> 4-byte length-prefixed NAL units. Start codes are
    found with ``bytes.find`` (this runs on every encoded frame of the ladder's rungs)."""
    parts: list[bytes] = []
    n = len(data)
    start = -1
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        if start >= 0:
            end = i
            while end > start and data[end - 1] == 0:
                end -= 1
            parts.append((end - start).to_bytes(4, "big") + data[start:end])
        start = i + 3
        i = data.find(b"\x00\x00\x01", start)
    if 0 <= start < n:
        parts.append((n - start).to_bytes(4, "big") + data[start:n])
    return b"".join(parts)


# ---- H.264 -----------------------------------------------------------------------------------


class SpsInfo(TypedDict):
    width: int
    height: int
    profile: int
    constraints: int
    level: int
    fps: float  # 0.0 when the VUI carries no timing


def _param_sets(avcc: bytes, i: int, count: int, what: str) -> tuple[list[bytes], int]:
    """``count`` 16-bit-length-prefixed parameter sets from ``avcc[i:]`` -> (list, next i)."""
    found = []
    for _ in range(count):
        if i + 2 > len(avcc):
            raise _mux.MuxError("truncated avcC")
        size = int.from_bytes(avcc[i : i + 2], "big")
        if i + 2 + size > len(avcc):
            raise _mux.MuxError(f"truncated avcC {what}")
        found.append(avcc[i + 2 : i + 2 + size])
        i += 2 + size
    return found, i


def parse_avc_config(avcc: bytes) -> tuple[list[bytes], list[bytes], int]:
    """AVCDecoderConfigurationRecord -> ``(sps_list, pps_list, nal_length_size)``."""
    if len(avcc) < 7 or avcc[0] != 1:
        raise _mux.MuxError("not an AVCDecoderConfigurationRecord")
    length_size = (avcc[4] & 3) + 1
    sps, i = _param_sets(avcc, 6, avcc[5] & 0x1F, "SPS")
    if i >= len(avcc):
        raise _mux.MuxError("avcC without PPS count")
    pps, i = _param_sets(avcc, i + 1, avcc[i], "PPS")
    if not sps:
        raise _mux.MuxError("avcC without SPS")
    return sps, pps, length_size


#: Largest width or height a sequence parameter set may declare (H.264 and HEVC level 6.2).
_MAX_PICTURE = 16888
#: profile_idc values whose SPS carries chroma format, bit depths and scaling lists.
_HIGH_PROFILES = (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135)


def _skip_scaling_lists(b: _Bits, chroma: int) -> None:
    for i in range(8 if chroma != 3 else 12):
        if b.u(1):
            last_scale = next_scale = 8
            for _ in range(16 if i < 6 else 64):
                if next_scale != 0:
                    next_scale = (last_scale + b.se() + 256) % 256
                if next_scale != 0:
                    last_scale = next_scale


def _vui_fps(b: _Bits) -> float:
    """Frame rate from the VUI timing info at the reader's position (0.0 without one)."""
    if not b.u(1):  # vui_parameters_present_flag
        return 0.0
    if b.u(1) and b.u(8) == 255:  # aspect ratio info, extended SAR
        b.u(32)
    if b.u(1):  # overscan info
        b.u(1)
    if b.u(1):  # video signal type
        b.u(4)
        if b.u(1):
            b.u(24)
    if b.u(1):  # chroma location
        b.ue()
        b.ue()
    if b.u(1):  # timing info
        units = b.u(32)
        scale = b.u(32)
        if units:
            return scale / (2.0 * units)
    return 0.0


def parse_sps(sps: bytes) -> SpsInfo:
    """H.264 SPS NAL (with its header byte) -> width, height, profile, constraints, level and
    fps (0.0 when the VUI carries no timing or is cut short)."""
    if len(sps) < 4 or (sps[0] & 0x1F) != 7:
        raise _mux.MuxError("not an H.264 SPS")
    b = _Bits(unescape_rbsp(sps[1:]), "SPS")
    profile, constraints, level = b.u(8), b.u(8), b.u(8)
    chroma = 1
    separate = False
    b.ue()  # seq_parameter_set_id
    if profile in _HIGH_PROFILES:
        chroma = b.ue()
        if chroma == 3:
            separate = bool(b.u(1))
        b.ue()  # bit depths
        b.ue()
        b.u(1)
        if b.u(1):
            _skip_scaling_lists(b, chroma)
    b.ue()  # log2_max_frame_num
    poc_type = b.ue()
    if poc_type == 0:
        b.ue()
    elif poc_type == 1:
        b.u(1)
        b.se()
        b.se()
        for _ in range(b.ue()):
            b.se()
    b.ue()  # max_num_ref_frames
    b.u(1)
    width_mbs = b.ue() + 1
    height_units = b.ue() + 1
    frame_mbs_only = b.u(1)
    if not frame_mbs_only:
        b.u(1)
    b.u(1)
    crop = (b.ue(), b.ue(), b.ue(), b.ue()) if b.u(1) else (0, 0, 0, 0)
    chroma_type = 0 if separate else chroma
    sub_w = 2 if chroma_type in (1, 2) else 1
    sub_h = 2 if chroma_type == 1 else 1
    unit_x = 1 if chroma_type == 0 else sub_w
    unit_y = (1 if chroma_type == 0 else sub_h) * (2 - frame_mbs_only)
    width = width_mbs * 16 - unit_x * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_units * 16 - unit_y * (crop[2] + crop[3])
    if not (0 < width <= _MAX_PICTURE and 0 < height <= _MAX_PICTURE):
        raise _mux.MuxError("SPS has no usable picture size")
    try:
        fps = _vui_fps(b)
    except _mux.MuxError:
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
        raise _mux.MuxError("SPS too short")
    return f"avc1.{s[1]:02x}{s[2]:02x}{s[3]:02x}"


def avc_info(avcc: bytes) -> VideoInfo:
    sps = parse_sps(parse_avc_config(avcc)[0][0])
    return VideoInfo(avc_codec_string(avcc), sps["width"], sps["height"], sps["fps"])


# ---- AAC -------------------------------------------------------------------------------------

_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
              8000, 7350)  # fmt: skip


def parse_asc(asc: bytes) -> tuple[int, int, int]:
    """AudioSpecificConfig -> ``(object_type, sample_rate, channels)``."""
    b = _Bits(asc, "AudioSpecificConfig")
    aot = b.u(5)
    if aot == 31:
        aot = 32 + b.u(6)
    idx = b.u(4)
    rate = b.u(24) if idx == 15 else (_AAC_RATES[idx] if idx < len(_AAC_RATES) else 0)
    channels = b.u(4)
    if aot == 0 or rate == 0:
        raise _mux.MuxError("bad AudioSpecificConfig")
    return aot, rate, channels


def aac_codec_string(asc: bytes) -> str:
    """RFC 6381 CODECS value for AAC: ``mp4a.40.<audio object type>``."""
    return f"mp4a.40.{parse_asc(asc)[0]}"


def aac_info(asc: bytes) -> AudioInfo:
    _, rate, channels = parse_asc(asc)
    return AudioInfo(aac_codec_string(asc), rate, channels)


# ---- HEVC ------------------------------------------------------------------------------------


def parse_hvcc(hvcc: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """HEVCDecoderConfigurationRecord -> ``([(nal_type, nal), ...], nal_length_size)``."""
    if len(hvcc) < 23 or hvcc[0] != 1:
        raise _mux.MuxError("not an HEVCDecoderConfigurationRecord")
    length_size = (hvcc[21] & 3) + 1
    nals: list[tuple[int, bytes]] = []
    i = 23
    for _ in range(hvcc[22]):
        if i + 3 > len(hvcc):
            raise _mux.MuxError("truncated hvcC")
        nal_type = hvcc[i] & 0x3F
        count = int.from_bytes(hvcc[i + 1 : i + 3], "big")
        i += 3
        for _ in range(count):
            if i + 2 > len(hvcc):
                raise _mux.MuxError("truncated hvcC")
            size = int.from_bytes(hvcc[i : i + 2], "big")
            if i + 2 + size > len(hvcc):
                raise _mux.MuxError("truncated hvcC NAL unit")
            nals.append((nal_type, hvcc[i + 2 : i + 2 + size]))
            i += 2 + size
    return nals, length_size


def hevc_codec_string(hvcc: bytes) -> str:
    """``hvc1.<space><profile>.<compat, bit-reversed hex>.<L|H><level>.<constraint bytes>``."""
    if len(hvcc) < 23 or hvcc[0] != 1:
        raise _mux.MuxError("not an HEVCDecoderConfigurationRecord")
    space = ("", "A", "B", "C")[hvcc[1] >> 6]
    tier = "H" if hvcc[1] & 0x20 else "L"
    profile = hvcc[1] & 0x1F
    compat = int.from_bytes(hvcc[2:6], "big")
    reversed_compat = int(f"{compat:032b}"[::-1], 2)
    constraints = list(hvcc[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    text = f"hvc1.{space}{profile}.{reversed_compat:X}.{tier}{hvcc[12]}"
    return text + "".join(f".{c:02X}" for c in constraints)


def parse_hevc_sps(nal: bytes) -> tuple[int, int]:
    """HEVC SPS NAL (with its 2-byte header) -> ``(width, height)`` after cropping."""
    if len(nal) < 4 or (nal[0] >> 1) & 0x3F != 33:
        raise _mux.MuxError("not an HEVC SPS")
    b = _Bits(unescape_rbsp(nal[2:]), "HEVC SPS")
    b.u(4)
    max_sub_layers = b.u(3)
    b.u(1)
    b.u(96)  # general profile/tier/level
    present = [(b.u(1), b.u(1)) for _ in range(max_sub_layers)]
    if max_sub_layers:
        b.u(2 * (8 - max_sub_layers))
    for profile_present, level_present in present:
        b.u(88 if profile_present else 0)
        b.u(8 if level_present else 0)
    b.ue()
    chroma = b.ue()
    if chroma == 3:
        separate = b.u(1)
        chroma = 0 if separate else 3
    width = b.ue()
    height = b.ue()
    if b.u(1):
        sub_w = 2 if chroma in (1, 2) else 1
        sub_h = 2 if chroma == 1 else 1
        left, right, top, bottom = b.ue(), b.ue(), b.ue(), b.ue()
        width -= sub_w * (left + right)
        height -= sub_h * (top + bottom)
    if not (0 < width <= _MAX_PICTURE and 0 < height <= _MAX_PICTURE):
        raise _mux.MuxError("HEVC SPS has no usable picture size")
    return width, height


def hevc_info(hvcc: bytes) -> VideoInfo:
    nals, _ = parse_hvcc(hvcc)
    sps = next((n for t, n in nals if t == 33), None)
    if sps is None:
        raise _mux.MuxError("hvcC without SPS")
    width, height = parse_hevc_sps(sps)
    return VideoInfo(hevc_codec_string(hvcc), width, height, 0.0)


# ---- AV1 -------------------------------------------------------------------------------------


def _leb128(data: bytes, i: int) -> tuple[int, int]:
    value = 0
    for k in range(8):
        if i >= len(data):
            raise _mux.MuxError("truncated leb128")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << (7 * k)
        if not byte & 0x80:
            return value, i
    raise _mux.MuxError("leb128 too long")


def av1_obus(data: bytes) -> list[tuple[int, bytes]]:
    """Low-overhead OBU stream -> ``[(obu_type, payload), ...]`` (every OBU must carry a size,
    but for the last one)."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        header = data[i]
        if header & 0x80:
            raise _mux.MuxError("OBU forbidden bit set")
        obu_type = (header >> 3) & 0xF
        i += 2 if header & 0x04 else 1
        if header & 0x02:
            size, i = _leb128(data, i)
        else:
            size = len(data) - i
        if i + size > len(data):
            raise _mux.MuxError("OBU overruns its buffer")
        out.append((obu_type, data[i : i + size]))
        i += size
    return out


def parse_av1_sequence_header(payload: bytes) -> tuple[int, int]:
    """AV1 sequence header OBU payload -> ``(max_width, max_height)``."""
    b = _Bits(payload, "AV1 sequence header")
    b.u(3)
    b.u(1)
    reduced = b.u(1)
    if reduced:
        b.u(5)
    else:
        decoder_model = False
        delay_length = 0
        if b.u(1):  # timing_info_present_flag
            b.u(64)
            if b.u(1):  # equal_picture_interval: uvlc
                zeros = 0
                while not b.u(1):
                    zeros += 1
                    if zeros >= 32:
                        raise _mux.MuxError("bad uvlc in AV1 sequence header")
                b.u(zeros)
            decoder_model = bool(b.u(1))
            if decoder_model:
                delay_length = b.u(5) + 1
                b.u(32)
                b.u(10)
        initial_delay = b.u(1)
        for _ in range(b.u(5) + 1):
            b.u(12)
            if b.u(5) > 7:
                b.u(1)
            if decoder_model and b.u(1):
                b.u(2 * delay_length + 1)
            if initial_delay and b.u(1):
                b.u(4)
    width_bits = b.u(4) + 1
    height_bits = b.u(4) + 1
    return b.u(width_bits) + 1, b.u(height_bits) + 1


def av1_codec_string(av1c: bytes) -> str:
    """``av01.<profile>.<level><M|H>.<bit depth>`` from an AV1CodecConfigurationRecord."""
    if len(av1c) < 4 or av1c[0] != 0x81:
        raise _mux.MuxError("not an AV1CodecConfigurationRecord")
    profile = av1c[1] >> 5
    level = av1c[1] & 0x1F
    tier = "H" if av1c[2] & 0x80 else "M"
    depth = (12 if av1c[2] & 0x20 else 10) if av1c[2] & 0x40 else 8
    return f"av01.{profile}.{level:02d}{tier}.{depth:02d}"


def av1_info(av1c: bytes, keyframe: bytes | None) -> VideoInfo:
    """Dimensions from the sequence header in av1C's configOBUs, else in the keyframe."""
    text = av1_codec_string(av1c)
    for source in (av1c[4:], keyframe or b""):
        for obu_type, payload in av1_obus(source):
            if obu_type == 1:
                width, height = parse_av1_sequence_header(payload)
                return VideoInfo(text, width, height, 0.0)
    raise _mux.MuxError("no AV1 sequence header yet")


# ---- VP9 -------------------------------------------------------------------------------------


def vp9_codec_string(vpcc: bytes) -> str:
    """``vp09.<profile>.<level>.<bit depth>`` from a VPCodecConfigurationRecord."""
    if len(vpcc) < 8:
        raise _mux.MuxError("not a VPCodecConfigurationRecord")
    return f"vp09.{vpcc[0]:02d}.{vpcc[1]:02d}.{vpcc[2] >> 4:02d}"


def parse_vp9_keyframe(frame: bytes) -> tuple[int, int]:
    """VP9 keyframe (uncompressed header) -> ``(width, height)``."""
    b = _Bits(frame, "VP9 frame header")
    if b.u(2) != 2:
        raise _mux.MuxError("not a VP9 frame")
    low = b.u(1)
    profile = (b.u(1) << 1) | low
    if profile == 3:
        b.u(1)
    if b.u(1):
        raise _mux.MuxError("VP9 show_existing_frame is not a keyframe")
    if b.u(1) != 0:
        raise _mux.MuxError("not a VP9 keyframe")
    b.u(2)
    if b.u(24) != 0x498342:
        raise _mux.MuxError("bad VP9 sync code")
    if profile >= 2:
        b.u(1)
    if b.u(3) != 7:  # not sRGB
        b.u(1)
        if profile in (1, 3):
            b.u(3)
    elif profile in (1, 3):
        b.u(1)
    return b.u(16) + 1, b.u(16) + 1


def vp9_info(vpcc: bytes, keyframe: bytes | None) -> VideoInfo:
    text = vp9_codec_string(vpcc)
    if keyframe is None:
        raise _mux.MuxError("VP9 dimensions need a keyframe")
    width, height = parse_vp9_keyframe(keyframe)
    return VideoInfo(text, width, height, 0.0)


# ---- Opus ------------------------------------------------------------------------------------


def parse_opus_head(head: bytes) -> tuple[int, int, int, int, int, bytes]:
    """OpusHead -> ``(channels, pre_skip, input_rate, gain, family, mapping_table)``."""
    if len(head) < 19 or head[:8] != b"OpusHead" or head[8] >> 4 != 0:
        raise _mux.MuxError("not an OpusHead")
    channels = head[9]
    if channels == 0:
        raise _mux.MuxError("OpusHead with 0 channels")
    pre_skip = int.from_bytes(head[10:12], "little")
    rate = int.from_bytes(head[12:16], "little")
    gain = int.from_bytes(head[16:18], "little", signed=True)
    family = head[18]
    table = b""
    if family != 0:
        table = head[19 : 21 + channels]
        if len(table) != 2 + channels:
            raise _mux.MuxError("OpusHead mapping table truncated")
    return channels, pre_skip, rate, gain, family, table


def opus_info(head: bytes) -> AudioInfo:
    channels = parse_opus_head(head)[0]
    return AudioInfo("opus", 48000, channels)


_SILK = (480, 960, 1920, 2880)
_CELT = (120, 240, 480, 960)


def opus_samples(packet: bytes | memoryview) -> int:
    """Samples (at 48 kHz) in one Opus packet, from its TOC byte (RFC 6716 section 3.1);
    960 (20 ms) for an empty or malformed packet."""
    if not packet:
        return 960
    config = packet[0] >> 3
    if config < 12:
        per = _SILK[config & 3]
    elif config < 16:
        per = 480 if config & 1 == 0 else 960
    else:
        per = _CELT[config & 3]
    code = packet[0] & 3
    frames = 1 if code == 0 else 2 if code < 3 else (packet[1] & 0x3F if len(packet) > 1 else 0)
    total = per * frames
    return total if 0 < total <= 5760 else 960


def audio_samples(codec: str, packet: bytes | memoryview) -> int:
    """Samples in one audio packet: AAC 1024, Opus from its TOC."""
    return opus_samples(packet) if codec == "opus" else 1024


def video_info(codec: str, config: bytes, keyframe: bytes | None) -> VideoInfo:
    """Codec string and picture size of a video configuration (``keyframe``: the first one,
    needed by VP9, and by AV1 when av1C carries no sequence header)."""
    if codec == "h264":
        return avc_info(config)
    if codec == "hevc":
        return hevc_info(config)
    if codec == "av1":
        return av1_info(config, keyframe)
    if codec == "vp9":
        return vp9_info(config, keyframe)
    raise _mux.MuxError(f"unsupported video codec {codec!r}")


def audio_info(codec: str, config: bytes) -> AudioInfo:
    if codec == "aac":
        return aac_info(config)
    if codec == "opus":
        return opus_info(config)
    raise _mux.MuxError(f"unsupported audio codec {codec!r}")


def parameter_sets(codec: str, config: bytes) -> tuple[bytes, int]:
    """Annex B parameter sets (H.264 SPS/PPS, HEVC VPS/SPS/PPS) of a configuration record and
    the NAL length size of its samples: what :class:`kitch._mux.TsMuxer` repeats at keyframes."""
    if codec == "h264":
        sps, pps, length_size = parse_avc_config(config)
        nals = [*sps, *pps]
    elif codec == "hevc":
        typed, length_size = parse_hvcc(config)
        nals = [n for t, n in typed if t in (32, 33, 34)]
    else:
        raise _mux.MuxError(f"no parameter sets for {codec!r}")
    return b"".join(b"\x00\x00\x00\x01" + n for n in nals), length_size
