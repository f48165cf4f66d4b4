# cython: language_level=3
"""Native muxer core: the per-sample loops of fragmented MP4 (CMAF) and MPEG-TS.

Sans-IO: bytes in, bytes out. ``fragment`` (moof/trun sample tables and the mdat copy) fills one
pre-sized buffer with C stores; :class:`TsMuxer` packetizes each access unit the same way. What
runs once per broadcast (the init segment, the codec configuration readers) is plain Python in
:mod:`kitch.hls`; so is the segmenter, but for the common case of each frame
(:func:`video_step`, :func:`audio_step`), which is done here. Import this module through :mod:`kitch.twins`, which picks it or its
pure-Python twin :mod:`kitch._mux_py` (same API, same bytes).

A run is ``(track_id, base_decode_time, samples)``; a sample is
``(data, duration, composition_offset, keyframe)`` with times in the track's timescale (plain
tuples so callers build them cheaply). Sample data is any contiguous byte buffer (``bytes``, or
the ``memoryview`` slices the RTMP ingest hands over without copying); it is read in place.
"""

from collections.abc import Sequence

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE, PyList_Insert
from libc.math cimport fabs, rint
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

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

#: ``(data, duration, composition_offset, keyframe)``, times in the track's timescale.
Sample = tuple[bytes | memoryview, int, int, bool]
#: ``(track_id, base_decode_time, samples)``.
Run = tuple[int, int, Sequence[Sample]]


class MuxError(ValueError):
    """Raised for malformed codec configuration or sample input."""


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
    runs is laid out in the mdat in run order: each sample's buffer is copied once, straight
    into the ``bytes`` object returned (no intermediate buffer).
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
            mdat_payload += len(s[0])
    if not norm:
        raise MuxError("a fragment needs at least one sample")
    cdef Py_ssize_t total = moof_size + 8 + mdat_payload
    if total > 0xFFFFFFFF:
        raise MuxError("fragment larger than 4 GiB")
    # Every byte of the fragment is written below, so the bytes object is filled in place.
    out = PyBytes_FromStringAndSize(NULL, total)
    cdef uint8_t* buf = <uint8_t*>PyBytes_AS_STRING(out)
    cdef uint8_t* p = buf
    cdef uint8_t* dp = buf + moof_size + 8  # next mdat write position
    cdef uint8_t* end = buf + total
    cdef Py_ssize_t traf_size, trun_size
    cdef int64_t cts
    cdef Py_buffer view
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
            duration = <uint32_t>s[1]
            cts = <int64_t>s[2]
            PyObject_GetBuffer(s[0], &view, PyBUF_SIMPLE)
            try:
                if view.len > end - dp:  # a buffer that changed size since it was measured
                    raise MuxError("sample data changed size while muxing")
                _put32(p, duration)
                _put32(p + 4, <uint32_t>view.len)
                _put32(p + 8, SYNC_FLAGS if s[3] else NON_SYNC_FLAGS)
                _put32(p + 12, <uint32_t>cts)
                p += 16
                memcpy(dp, view.buf, view.len)
                dp += view.len
            finally:
                PyBuffer_Release(&view)
    if dp != end:
        raise MuxError("sample data changed size while muxing")
    _put32(p, <uint32_t>(8 + mdat_payload)); _put_tag(p + 4, b"mdat")
    return out


# ---------------------------------------------------------------------------------------------
# NAL units


cdef inline Py_ssize_t _nal_size(const uint8_t* p, Py_ssize_t n, Py_ssize_t i,
                                 int length_size) except -1:
    """The big-endian NAL length at ``p[i]``; raises MuxError if it or its NAL overruns ``n``."""
    cdef Py_ssize_t size = 0
    cdef int j
    if i + length_size > n:
        raise MuxError("truncated NAL length")
    for j in range(length_size):
        size = (size << 8) | p[i + j]
    if i + length_size + size > n:
        raise MuxError("NAL unit overruns the sample")
    return size


# ---------------------------------------------------------------------------------------------
# MPEG-TS

TS_PACKET = 188
PMT_PID = 0x1000
VIDEO_PID = 0x100
AUDIO_PID = 0x101
_STREAM_TYPES = {"h264": 0x1B, "hevc": 0x24, "aac": 0x0F, "opus": 0x06}
_AUD = {"h264": b"\x00\x00\x00\x01\x09\xf0", "hevc": b"\x00\x00\x00\x01\x46\x01\x50"}
_ADTS_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
               8000, 7350)

cdef uint32_t _CRC[256]


