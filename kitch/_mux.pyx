# cython: language_level=3
"""Native muxer core: fragmented MP4 (CMAF) boxes and the small H.264/AAC helpers.

Sans-IO: bytes in, bytes out. The hot paths (``fragment``: moof/trun sample tables and the mdat
copy) fill one pre-sized buffer with C stores; the init segment is built once per broadcast and
written with plain Python concatenation.

Track and sample shapes (kept to plain tuples so callers build them cheaply):

* ``TrackInfo(track_id, kind, codec, timescale, config, width, height, sample_rate, channels)``
* a run is ``(track_id, base_decode_time, samples)``; a sample is
  ``(data, duration, composition_offset, keyframe)`` with times in the track's timescale.
"""

from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

__all__ = [
    "TrackInfo",
    "MuxError",
    "init_segment",
    "fragment",
    "avcc_to_annexb",
    "annexb_to_avcc",
    "parse_avc_config",
    "parse_sps",
    "parse_asc",
    "avc_codec_string",
    "aac_codec_string",
]


class MuxError(ValueError):
    """Raised for malformed codec configuration or sample input."""


cdef class TrackInfo:
    """One track of the init segment (defaults: no dimensions, no audio parameters)."""

    cdef public int track_id
    cdef public str kind
    cdef public str codec
    cdef public int timescale
    cdef public bytes config
    cdef public int width
    cdef public int height
    cdef public int sample_rate
    cdef public int channels

    def __init__(self, int track_id, str kind, str codec, int timescale, bytes config,
                 int width=0, int height=0, int sample_rate=0, int channels=0):
        self.track_id = track_id
        self.kind = kind
        self.codec = codec
        self.timescale = timescale
        self.config = config
        self.width = width
        self.height = height
        self.sample_rate = sample_rate
        self.channels = channels

    def __repr__(self):
        return (f"TrackInfo({self.track_id}, {self.kind!r}, {self.codec!r}, {self.timescale}, "
                f"<{len(self.config)} bytes>, {self.width}, {self.height}, "
                f"{self.sample_rate}, {self.channels})")


# ---------------------------------------------------------------------------------------------
# Big-endian stores into a raw buffer


cdef inline void _put32(uint8_t* p, uint32_t v) noexcept nogil:
    p[0] = (v >> 24) & 0xFF
    p[1] = (v >> 16) & 0xFF
    p[2] = (v >> 8) & 0xFF
    p[3] = v & 0xFF


cdef inline void _put64(uint8_t* p, uint64_t v) noexcept nogil:
    _put32(p, <uint32_t>(v >> 32))
    _put32(p + 4, <uint32_t>v)


cdef inline void _put_tag(uint8_t* p, const char* tag) noexcept nogil:
    p[0] = tag[0]
    p[1] = tag[1]
    p[2] = tag[2]
    p[3] = tag[3]


# sample_flags: sync = depends on no other sample; non-sync = depends on others + is_non_sync
# trun flags: data-offset, duration, size, flags, composition offset present;
# tfhd flags: default-base-is-moof
cdef enum:
    SYNC_FLAGS = 0x02000000
    NON_SYNC_FLAGS = 0x01010000
    TRUN_FLAGS = 0x000F01
    TFHD_FLAGS = 0x020000


