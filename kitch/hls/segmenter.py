"""Sans-IO LL-HLS segmenter: MediaPackets in, init segments / parts / segment ends out.

Codecs: video H.264, HEVC, AV1, VP9; audio AAC, Opus. Output: CMAF (fMP4) parts, or with
``HlsSettings.format == "ts"`` MPEG-TS chunks (H.264/HEVC + AAC/Opus only; other codecs stay in
fMP4) that the store joins into segments.

Timelines: video in 90 kHz ticks. A stream at a known constant frame rate (the SPS's VUI timing,
or the nearest common rate, corrected if the stamps drift off it) has its millisecond stamps
snapped to that rate's frame grid, so 30 fps stamps 0, 33, 67, 100 ms become 0, 3000, 6000, 9000
ticks: every part lasts whole frames exactly and starts where the one before ended; other streams
use milliseconds x 90. Audio in its sample rate, stamped by sample counts (AAC: 1024 per
frame, Opus: from each packet's TOC) anchored to the RTMP stamp of the first frame and
re-anchored only when the stamps jump more than ``_AUDIO_RESYNC_MS`` ahead (a gap). Stamps that
fall more than ``_AUDIO_OVERLAP_MS`` behind the samples already placed (a publisher whose audio
clock runs fast against its stamps, an encoder restart or a looped file that overlaps) drop
frames until they are back within half a frame, so audio and video stay in sync however long
the broadcast runs (counted in ``audio_resyncs`` once per catch-up, frames in
``dropped_packets``). The output
timeline starts at 0 at the first keyframe and stays monotonic across reconnects.

Rules: segments start at keyframes (audio-only: cut by time); a part closes as soon as the
frame just received fills it (its last sample lasts until the next grid frame, or the estimated
frame duration off the grid), so parts are
listed without waiting for the next frame; every part is at most PART-TARGET and, but for a
segment's last, at least 85 % of it; non-monotonic video DTS is repaired (+1 ms) and counted.
TARGETDURATION is decided once (second keyframe, or ``max_target_duration`` reached without
one) and never changes; a GOP that grows later gets segments cut without a keyframe
(``forced_cuts``), so no segment outgrows it.

Wall clock: :meth:`Segmenter.feed` takes the packet's arrival time; each part carries the wall
clock of its first sample (PROGRAM-DATE-TIME), anchored at the arrival of the frame that starts
the output timeline (the first keyframe; after a reconnect, the first keyframe after it). For
the first ``_ANCHOR_SECONDS`` of media after that the anchor moves earlier whenever a packet
arrives sooner after it than its media time says (arrival minus media time is smallest for the
packet that waited least): if the first keyframe was handled late (a busy process), the
playlist's clock would otherwise run ahead of the wall clock by that delay for the whole
broadcast, and players would believe they are closer to live than they are.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

from kitch.hls import codecs
from kitch.hls.events import Event, InitReady, PartReady, SegmentEnded
from kitch.hls.init_segment import TrackInfo, init_segment
from kitch.hls.settings import HlsSettings
from kitch.media import MediaPacket
from kitch.twins import mux as _mux

_video_step, _audio_step = _mux.video_step, _mux.audio_step

VIDEO_TIMESCALE = 90_000
AAC_FRAME = 1024
VIDEO_TRACK = 1
AUDIO_TRACK = 2
_AUDIO_RESYNC_MS = 200
_AUDIO_OVERLAP_MS = 100  # stamps this far behind the placed samples: drop frames to catch up
_FD_WINDOW = 30  # recent frame durations whose median is the frame duration
_PRESTART_AUDIO_MAX = 400  # frames buffered while waiting for the first keyframe (~9 s)
_PENDING_AUDIO_MAX = 2000  # frames waiting for a video part to close before we drop
_COMMON_FPS = (24000 / 1001, 24.0, 25.0, 30000 / 1001, 30.0, 50.0, 60000 / 1001, 60.0)
_SLACK_S = 0.001  # millisecond jitter of RTMP stamps
_GRID_TOLERANCE_MS = 1.0  # a stamp this close to the frame grid is on it (ms rounding + jitter)
# a segment may run this far past TARGETDURATION before it is cut without a keyframe: the spec
# bounds EXTINF rounded to the nearest integer, so anything under +0.5 s is still within it
_OVERRUN_S = 0.4
_ANCHOR_SECONDS = 4.0  # media seconds after a (re)start in which PROGRAM-DATE-TIME may move earlier


def audio_overlaps(behind_ms: float, samples: int, rate: int, catching_up: bool) -> bool:
    """Whether an audio frame whose stamp is ``behind_ms`` behind where the next sample goes is
    dropped: past ``_AUDIO_OVERLAP_MS`` a catch-up starts, and it goes on until a frame is back
    within half a frame (``samples`` long at ``rate``). The rule of the source segmenter and of
    the rungs that share its audio (:class:`~kitch.hls.follower.Follower`)."""
    return behind_ms > _AUDIO_OVERLAP_MS or (catching_up and behind_ms > samples * 500 / rate)


@dataclass(slots=True)
class _Video:
    data: bytes | memoryview
    dts: int  # ticks
    cts: int  # ticks, signed
    key: bool
    end: int  # ticks: where this frame ends if it is the last one of its part


@dataclass(slots=True)
class _Audio:
    data: bytes | memoryview
    ts: int  # samples
    n: int  # samples in this frame


def frame_steps() -> tuple[object, object, object, object]:
    """What a native caller (``kitch._ingest.FrameLane``) needs to take a frame the way
    :meth:`Segmenter._video` / ``_audio`` would: ``(video_step, video_record, audio_step,
    audio_record)``; the steps answer 2 when the frame filled its part, then call
    :meth:`Segmenter.close_part`."""
    return _video_step, _Video, _audio_step, _Audio


class Segmenter:
    """Cuts one rendition into CMAF parts and segments. Call :meth:`feed` with every packet
    (config packets included); it returns the events to hand to the store, in order."""

    def __init__(self, settings: HlsSettings) -> None:
        self.settings = settings
        self._vcfg: bytes | None = None
        self._acfg: bytes | None = None
        self._vcodec = ""
        self._acodec = ""
        self._audio_frame = AAC_FRAME  # samples per audio frame (first frame seen)
        self._init: bytes | None = None
        self._init_key: tuple[object, ...] | None = None
        self._ts: _mux.TsMuxer | None = None  # set while the output is MPEG-TS
        # after a mid-stream sequence header change: parameter sets (length-prefixed) put in
        # front of every fMP4 keyframe, as players that keep their decoder across EXT-X-MAP
        # changes (FFmpeg) never read the new init's avcC/hvcC
        self._inband = b""
        self._has_video = False
        self._has_audio = False
        self._sample_rate = 44100
        self._vui_fps = 0.0
        self._started = False
        self._restart_pending = False  # config changed: new init + discontinuity at next start
        self._discontinuity = False  # the next part opens a discontinuity
        self._rebase = True  # next start re-bases input timestamps (first start, reconnect)
        self._base_ms = 0
        self._offset_ms = 0
        self._prestart_audio: deque[tuple[MediaPacket, float | None]] = deque(
            maxlen=_PRESTART_AUDIO_MAX
        )
        self._prestart_video: list[MediaPacket] = []
        self._prestart_video_at: float | None = None  # arrival of the first buffered keyframe
        self._wall_anchor: float | None = None  # wall clock at output time 0
        self._anchor_until: float | None = None  # media seconds the anchor may still move for
        # running state
        self._last_vdts: int | None = None
        self._fd_deltas: deque[int] = deque(maxlen=_FD_WINDOW)
        self._fd_sorted: list[int] = []  # the same deltas, kept sorted (for their median)
        self._a_next: int | None = None
        self._a_end = 0  # samples
        self._a_catchup = False  # dropping audio frames whose stamps lag the placed samples
        self._v_end = 0  # ticks
        self._part_v: list[_Video] = []
        self._part_a: list[_Audio] = []
        self._pending_a: deque[_Audio] = deque()
        self._seg_start: float | None = None  # seconds
        self._seg_parts = 0  # parts emitted in the segment in progress
        self._fresh = True  # next video frame follows a (re)start: no frame-duration sample
        self._part_target: float | None = None
        self._frame_ticks: int = 3000
        # exact frame duration in ticks when the stream runs at a known constant rate: its
        # millisecond stamps are snapped onto that grid, so durations have no rounding holes
        self._grid: float | None = None
        self._grid_origin = (0, 0)  # (input ms, output ticks) of the grid's frame 0
        self._target_duration: int | None = None
        self._last_key: float | None = None
        self._gop: float | None = None
        self._seq = 0
        # stats
        self.repaired_dts = 0
        self.dropped_packets = 0
        self.audio_resyncs = 0
        self.forced_cuts = 0
        self.frame_rate = 0.0

    # ---- public state -------------------------------------------------------------------

    @property
    def part_target(self) -> float | None:
        """PART-TARGET in seconds once known (after the first few frames)."""
        return self._part_target

    @property
    def target_duration(self) -> int | None:
        """TARGETDURATION once known (second keyframe; audio-only: at start)."""
        return self._target_duration

    @property
    def gop_seconds(self) -> float | None:
        """The last observed keyframe interval."""
        return self._gop

    # ---- input --------------------------------------------------------------------------

    def feed(self, packet: MediaPacket, now: float | None = None) -> list[Event]:
        """Take one packet that arrived at wall-clock ``now`` (Unix seconds; None: unknown,
        parts then carry no ``program_date_time``); return the events it completes."""
        out: list[Event] = []
        if packet.is_config:
            self._config(packet)
            return out
        if self._anchor_until is not None and now is not None and self._started:
            self._reanchor(packet.dts, now)
        if packet.kind == "video":
            if packet.codec != self._vcodec or self._vcfg is None:
                self.dropped_packets += 1
                return out
            if self._restart_pending and self._started and packet.keyframe:
                self._close_all(out, None, flush_audio=True)
                self._started = False
            if not self._started:
                self._prestart(packet, out, now)
                return out
            self._video(packet, out)
        elif packet.kind == "audio":
            if packet.codec != self._acodec or self._acfg is None:
                self.dropped_packets += 1
                return out
            if self._restart_pending and self._started and not self._has_video:
                self._close_all(out, None, flush_audio=True)
                self._started = False
            if not self._started:
                self._prestart(packet, out, now)
                return out
            if not self._has_audio:
                self.dropped_packets += 1
                return out
            self._audio(packet, out)
        return out

    def _reanchor(self, dts_ms: int, now: float) -> None:
        media = (dts_ms - self._base_ms + self._offset_ms) / 1000
        if self._anchor_until is None or media > self._anchor_until:
            self._anchor_until = None
        elif self._wall_anchor is not None and now - media < self._wall_anchor:
            self._wall_anchor = now - media

    def close_part(self) -> list[Event]:
        """Close the part in progress: a frame a native step took (see :func:`frame_steps`)
        filled it."""
        out: list[Event] = []
        self._close_part(out, None)
        return out

    def discontinuity(self) -> list[Event]:
        """The publisher reconnected: flush, then restart timestamps at the next keyframe."""
        out: list[Event] = []
        self._close_all(out, None, flush_audio=True)
        self._started = False
        self._rebase = True
        self._last_key = None
        self._discontinuity = True
        self._prestart_audio.clear()
        self._prestart_video.clear()
        self._wall_anchor = None
        self._anchor_until = None
        return out

    def end(self) -> list[Event]:
        """Flush the part and segment in progress."""
        out: list[Event] = []
        self._close_all(out, None, flush_audio=True)
        return out

    # ---- configuration ------------------------------------------------------------------

    def _config(self, packet: MediaPacket) -> None:
        # each check raises MuxError on garbage
        config = bytes(packet.data)  # a config packet's data is bytes: no copy
        if packet.kind == "video" and packet.codec in _VIDEO_CHECKS:
            if config == self._vcfg and packet.codec == self._vcodec:
                return
            _VIDEO_CHECKS[packet.codec](config)
            self._vcfg = config
            self._vcodec = packet.codec
        elif packet.kind == "audio" and packet.codec in ("aac", "opus"):
            if config == self._acfg and packet.codec == self._acodec:
                return
            codecs.audio_info(packet.codec, config)
            self._acfg = config
            self._acodec = packet.codec
        else:
            self.dropped_packets += 1
            return
        if self._started:
            self._restart_pending = True

    def _build_init(self, out: list[Event], keyframe: bytes | None) -> None:
        self._has_video = self._vcfg is not None
        self._has_audio = self._acfg is not None
        vcodec = self._vcodec if self._vcfg is not None else None
        acodec = self._acodec if self._acfg is not None else None
        tracks, names, width, height = track_infos(
            self._vcodec, self._vcfg, self._acodec, self._acfg, keyframe
        )
        ts = (
            self.settings.format == "ts"
            and (vcodec is None or vcodec in codecs.TS_VIDEO)
            and (acodec is None or acodec in codecs.TS_AUDIO)
        )
        if ts:
            params, length_size = (
                codecs.parameter_sets(self._vcodec, self._vcfg)
                if self._vcfg is not None
                else (b"", 4)
            )
            self._ts = _mux.TsMuxer(vcodec, params, length_size, acodec, self._acfg or b"")
            data = b""
        else:
            self._ts = None
            data = init_segment(tracks)
        if self._restart_pending:
            self._discontinuity = True
        self._restart_pending = False
        key = (",".join(names), data, self._vcfg, self._acfg, ts)
        if key != self._init_key:
            self._inband = b""
            if self._init_key is not None and not ts and vcodec in ("h264", "hevc"):
                assert self._vcfg is not None
                params, length_size = codecs.parameter_sets(self._vcodec, self._vcfg)
                if length_size == 4:
                    self._inband = codecs.annexb_to_avcc(params)
            self._init_key = key
            self._init = data
            out.append(
                InitReady(
                    data,
                    ",".join(names),
                    width,
                    height,
                    self.frame_rate,
                    self._has_video,
                    self._has_audio,
                    "ts" if ts else "fmp4",
                )
            )

    # ---- start-up: wait for a keyframe and enough frames to know the frame rate ---------

    def _prestart(self, packet: MediaPacket, out: list[Event], now: float | None) -> None:
        if packet.kind == "audio":
            self._prestart_audio.append((packet, now))
            if self._vcfg is None and not self._prestart_video:
                span = (packet.dts - self._prestart_audio[0][0].dts) / 1000
                if span >= self.settings.audio_only_wait:
                    self._start(out)
            return
        if not self._prestart_video and not packet.keyframe:
            self.dropped_packets += 1
            return
        if not self._prestart_video:
            self._prestart_video_at = now
        self._prestart_video.append(packet)
        if self._part_target is not None:
            self._start(out)
            return
        frames = self._prestart_video
        span = (frames[-1].dts - frames[0].dts) / 1000
        if len(frames) >= 2 and (len(frames) >= 4 or span >= 0.15):
            self._start(out)

    def _start(self, out: list[Event]) -> None:
        video = self._prestart_video
        self._prestart_video = []
        timed = list(self._prestart_audio)
        self._prestart_audio.clear()
        audio = [a for a, _ in timed]
        arrived = self._prestart_video_at if video else timed[0][1]
        keyframe = bytes(video[0].data) if video else None  # read by the codec parsers
        if self._vcfg is not None:
            self._vui_fps = codecs.video_info(self._vcodec, self._vcfg, keyframe).fps
        if self._acfg is not None:
            rate = codecs.audio_info(self._acodec, self._acfg).sample_rate
            if rate != self._sample_rate:
                # a new audio config: what was placed, in the new rate's units, and the next
                # frame anchors at its stamp (the frames since the config was sent were laid
                # out at the old rate)
                self._a_end = round(self._a_end * rate / self._sample_rate)
                self._a_next = None
                self._a_catchup = False
                self._sample_rate = rate
            if audio:
                self._audio_frame = codecs.audio_samples(self._acodec, audio[0].data)
        if self._part_target is None:
            self._decide_part_target(video)
        self._build_init(out, keyframe)
        first_ms = video[0].dts if video else audio[0].dts
        if self._rebase:
            self._base_ms = first_ms
            self._offset_ms = math.ceil(
                max(self._v_end / VIDEO_TIMESCALE, self._a_end / self._sample_rate) * 1000
            )
            self._rebase = False
            self._a_next = None
            self._a_catchup = False
            self._wall_anchor = None if arrived is None else arrived - self._offset_ms / 1000
            self._anchor_until = self._offset_ms / 1000 + _ANCHOR_SECONDS
        self._started = True
        self._fresh = True
        if video:
            audio = [a for a in audio if a.dts >= first_ms]
        else:
            self._decide_target_duration(None)
        # replay in DTS order through the normal path
        merged = sorted(video + audio, key=lambda p: (p.dts, p.kind != "video"))
        for p in merged:
            if p.kind == "video":
                self._video(p, out)
            elif self._has_audio:
                self._audio(p, out)

    def _decide_part_target(self, video: list[MediaPacket]) -> None:
        nominal = self.settings.part_duration
        if video and len(video) >= 2:
            fd = (video[-1].dts - video[0].dts) / 1000 / (len(video) - 1)
            exact = self._vui_fps > 0 and abs(1 / self._vui_fps - fd) <= 0.05 * fd
            guess = None if exact else _closest_rate(fd)
            if exact:
                fd = 1 / self._vui_fps
            elif guess:
                fd = 1 / guess
            fd = max(fd, 0.001)
            self.frame_rate = round(1 / fd, 3)
            frames = max(1, round(nominal / fd))
            self._frame_ticks = max(1, round(fd * VIDEO_TIMESCALE))
            if exact or guess:  # stamps are snapped to this frame grid
                self._grid = fd * VIDEO_TIMESCALE
                self._grid_origin = (0, 0)
            if exact:  # parts are whole frames exactly
                self._part_target = math.ceil(round(frames * fd, 9) * 100000) / 100000
            else:  # a guessed rate (30 or 29.97?) may still change: leave room
                self._part_target = math.ceil((frames * fd + _SLACK_S) * 1000) / 1000
        else:
            fd = self._audio_frame / self._sample_rate
            frames = max(1, round(nominal / fd))
            self._part_target = math.ceil(frames * fd * 100000) / 100000

    def _decide_target_duration(self, gop: float | None) -> None:
        longest = self.settings.segment_duration
        if gop is not None:
            longest = gop * max(1, math.ceil(self.settings.segment_duration / gop - 0.01))
        td = max(1, math.ceil(longest - 0.01))
        self._target_duration = min(td, self.settings.max_target_duration)

    # ---- media --------------------------------------------------------------------------

    def _out_ms(self, dts: int) -> int:
        return dts - self._base_ms + self._offset_ms

    def _video_ticks(self, ms: int, regrid: bool = False) -> tuple[int, int | None]:
        """A video stamp in output ticks, and where the grid's next frame starts (None when
        the stream has no known constant rate or this stamp is off its grid). With ``regrid``
        a decode stamp off the grid moves the grid: the stamps since its origin say which
        common rate fits (a guessed 30 fps that is really 29.97 drifts off within a second),
        or that none does (then stamps are taken as they are from then on)."""
        grid = self._grid
        if grid is not None:
            origin_ms, origin_ticks = self._grid_origin
            offset = self._offset_ms * 90 + origin_ticks
            rel = ms - self._base_ms - origin_ms
            n = round(rel / (grid / 90))
            off = abs(rel - n * grid / 90)
            if off <= _GRID_TOLERANCE_MS:
                return offset + round(n * grid), offset + round((n + 1) * grid)
            # a slow drift moves the grid; a jump (a glitch, a gap) is taken as it is
            if regrid and off <= grid / 360 and self._last_vdts is not None and rel > 0:
                rate = _closest_rate(rel / 1000 / max(1, n))
                self._grid = None if rate is None else VIDEO_TIMESCALE / rate
                if rate is not None:
                    self.frame_rate = round(rate, 3)
                    self._frame_ticks = round(VIDEO_TIMESCALE / rate)
                here = self._out_ms(ms) * 90
                if self._grid is not None:  # continue from the last frame, on the new grid
                    step = max(1, round((here - self._last_vdts) / self._grid))
                    here = self._last_vdts + round(step * self._grid)
                self._grid_origin = (ms - self._base_ms, here - self._offset_ms * 90)
                return self._video_ticks(ms)
        return self._out_ms(ms) * 90, None

    def _video(self, packet: MediaPacket, out: list[Event]) -> None:
        # the common case (a frame on the grid, inside the part) natively, when built
        step = _video_step(self, packet, _Video)
        if step:
            if step == 2:
                self._close_part(out, None)
            return
        dts, grid_end = self._video_ticks(packet.dts, regrid=True)
        # without B-frames PTS == DTS: the same stamp maps to the same ticks (the grid is settled)
        cts = 0 if packet.pts == packet.dts else self._video_ticks(packet.pts)[0] - dts
        if self._last_vdts is not None and dts <= self._last_vdts:
            self.repaired_dts += 1
            dts = self._last_vdts + 90
        elif (
            self._last_vdts is not None
            and not self._fresh
            and dts - self._last_vdts < 10 * VIDEO_TIMESCALE
        ):
            delta = dts - self._last_vdts
            if len(self._fd_deltas) == _FD_WINDOW:
                old = self._fd_deltas[0]
                del self._fd_sorted[bisect.bisect_left(self._fd_sorted, old)]
            self._fd_deltas.append(delta)
            bisect.insort(self._fd_sorted, delta)
        self._fresh = False
        t = dts / VIDEO_TIMESCALE
        target = self._part_target or self.settings.part_duration
        target_ticks = round(target * VIDEO_TIMESCALE)
        if packet.keyframe:
            if self._last_key is not None:
                self._gop = t - self._last_key
                if self._target_duration is None:
                    self._decide_target_duration(self._gop)
            self._last_key = t
        if self._seg_start is None or (packet.keyframe and self._should_cut(t)):
            self._close_all(out, dts)
            self._seg_start = t
        elif self._overruns(t):  # the GOP outgrew TARGETDURATION: cut without a keyframe
            self._close_all(out, dts)
            self._seg_start = t
            self.forced_cuts += 1
        elif self._part_v and dts + self._frame_ticks - self._part_v[0].dts > target_ticks:
            self._close_part(out, dts)  # a gap or a slower frame rate: never exceed the target
        if self._fd_sorted:  # the median of the recent frame durations
            self._frame_ticks = self._fd_sorted[len(self._fd_sorted) // 2]
        end = grid_end if grid_end is not None and grid_end > dts else dts + self._frame_ticks
        self._part_v.append(_Video(packet.data, dts, cts, packet.keyframe, end))
        self._last_vdts = dts
        filled = end - self._part_v[0].dts
        if filled >= target_ticks - self._frame_ticks // 2:
            self._close_part(out, None)

    def _should_cut(self, t: float) -> bool:
        assert self._seg_start is not None
        elapsed = t - self._seg_start
        if elapsed >= self.settings.segment_duration - 0.0005:
            return True
        td = self._target_duration
        if td is None or self._gop is None:
            return False
        return elapsed + self._gop > td + 0.0005

    def _overruns(self, t: float) -> bool:
        """Whether the frame at ``t`` would take the segment past TARGETDURATION (or past
        ``max_target_duration`` while the target is still unknown, which then decides it)."""
        assert self._seg_start is not None
        end = t + self._frame_ticks / VIDEO_TIMESCALE - self._seg_start
        limit = self._target_duration or self.settings.max_target_duration
        if end <= limit + _OVERRUN_S:
            return False
        if self._target_duration is None:
            self._target_duration = self.settings.max_target_duration
        return True

    def _audio(self, packet: MediaPacket, out: list[Event]) -> None:
        if _audio_step(self, packet, _Audio):  # the common case natively, when built
            return
        rate = self._sample_rate
        ms = self._out_ms(packet.dts)
        n = codecs.audio_samples(self._acodec, packet.data)
        if self._a_next is None:
            self._a_next = max(self._a_end, round(ms * rate / 1000))
        else:
            behind = self._a_next * 1000 / rate - ms
            if audio_overlaps(behind, n, rate, self._a_catchup):
                # the frame's time is already filled: more audio came than its stamps say
                if not self._a_catchup:
                    self.audio_resyncs += 1
                    self._a_catchup = True
                self.dropped_packets += 1
                return
            self._a_catchup = False
            if -behind > _AUDIO_RESYNC_MS:
                self.audio_resyncs += 1
                self._a_next = max(self._a_end, round(ms * rate / 1000))
        sample = _Audio(packet.data, self._a_next, n)
        self._a_next += n
        self._a_end = self._a_next
        if self._has_video:
            self._pending_a.append(sample)
            if len(self._pending_a) > _PENDING_AUDIO_MAX:
                self._pending_a.popleft()
                self.dropped_packets += 1
            return
        # audio-only: cut by time
        if self._seg_start is None:
            self._seg_start = sample.ts / rate
        self._part_a.append(sample)
        target = self._part_target or self.settings.part_duration
        filled = (sample.ts + n - self._part_a[0].ts) / rate
        if filled >= target - self._audio_frame / rate / 2:
            self._close_part(out, None)
            end = (sample.ts + n) / rate
            td = self._target_duration or math.ceil(self.settings.segment_duration)
            elapsed = end - self._seg_start
            if elapsed >= self.settings.segment_duration - 0.0005 or elapsed + target > td + 1e-6:
                self._end_segment(out)
                self._seg_start = end

    # ---- output -------------------------------------------------------------------------

    def _close_all(self, out: list[Event], next_dts: int | None, flush_audio: bool = False) -> None:
        """Close the part in progress and the segment in progress."""
        self._close_part(out, next_dts, take_all_audio=flush_audio)
        if flush_audio and self._pending_a:
            # audio beyond the last video frame at an end or reconnect: nothing to pair it with
            self.dropped_packets += len(self._pending_a)
            self._pending_a.clear()
        self._end_segment(out)
        if not self._has_video:
            self._seg_start = None

    def _end_segment(self, out: list[Event]) -> None:
        if self._seg_parts == 0:
            return
        out.append(SegmentEnded())
        self._seg_parts = 0

    def _close_part(
        self, out: list[Event], next_dts: int | None, take_all_audio: bool = False
    ) -> None:
        """Emit the part in progress. ``next_dts`` is the following frame's DTS when known;
        otherwise the last frame lasts the estimated frame duration."""
        if self._has_video:
            if not self._part_v:
                return
            vids = self._part_v
            self._part_v = []
            end = next_dts if next_dts is not None else vids[-1].end
            target_ticks = round((self._part_target or 1.0) * VIDEO_TIMESCALE)
            end = max(min(end, vids[0].dts + target_ticks), vids[-1].dts + 1)
            end_s = end / VIDEO_TIMESCALE
            audio: list[_Audio] = []
            while self._pending_a and (
                take_all_audio or self._pending_a[0].ts / self._sample_rate < end_s
            ):
                audio.append(self._pending_a.popleft())
            self._emit(out, vids, audio, end)
        else:
            if not self._part_a:
                return
            auds = self._part_a
            self._part_a = []
            self._emit(out, [], auds)

    def _emit(
        self, out: list[Event], vids: list[_Video], auds: list[_Audio], v_end: int = 0
    ) -> None:
        runs: list[_mux.Run] = []
        duration = 0.0
        media_time = 0.0
        if vids:
            samples: list[_mux.Sample] = []
            for i, v in enumerate(vids):
                nxt = vids[i + 1].dts if i + 1 < len(vids) else v_end
                data = self._inband + v.data if v.key and self._inband else v.data
                samples.append((data, nxt - v.dts, v.cts, v.key))
            runs.append((VIDEO_TRACK, vids[0].dts, samples))
            duration = (v_end - vids[0].dts) / VIDEO_TIMESCALE
            media_time = vids[0].dts / VIDEO_TIMESCALE
            self._v_end = max(self._v_end, v_end)
        if auds:
            runs.append((AUDIO_TRACK, auds[0].ts, [(a.data, a.n, 0, True) for a in auds]))
            if not vids:
                duration = (auds[-1].ts + auds[-1].n - auds[0].ts) / self._sample_rate
                media_time = auds[0].ts / self._sample_rate
        if not runs:
            return
        self._seq += 1
        first = self._seg_parts == 0
        independent = vids[0].key if vids else True
        data = self._ts_chunk(vids, auds, first) if self._ts else _mux.fragment(self._seq, runs)
        anchor = self._wall_anchor
        out.append(
            PartReady(
                data,
                duration,
                independent,
                first,
                self._discontinuity and first,
                media_time,
                None if anchor is None else anchor + media_time,
            )
        )
        if first:
            self._discontinuity = False
        self._seg_parts += 1

    def _ts_chunk(self, vids: list[_Video], auds: list[_Audio], first: bool) -> bytes:
        """The part as MPEG-TS packets in DTS order (PAT/PMT first when it opens a segment)."""
        ts = self._ts
        assert ts is not None
        chunks = [ts.psi()] if first else []
        rate = self._sample_rate
        i = j = 0
        while i < len(vids) or j < len(auds):
            a90 = auds[j].ts * VIDEO_TIMESCALE // rate if j < len(auds) else None
            if i < len(vids) and (a90 is None or vids[i].dts <= a90):
                v = vids[i]
                chunks.append(ts.video(v.data, v.dts + v.cts, v.dts, v.key))
                i += 1
            else:
                assert a90 is not None
                chunks.append(ts.audio(auds[j].data, a90))
                j += 1
        return b"".join(chunks)


def track_infos(
    vcodec: str, vcfg: bytes | None, acodec: str, acfg: bytes | None, keyframe: bytes | None
) -> tuple[list[TrackInfo], list[str], int, int]:
    """The init segment's tracks for these configurations, their CODECS names, width and
    height (0 without video)."""
    tracks: list[TrackInfo] = []
    names: list[str] = []
    width = height = 0
    if vcfg is not None:
        video = codecs.video_info(vcodec, vcfg, keyframe)
        width, height = video.width, video.height
        tracks.append(TrackInfo(VIDEO_TRACK, "video", vcodec, VIDEO_TIMESCALE, vcfg, width, height))
        names.append(video.codec_string)
    if acfg is not None:
        audio = codecs.audio_info(acodec, acfg)
        tracks.append(
            TrackInfo(
                AUDIO_TRACK,
                "audio",
                acodec,
                audio.sample_rate,
                acfg,
                sample_rate=audio.sample_rate,
                channels=audio.channels,
            )
        )
        names.append(audio.codec_string)
    return tracks, names, width, height


def _closest_rate(frame_seconds: float) -> float | None:
    """The common frame rate nearest to this frame duration, if one is within 1 %."""
    rate = min(_COMMON_FPS, key=lambda fps: abs(1 / fps - frame_seconds))
    return rate if abs(1 / rate - frame_seconds) <= 0.01 * frame_seconds else None


_VIDEO_CHECKS = {
    "h264": codecs.parse_avc_config,
    "hevc": codecs.parse_hvcc,
    "av1": codecs.av1_codec_string,
    "vp9": codecs.vp9_codec_string,
}