cdef void _crc_init() noexcept:
    cdef uint32_t c
    cdef int i, k
    for i in range(256):
        c = (<uint32_t>i) << 24
        for k in range(8):
            c = ((c << 1) ^ 0x04C11DB7) if c & 0x80000000 else (c << 1)
        _CRC[i] = c


_crc_init()


def crc32_mpeg(bytes data):
    """CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial 0xFFFFFFFF, no reflection, no final xor)."""
    cdef const uint8_t* p = data
    cdef Py_ssize_t i, n = len(data)
    cdef uint32_t crc = 0xFFFFFFFF
    for i in range(n):
        crc = (crc << 8) ^ _CRC[((crc >> 24) ^ p[i]) & 0xFF]
    return crc


def adts_header(bytes asc, int frame_size):
    """The 7-byte ADTS header (no CRC) for one raw AAC frame of ``frame_size`` bytes.
    HE-AAC (object types 5 and 29) is signalled as AAC-LC at the core rate."""
    if len(asc) < 2:
        raise MuxError("AudioSpecificConfig truncated")
    cdef int aot = asc[0] >> 3
    cdef int index = ((asc[0] & 7) << 1) | (asc[1] >> 7)
    cdef int channels = (asc[1] >> 3) & 0xF
    if aot == 31 or index == 15:
        raise MuxError("AudioSpecificConfig not expressible in ADTS")
    cdef int profile = 1 if aot in (5, 29) else aot - 1
    if not 0 <= profile <= 3 or index >= len(_ADTS_RATES):
        raise MuxError("AAC object type or rate not expressible in ADTS")
    cdef int size = frame_size + 7
    if size > 0x1FFF:
        raise MuxError("AAC frame too large for ADTS")
    return bytes((0xFF, 0xF1, (profile << 6) | (index << 2) | (channels >> 2),
                  ((channels & 3) << 6) | (size >> 11), (size >> 3) & 0xFF,
                  ((size & 7) << 5) | 0x1F, 0xFC))


cdef inline void _put_ts_time(uint8_t* p, int marker, int64_t t) noexcept:
    cdef uint64_t v = (<uint64_t>t) & ((<uint64_t>1 << 33) - 1)
    p[0] = <uint8_t>((marker << 4) | (((v >> 30) & 7) << 1) | 1)
    p[1] = (v >> 22) & 0xFF
    p[2] = <uint8_t>((((v >> 15) & 0x7F) << 1) | 1)
    p[3] = (v >> 7) & 0xFF
    p[4] = <uint8_t>(((v & 0x7F) << 1) | 1)


cdef Py_ssize_t _put_pes_header(uint8_t* p, int stream_id, int64_t pts, int64_t dts,
                                Py_ssize_t es_size, bint bounded) noexcept:
    """Write the PES header at ``p``; returns its size (14 or 19)."""
    cdef Py_ssize_t opt, length
    p[0] = 0; p[1] = 0; p[2] = 1; p[3] = <uint8_t>stream_id
    p[6] = 0x84
    if dts != pts:
        p[7] = 0xC0; p[8] = 10
        _put_ts_time(p + 9, 3, pts)
        _put_ts_time(p + 14, 1, dts)
        opt = 13
    else:
        p[7] = 0x80; p[8] = 5
        _put_ts_time(p + 9, 2, pts)
        opt = 8
    length = opt + es_size
    if length > 0xFFFF or not bounded:
        length = 0
    p[4] = (length >> 8) & 0xFF
    p[5] = length & 0xFF
    return 6 + opt