def fragment(uint32_t sequence, runs):
    """One CMAF fragment: ``moof`` (mfhd, one traf per non-empty run) followed by one ``mdat``.

    ``runs`` is a sequence of ``(track_id, base_decode_time, samples)``; each traf has tfhd
    (default-base-is-moof), tfdt version 1 (64-bit decode time) and trun version 1 (signed
    composition offsets) with per-sample duration, size, flags and offset. Sample data of all
    runs is laid out in the mdat in run order.
    """
    cdef list norm = []
    cdef Py_ssize_t moof_size = 8 + 16
    cdef Py_ssize_t mdat_payload = 0
    cdef Py_ssize_t n
    cdef object run
    cdef object s
    for run in runs:
        samples = run[2]
        n = len(samples)
        if n == 0:
            continue
        norm.append(run)
        moof_size += 8 + 16 + 20 + 20 + 16 * n
        for s in samples:
            mdat_payload += len(<bytes>s[0])
    if not norm:
        raise MuxError("a fragment needs at least one sample")
    cdef Py_ssize_t total = moof_size + 8 + mdat_payload
    if total > 0xFFFFFFFF:
        raise MuxError("fragment larger than 4 GiB")
    out = bytearray(total)
    cdef uint8_t* buf = out
    cdef uint8_t* p = buf
    cdef uint8_t* dp = buf + moof_size + 8  # next mdat write position
    cdef Py_ssize_t traf_size, trun_size
    cdef int64_t cts
    cdef bytes data
    cdef Py_ssize_t dlen
    cdef uint32_t duration

    _put32(p, <uint32_t>moof_size); _put_tag(p + 4, b"moof"); p += 8
    _put32(p, 16); _put_tag(p + 4, b"mfhd"); _put32(p + 8, 0); _put32(p + 12, sequence); p += 16
    for run in norm:
        samples = run[2]
        n = len(samples)
        trun_size = 20 + 16 * n
        traf_size = 8 + 16 + 20 + trun_size
        _put32(p, <uint32_t>traf_size); _put_tag(p + 4, b"traf"); p += 8
        _put32(p, 16); _put_tag(p + 4, b"tfhd"); _put32(p + 8, TFHD_FLAGS)
        _put32(p + 12, <uint32_t>run[0]); p += 16
        _put32(p, 20); _put_tag(p + 4, b"tfdt"); _put32(p + 8, 0x01000000)
        _put64(p + 12, <uint64_t>run[1]); p += 20
        _put32(p, <uint32_t>trun_size); _put_tag(p + 4, b"trun")
        _put32(p + 8, 0x01000000 | TRUN_FLAGS); _put32(p + 12, <uint32_t>n)
        _put32(p + 16, <uint32_t>(dp - buf))  # data offset from the start of moof
        p += 20
        for s in samples:
            data = <bytes>s[0]
            dlen = len(data)
            duration = <uint32_t>s[1]
            cts = <int64_t>s[2]
            _put32(p, duration)
            _put32(p + 4, <uint32_t>dlen)
            _put32(p + 8, SYNC_FLAGS if s[3] else NON_SYNC_FLAGS)
            _put32(p + 12, <uint32_t>cts)
            p += 16
            memcpy(dp, <const char*>data, dlen)
            dp += dlen
    _put32(p, <uint32_t>(8 + mdat_payload)); _put_tag(p + 4, b"mdat")
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Init segment (built once per broadcast/config: plain Python is fine here)


cdef bytes _box(bytes kind, bytes payload):
    return (len(payload) + 8).to_bytes(4, "big") + kind + payload


cdef bytes _full(bytes kind, int version, int flags, bytes payload):
    return _box(kind, bytes((version,)) + flags.to_bytes(3, "big") + payload)


cdef bytes _u16(int v):
    return (v & 0xFFFF).to_bytes(2, "big")


cdef bytes _u32(long long v):
    return (v & 0xFFFFFFFF).to_bytes(4, "big")


_MATRIX = b"".join(_u32(v) for v in (0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000))


cdef bytes _descriptor(int tag, bytes payload):
    cdef int n = len(payload)
    # 4-byte expandable size keeps the layout simple and is valid for any size < 2^28
    size = bytes((0x80 | ((n >> 21) & 0x7F), 0x80 | ((n >> 14) & 0x7F),
                  0x80 | ((n >> 7) & 0x7F), n & 0x7F))
    return bytes((tag,)) + size + payload