cdef class TsMuxer:
    """MPEG-TS writer of one program (sans-IO; keeps the continuity counters).

    ``video_codec`` "h264" / "hevc" (or None) with ``param_sets`` (SPS/PPS, VPS/SPS/PPS as
    Annex B, repeated before every keyframe that lacks them) and the NAL ``length_size`` of the
    samples; ``audio_codec`` "aac" (ADTS from ``audio_config``, the AudioSpecificConfig) or
    "opus" (``audio_config`` is the OpusHead) or None. PIDs: PMT 0x1000, video 0x100, audio
    0x101; the PCR rides on the video PID (audio-only: the audio PID). Times are 90 kHz ticks.
    """

    cdef public object video_codec
    cdef public object audio_codec
    cdef public bytes param_sets
    cdef public int length_size
    cdef public bytes audio_config
    cdef public int opus_channels
    cdef public int pcr_pid
    cdef bint _hevc
    cdef bytes _aud
    cdef uint8_t _cc[0x2000]

    def __init__(self, video_codec=None, bytes param_sets=b"", int length_size=4,
                 audio_codec=None, bytes audio_config=b""):
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
        self._hevc = video_codec == "hevc"
        self._aud = _AUD.get(video_codec, b"")
        cdef int i
        for i in range(0x2000):
            self._cc[i] = 0

    cdef inline int _next_cc(self, int pid) noexcept:
        cdef int cc = self._cc[pid]
        self._cc[pid] = (cc + 1) & 0xF
        return cc

    cdef bytes _section(self, int pid, bytes section):
        section += crc32_mpeg(section).to_bytes(4, "big")
        head = bytes((0x47, 0x40 | (pid >> 8), pid & 0xFF, 0x10 | self._next_cc(pid), 0))
        return (head + section).ljust(TS_PACKET, b"\xff")

    def psi(self):
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
        pmt = (b"\x00\x01\xc1\x00\x00" + (0xE000 | self.pcr_pid).to_bytes(2, "big")
               + b"\xf0\x00" + streams)
        pmt_section = b"\x02" + (0xB000 | (len(pmt) + 4)).to_bytes(2, "big") + pmt
        return self._section(0, pat_section) + self._section(PMT_PID, pmt_section)

    cdef bytes _packetize(self, int pid, const uint8_t* pes, Py_ssize_t n, int64_t pcr, bint rai):
        """Split one PES into TS packets; ``pcr`` (90 kHz, -1: none) and the random-access
        indicator go into the first packet's adaptation field, stuffing into the last's."""
        cdef Py_ssize_t packets = (n // 176) + 2
        out = bytearray(packets * TS_PACKET)
        cdef uint8_t* o = out
        cdef uint8_t* q
        cdef Py_ssize_t w = 0, pos = 0, room, take, stuff, af_len
        cdef bint first = True, has_af
        cdef uint64_t base
        while pos < n:
            q = o + w
            q[0] = 0x47
            q[1] = <uint8_t>((0x40 if first else 0) | (pid >> 8))
            q[2] = pid & 0xFF
            has_af = False
            af_len = 0  # bytes after the adaptation_field_length byte
            if first and (pcr >= 0 or rai):
                has_af = True
                q[5] = (0x40 if rai else 0) | (0x10 if pcr >= 0 else 0)
                af_len = 1
                if pcr >= 0:
                    base = (<uint64_t>pcr) & ((<uint64_t>1 << 33) - 1)
                    q[6] = (base >> 25) & 0xFF
                    q[7] = (base >> 17) & 0xFF
                    q[8] = (base >> 9) & 0xFF
                    q[9] = (base >> 1) & 0xFF
                    q[10] = <uint8_t>(((base & 1) << 7) | 0x7E)
                    q[11] = 0
                    af_len = 7
            room = 184 - (1 + af_len if has_af else 0)
            take = n - pos if n - pos < room else room
            stuff = room - take
            if stuff:
                if has_af:
                    memset(q + 5 + af_len, 0xFF, stuff)
                    af_len += stuff
                elif stuff == 1:
                    has_af = True
                    af_len = 0
                else:
                    has_af = True
                    q[5] = 0
                    memset(q + 6, 0xFF, stuff - 2)
                    af_len = stuff - 1
            q[3] = <uint8_t>((0x30 if has_af else 0x10) | self._next_cc(pid))
            if has_af:
                q[4] = <uint8_t>af_len
                memcpy(q + 5 + af_len, pes + pos, take)
            else:
                memcpy(q + 4, pes + pos, take)
            pos += take
            w += TS_PACKET
            first = False
        return bytes(out[:w])

    def video(self, data, int64_t pts, int64_t dts, bint keyframe):
        """One access unit (length-prefixed NALs; any contiguous byte buffer) -> TS packets:
        AUD, parameter sets before a keyframe that lacks them, PES with PTS/DTS, PCR and
        random-access indicator."""
        if self.video_codec is None:
            raise MuxError("no video track")
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            return self._video(<const uint8_t*>view.buf, view.len, pts, dts, keyframe)
        finally:
            PyBuffer_Release(&view)

    cdef bytes _video(self, const uint8_t* p, Py_ssize_t n, int64_t pts, int64_t dts,
                      bint keyframe):
        cdef Py_ssize_t i = 0, size, j, es_size, nal_count = 0
        cdef int ls = self.length_size, t
        cdef int aud_type = 35 if self._hevc else 9
        cdef int sps_type = 33 if self._hevc else 7
        cdef bint has_params = False
        # first pass: validate, measure
        es_size = len(self._aud)
        while i < n:
            size = _nal_size(p, n, i, ls)
            i += ls
            if size:
                t = (p[i] >> 1) & 0x3F if self._hevc else p[i] & 0x1F
                if t != aud_type:
                    if t == sps_type:
                        has_params = True
                    es_size += 4 + size
            i += size
        cdef bint add_params = keyframe and not has_params
        if add_params:
            es_size += len(self.param_sets)
        buf = bytearray(19 + es_size)
        cdef uint8_t* b = buf
        cdef Py_ssize_t hl = _put_pes_header(b, 0xE0, pts, dts, es_size, False)
        cdef uint8_t* w = b + hl
        memcpy(w, <const char*>self._aud, len(self._aud))
        w += len(self._aud)
        if add_params:
            memcpy(w, <const char*>self.param_sets, len(self.param_sets))
            w += len(self.param_sets)
        i = 0
        while i < n:
            size = 0
            for j in range(ls):
                size = (size << 8) | p[i + j]
            i += ls
            if size:
                t = (p[i] >> 1) & 0x3F if self._hevc else p[i] & 0x1F
                if t != aud_type:
                    w[0] = 0; w[1] = 0; w[2] = 0; w[3] = 1
                    memcpy(w + 4, p + i, size)
                    w += 4 + size
            i += size
        return self._packetize(VIDEO_PID, b, hl + es_size, dts, keyframe)

    def audio(self, data, int64_t pts):
        """One audio frame -> TS packets (ADTS for AAC, the Opus control header for Opus)."""
        if self.audio_codec is None:
            raise MuxError("no audio track")
        cdef Py_ssize_t size = len(data)
        cdef int sid
        if self.audio_codec == "aac":
            es = adts_header(self.audio_config, size) + data
            sid = 0xC0
        else:
            es = b"\x7f\xe0" + b"\xff" * (size // 255) + bytes((size % 255,)) + data
            sid = 0xBD
        cdef Py_ssize_t es_size = len(es)
        buf = bytearray(19 + es_size)
        cdef uint8_t* b = buf
        cdef Py_ssize_t hl = _put_pes_header(b, sid, pts, pts, es_size, True)
        memcpy(b + hl, <const char*>es, es_size)
        return self._packetize(AUDIO_PID, b, hl + es_size,
                               pts if self.pcr_pid == AUDIO_PID else -1, True)


# ---------------------------------------------------------------------------------------------
# The segmenter's per-frame work (kitch.hls.segmenter.Segmenter), its common case

# the segmenter's constants (kitch/hls/segmenter.py)
cdef enum:
    _TICKS = 90000  # video timescale
    _FD_WINDOW = 30  # recent frame durations whose median is the frame duration
    _AUDIO_RESYNC_MS = 200
    _AUDIO_OVERLAP_MS = 100
    _PENDING_AUDIO_MAX = 2000
    _AAC_FRAME = 1024
cdef double _GRID_TOLERANCE_MS = 1.0
cdef double _OVERRUN_S = 0.4


cdef inline int64_t _pyround(double x) noexcept:
    # Python's round() of a float: to the nearest integer, halves to even (rint in the
    # default rounding mode)
    return <int64_t>rint(x)


cdef Py_ssize_t _bisect(list values, int64_t x, bint right) except -1:
    """bisect.bisect_left / bisect_right of ``x`` in a sorted list of ints."""
    cdef Py_ssize_t lo = 0, hi = PyList_GET_SIZE(values), mid
    cdef int64_t v
    while lo < hi:
        mid = (lo + hi) // 2
        v = <object>PyList_GET_ITEM(values, mid)
        if v < x or (right and v == x):
            lo = mid + 1
        else:
            hi = mid
    return lo


def video_step(seg, packet, frame_type):
    """The common case of ``Segmenter._video`` for ``packet``, done natively: a frame after the
    last one, not a keyframe, within the segment's and the part's bounds, whose stamp does not
    move the frame grid (on it, off it by a jump, or a stream without one). Returns 0 when the
    frame is not that case (nothing was changed: the segmenter takes it its own way), 1 when it
    was added to the part in progress, 2 when it also filled the part (the segmenter closes
    it). ``frame_type`` builds the part's frame record (``frame_type(data, dts, cts, keyframe,
    end)``)."""
    cdef object grid_obj = seg._grid
    cdef object last_obj = seg._last_vdts
    cdef object part_target = seg._part_target
    cdef object seg_start = seg._seg_start
    if (
        last_obj is None or not part_target or seg_start is None or seg._fresh
        or packet.keyframe
    ):
        return 0
    cdef int64_t last = last_obj
    cdef int64_t base_ms = seg._base_ms, offset_ms = seg._offset_ms
    cdef int64_t ms = packet.dts, pts_ms = packet.pts
    cdef int64_t dts, grid_end = 0, cts = 0, n, rel, origin_ms = 0, offset = 0
    cdef bint on_grid = False
    cdef double grid = 0.0, off
    cdef tuple origin
    if grid_obj is None:  # no known constant rate: stamps as they are
        dts = (ms - base_ms + offset_ms) * 90
    else:
        grid = grid_obj
        origin = seg._grid_origin
        origin_ms = origin[0]
        offset = offset_ms * 90 + <int64_t>origin[1]
        rel = ms - base_ms - origin_ms
        n = _pyround(rel / (grid / 90))
        off = fabs(rel - n * grid / 90)
        if off <= _GRID_TOLERANCE_MS:
            dts = offset + _pyround(n * grid)
            grid_end = offset + _pyround((n + 1) * grid)
            on_grid = True
        elif off <= grid / 360 and rel > 0:
            return 0  # a slow drift: the grid moves
        else:
            dts = (ms - base_ms + offset_ms) * 90  # a jump: taken as it is
    if pts_ms != ms:
        cts = (pts_ms - base_ms + offset_ms) * 90 - dts
        if grid_obj is not None:
            rel = pts_ms - base_ms - origin_ms
            n = _pyround(rel / (grid / 90))
            if fabs(rel - n * grid / 90) <= _GRID_TOLERANCE_MS:
                cts = offset + _pyround(n * grid) - dts
    cdef int64_t delta = dts - last
    if delta <= 0 or delta >= 10 * _TICKS:
        return 0  # a stamp to repair, or a gap
    cdef int64_t frame_ticks = seg._frame_ticks
    cdef int64_t target_ticks = _pyround(<double>part_target * _TICKS)
    cdef double t = dts / <double>_TICKS
    cdef object td = seg._target_duration
    cdef double limit = td if td else seg.settings.max_target_duration
    if t + frame_ticks / <double>_TICKS - <double>seg_start > limit + _OVERRUN_S:
        return 0  # the segment would outgrow TARGETDURATION: cut without a keyframe
    cdef list part = seg._part_v
    if part and dts + frame_ticks - <int64_t>part[0].dts > target_ticks:
        return 0  # a gap or a slower frame rate: the part closes first
    # the frame is ours: from here on, state changes
    cdef object deltas = seg._fd_deltas
    cdef list ordered = seg._fd_sorted
    if len(deltas) == _FD_WINDOW:
        del ordered[_bisect(ordered, deltas[0], False)]
    deltas.append(delta)
    PyList_Insert(ordered, _bisect(ordered, delta, True), delta)
    frame_ticks = <object>PyList_GET_ITEM(ordered, PyList_GET_SIZE(ordered) // 2)
    seg._frame_ticks = frame_ticks
    cdef int64_t end = grid_end if on_grid and grid_end > dts else dts + frame_ticks
    part.append(frame_type(packet.data, dts, cts, False, end))
    seg._last_vdts = dts
    return 2 if end - <int64_t>part[0].dts >= target_ticks - frame_ticks // 2 else 1


def audio_step(seg, packet, frame_type):
    """The common case of ``Segmenter._audio``, done natively: an AAC frame of a stream with
    video, within the gap and overlap tolerances of where the last one ended. Returns 0 when it
    is not that case (nothing was changed), 1 when the frame now waits for its video part.
    ``frame_type`` builds the frame record (``frame_type(data, ts, samples)``)."""
    cdef object a_next_obj = seg._a_next
    if a_next_obj is None or not seg._has_video or seg._acodec != "aac" or seg._a_catchup:
        return 0
    cdef int64_t a_next = a_next_obj, rate = seg._sample_rate
    cdef int64_t ms = <int64_t>packet.dts - <int64_t>seg._base_ms + <int64_t>seg._offset_ms
    cdef double ahead = ms - (a_next * 1000) / <double>rate
    if ahead > _AUDIO_RESYNC_MS or -ahead > _AUDIO_OVERLAP_MS:
        return 0
    pending = seg._pending_a
    pending.append(frame_type(packet.data, a_next, _AAC_FRAME))
    seg._a_next = seg._a_end = a_next + _AAC_FRAME
    if len(pending) > _PENDING_AUDIO_MAX:
        pending.popleft()
        seg.dropped_packets += 1
    return 1