cdef bytes _sample_entry(TrackInfo t):
    if t.codec == "h264":
        if t.width <= 0 or t.height <= 0:
            raise MuxError("video track needs width and height")
        body = (b"\x00" * 6 + _u16(1) + b"\x00" * 16 + _u16(t.width) + _u16(t.height)
                + _u32(0x00480000) + _u32(0x00480000) + _u32(0) + _u16(1)
                + b"\x00" * 32 + _u16(0x0018) + _u16(0xFFFF) + _box(b"avcC", t.config))
        return _box(b"avc1", body)
    if t.codec == "aac":
        rate = t.sample_rate if t.sample_rate <= 0xFFFF else 0
        dec_config = (bytes((0x40, (0x05 << 2) | 1)) + b"\x00\x00\x00" + _u32(0) + _u32(0)
                      + _descriptor(0x05, t.config))
        es = _u16(t.track_id) + b"\x00" + _descriptor(0x04, dec_config) + _descriptor(0x06, b"\x02")
        esds = _full(b"esds", 0, 0, _descriptor(0x03, es))
        body = (b"\x00" * 6 + _u16(1) + b"\x00" * 8 + _u16(max(1, t.channels)) + _u16(16)
                + _u16(0) + _u16(0) + _u32(rate << 16) + esds)
        return _box(b"mp4a", body)
    raise MuxError(f"unsupported codec in fMP4: {t.codec!r}")


cdef bytes _trak(TrackInfo t):
    cdef bint video = t.kind == "video"
    tkhd = _full(b"tkhd", 0, 3, _u32(0) + _u32(0) + _u32(t.track_id) + _u32(0) + _u32(0)
                 + b"\x00" * 8 + _u16(0) + _u16(0 if video else 1) + _u16(0 if video else 0x0100)
                 + _u16(0) + _MATRIX + _u32((t.width if video else 0) << 16)
                 + _u32((t.height if video else 0) << 16))
    mdhd = _full(b"mdhd", 0, 0, _u32(0) + _u32(0) + _u32(t.timescale) + _u32(0)
                 + _u16(0x55C4) + _u16(0))
    handler = b"vide" if video else b"soun"
    name = b"VideoHandler\x00" if video else b"SoundHandler\x00"
    hdlr = _full(b"hdlr", 0, 0, _u32(0) + handler + b"\x00" * 12 + name)
    media_header = (_full(b"vmhd", 0, 1, b"\x00" * 8) if video
                    else _full(b"smhd", 0, 0, b"\x00" * 4))
    dinf = _box(b"dinf", _full(b"dref", 0, 0, _u32(1) + _full(b"url ", 0, 1, b"")))
    stbl = _box(b"stbl", _full(b"stsd", 0, 0, _u32(1) + _sample_entry(t))
                + _full(b"stts", 0, 0, _u32(0)) + _full(b"stsc", 0, 0, _u32(0))
                + _full(b"stsz", 0, 0, _u32(0) + _u32(0)) + _full(b"stco", 0, 0, _u32(0)))
    minf = _box(b"minf", media_header + dinf + stbl)
    return _box(b"trak", tkhd + _box(b"mdia", mdhd + hdlr + minf))


def init_segment(tracks):
    """The CMAF header: ``ftyp`` + ``moov`` (mvhd, one trak per track, mvex/trex)."""
    cdef TrackInfo t
    tracks = list(tracks)
    if not tracks:
        raise MuxError("an init segment needs at least one track")
    ftyp = _box(b"ftyp", b"iso6" + _u32(0) + b"iso6cmfcmp41dash")
    next_id = max((<TrackInfo>t).track_id for t in tracks) + 1
    mvhd = _full(b"mvhd", 0, 0, _u32(0) + _u32(0) + _u32(1000) + _u32(0) + _u32(0x00010000)
                 + _u16(0x0100) + b"\x00" * 10 + _MATRIX + b"\x00" * 24 + _u32(next_id))
    traks = b"".join(_trak(t) for t in tracks)
    trex = b"".join(_full(b"trex", 0, 0, _u32(t.track_id) + _u32(1) + _u32(0) + _u32(0) + _u32(0))
                    for t in tracks)
    return ftyp + _box(b"moov", mvhd + traks + _box(b"mvex", trex))


# ---------------------------------------------------------------------------------------------
# H.264 helpers


def avcc_to_annexb(bytes data, int length_size=4):
    """Length-prefixed NAL units -> Annex B (4-byte start codes). Raises MuxError if truncated."""
    cdef const uint8_t* p = data
    cdef Py_ssize_t n = len(data), i = 0, size, j
    cdef list parts = []
    while i < n:
        if i + length_size > n:
            raise MuxError("truncated NAL length")
        size = 0
        for j in range(length_size):
            size = (size << 8) | p[i + j]
        i += length_size
        if i + size > n:
            raise MuxError("NAL unit overruns the sample")
        parts.append(b"\x00\x00\x00\x01")
        parts.append(data[i:i + size])
        i += size
    return b"".join(parts)


def annexb_to_avcc(bytes data):
    """Annex B (3- or 4-byte start codes) -> 4-byte length-prefixed NAL units."""
    cdef const uint8_t* p = data
    cdef Py_ssize_t n = len(data), i = 0, start = -1, end
    cdef list parts = []
    while i + 2 < n:
        if p[i] == 0 and p[i + 1] == 0 and p[i + 2] == 1:
            if start >= 0:
                end = i
                while end > start and p[end - 1] == 0:
                    end -= 1
                parts.append((end - start).to_bytes(4, "big") + data[start:end])
            i += 3
            start = i
        else:
            i += 1
    if start >= 0 and start < n:
        parts.append((n - start).to_bytes(4, "big") + data[start:n])
    return b"".join(parts)


def parse_avc_config(bytes avcc):
    """AVCDecoderConfigurationRecord -> ``(sps_list, pps_list, nal_length_size)``."""
    cdef Py_ssize_t n = len(avcc), i, k, count, size
    if n < 7 or avcc[0] != 1:
        raise MuxError("not an AVCDecoderConfigurationRecord")
    length_size = (avcc[4] & 3) + 1
    sps = []
    pps = []
    i = 6
    count = avcc[5] & 0x1F
    for k in range(count):
        if i + 2 > n:
            raise MuxError("truncated avcC")
        size = (avcc[i] << 8) | avcc[i + 1]
        if i + 2 + size > n:
            raise MuxError("truncated avcC SPS")
        sps.append(avcc[i + 2:i + 2 + size])
        i += 2 + size
    if i >= n:
        raise MuxError("avcC without PPS count")
    count = avcc[i]
    i += 1
    for k in range(count):
        if i + 2 > n:
            raise MuxError("truncated avcC")
        size = (avcc[i] << 8) | avcc[i + 1]
        if i + 2 + size > n:
            raise MuxError("truncated avcC PPS")
        pps.append(avcc[i + 2:i + 2 + size])
        i += 2 + size
    if not sps:
        raise MuxError("avcC without SPS")
    return sps, pps, length_size


cdef class _Bits:
    cdef bytes data
    cdef const uint8_t* p
    cdef Py_ssize_t nbits
    cdef Py_ssize_t pos

    def __cinit__(self, bytes data):
        self.data = data
        self.p = data
        self.nbits = len(data) * 8
        self.pos = 0

    cdef uint32_t u(self, int count) except? 0xFFFFFFFF:
        cdef uint32_t v = 0
        cdef int k
        if self.pos + count > self.nbits:
            raise MuxError("SPS truncated")
        for k in range(count):
            v = (v << 1) | ((self.p[self.pos >> 3] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return v

    cdef uint32_t ue(self) except? 0xFFFFFFFF:
        cdef int zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise MuxError("bad exp-Golomb code in SPS")
        if zeros == 0:
            return 0
        return ((<uint32_t>1 << zeros) - 1) + self.u(zeros)

    cdef int se(self) except? -0x7FFFFFFF:
        cdef uint32_t k = self.ue()
        if k & 1:
            return <int>((k + 1) >> 1)
        return -<int>(k >> 1)


cdef bytes _unescape(bytes nal):
    """Drop emulation-prevention bytes (00 00 03 -> 00 00)."""
    cdef const uint8_t* p = nal
    cdef Py_ssize_t n = len(nal), i
    cdef int zeros = 0
    out = bytearray()
    for i in range(n):
        if zeros >= 2 and p[i] == 3:
            zeros = 0
            continue
        out.append(p[i])
        zeros = zeros + 1 if p[i] == 0 else 0
    return bytes(out)


def parse_sps(bytes sps):
    """H.264 SPS NAL (with its header byte) -> dict of width, height, profile, constraints,
    level, and fps (0.0 when the VUI carries no timing)."""
    if len(sps) < 4 or (sps[0] & 0x1F) != 7:
        raise MuxError("not an H.264 SPS")
    cdef _Bits b = _Bits(_unescape(sps[1:]))
    cdef uint32_t profile = b.u(8), constraints = b.u(8), level = b.u(8)
    cdef uint32_t chroma = 1, i, j, count
    cdef int last_scale, next_scale
    cdef bint separate = False
    b.ue()
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma = b.ue()
        if chroma == 3:
            separate = b.u(1)
        b.ue()
        b.ue()
        b.u(1)
        if b.u(1):
            for i in range(8 if chroma != 3 else 12):
                if b.u(1):
                    last_scale = 8
                    next_scale = 8
                    for j in range(16 if i < 6 else 64):
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
        count = b.ue()
        for i in range(count):
            b.se()
    b.ue()
    b.u(1)
    width_mbs = b.ue() + 1
    height_units = b.ue() + 1
    frame_mbs_only = b.u(1)
    if not frame_mbs_only:
        b.u(1)
    b.u(1)
    crop_l = crop_r = crop_t = crop_b = 0
    if b.u(1):
        crop_l = b.ue()
        crop_r = b.ue()
        crop_t = b.ue()
        crop_b = b.ue()
    chroma_type = 0 if separate else chroma
    sub_w = 2 if chroma_type in (1, 2) else 1
    sub_h = 2 if chroma_type == 1 else 1
    unit_x = 1 if chroma_type == 0 else sub_w
    unit_y = (1 if chroma_type == 0 else sub_h) * (2 - frame_mbs_only)
    width = width_mbs * 16 - unit_x * (crop_l + crop_r)
    height = (2 - frame_mbs_only) * height_units * 16 - unit_y * (crop_t + crop_b)
    fps = 0.0
    try:
        if b.u(1):  # vui_parameters_present_flag
            if b.u(1):
                if b.u(8) == 255:
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
        "width": int(width), "height": int(height), "profile": int(profile),
        "constraints": int(constraints), "level": int(level), "fps": fps,
    }


def avc_codec_string(bytes avcc):
    """RFC 6381 CODECS value from the first SPS of an avcC: ``avc1.PPCCLL``."""
    sps, _, _ = parse_avc_config(avcc)
    s = sps[0]
    if len(s) < 4:
        raise MuxError("SPS too short")
    return f"avc1.{s[1]:02x}{s[2]:02x}{s[3]:02x}"


_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
              8000, 7350)


def parse_asc(bytes asc):
    """AudioSpecificConfig -> ``(object_type, sample_rate, channels)``."""
    cdef _Bits b = _Bits(asc)
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
    return int(aot), int(rate), int(channels)


def aac_codec_string(bytes asc):
    """RFC 6381 CODECS value for AAC: ``mp4a.40.<audio object type>``."""
    aot, _, _ = parse_asc(asc)
    return f"mp4a.40.{aot}"
