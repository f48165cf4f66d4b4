"""A rendition that cuts where the source rendition cut: the ladder's rungs.

The source's :class:`~kitch.hls.segmenter.Segmenter` decides every cut. Its parts, once the
store has numbered them, become :class:`PartPlan` items (segment number, part number, start and
end on the output timeline, flags); a segment's end becomes a :class:`SegmentEnded`. A
:class:`Follower` takes the rung's packets (which come later: they are encoded) and those plans,
and emits a part for each plan with the rung's frames that fall inside it, so every rendition has
the same media sequence numbers, part numbers, boundaries and discontinuities, and a player
switching renditions lands on the same instant.

Timestamps go through the source segmenter's own mapping (its base, offset and frame grid), so
a rung frame with the same millisecond stamp as a source frame gets the same ticks. The rung's
IDR frames sit at the source's keyframes, so a rung segment starts with an IDR wherever the
source's does. A follower joins at the first segment start it has a keyframe for (a ladder that
starts late, or restarts, joins at a segment boundary) and from then on numbers its segments as
the source does. If the rung dropped every frame of a planned part, that part's time goes to the
next part of the segment (the segment boundaries and numbers still match).

fMP4 only: the ladder's rungs are H.264 + AAC in CMAF parts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from kitch.hls import codecs
from kitch.hls.events import Event, InitReady, PartReady, SegmentEnded
from kitch.hls.init_segment import init_segment
from kitch.hls.segmenter import (
    _AUDIO_RESYNC_MS,
    AUDIO_TRACK,
    VIDEO_TIMESCALE,
    VIDEO_TRACK,
    Segmenter,
    audio_overlaps,
    track_infos,
)
from kitch.media import MediaPacket
from kitch.twins import mux as _mux

_HELD_TICKS = 20 * VIDEO_TIMESCALE  # frames held before the follower starts, or beyond plans
_ALIGN_TICKS = 45  # half a millisecond: a keyframe this close to a segment start opens it
_MAX_PLANS = 150  # about 30 s of parts waiting for a rung


@dataclass(frozen=True, slots=True)
class PartPlan:
    """Where the source cut one part: what every rendition's part with this number covers."""

    msn: int
    number: int
    start: int  # ticks on the output timeline
    end: int
    first_in_segment: bool
    discontinuity: bool
    independent: bool
    program_date_time: float | None


Plan = PartPlan | SegmentEnded


@dataclass(slots=True)
class _Frame:
    data: bytes | memoryview
    dts: int
    cts: int
    key: bool


@dataclass(slots=True)
class _Sample:
    data: bytes | memoryview
    ts: int  # samples
    n: int


class Follower:
    """Cuts one rung along the source's plans. ``feed`` the rung's packets (config first) and
    ``plan`` the source's cuts, in any interleaving; both return the events to store."""

    def __init__(self, leader: Segmenter) -> None:
        self.leader = leader
        self._vcfg: bytes | None = None
        self._acfg: bytes | None = None
        self._acodec = "aac"
        self._rate = 48000
        self._frames: deque[_Frame] = deque()
        self._audio: deque[_Sample] = deque()
        self._a_next: int | None = None
        self._a_catchup = False  # as the source's segmenter: audio stamps behind the samples
        self._plans: deque[Plan] = deque()
        self._started = False
        self._init_sent = False
        self._last_dts: int | None = None
        self._deltas: deque[int] = deque(maxlen=15)
        self._seq = 0
        self._open_segment = False
        self.frame_rate = 0.0
        #: frames held too long before the follower could use them, and audio frames dropped to
        #: keep audio in step with its stamps (the source segmenter's catch-up)
        self.dropped_packets = 0
        self.merged_parts = 0  # planned parts the rung had no frame for
        self.missed_parts = 0  # planned parts forgotten while the rung stalled

    # ---- the store's view (same as Segmenter's) ---------------------------------------------

    @property
    def part_target(self) -> float | None:
        return self.leader.part_target

    @property
    def target_duration(self) -> int | None:
        return self.leader.target_duration

    # ---- input ------------------------------------------------------------------------------

    def feed(self, packet: MediaPacket, now: float | None = None) -> list[Event]:
        if packet.is_config:
            if packet.kind == "video":
                config = bytes(packet.data)  # a config packet's data is bytes: no copy
                codecs.video_info(packet.codec, config, None)  # MuxError on garbage
                self._vcfg = config
            else:
                config = bytes(packet.data)
                codecs.audio_info(packet.codec, config)
                self._acfg, self._acodec = config, packet.codec
                rate = codecs.audio_info(packet.codec, config).sample_rate
                if rate != self._rate:  # as the source segmenter: re-anchor at the next frame
                    self._a_next = None
                    self._a_catchup = False
                self._rate = rate
            return []
        if packet.kind == "video" and self._vcfg is not None:
            self._video(packet)
        elif packet.kind == "audio" and self._acfg is not None:
            self._sound(packet)
        return self._drain()

    def plan(self, plan: Plan) -> list[Event]:
        self._plans.append(plan)
        return self._drain()

    def discontinuity(self) -> list[Event]:
        """The source reconnected: close what is planned with what is here, then start over
        on the new timeline (the source's next plan carries the discontinuity)."""
        out = self._drain(final=True)
        self._frames.clear()
        self._audio.clear()
        self._a_next = None
        self._a_catchup = False
        self._last_dts = None
        return out

    def end(self) -> list[Event]:
        out = self._drain(final=True)
        if self._open_segment:
            out.append(SegmentEnded())
            self._open_segment = False
        return out

    def _video(self, packet: MediaPacket) -> None:
        dts = self.leader._video_ticks(packet.dts)[0]
        pts = self.leader._video_ticks(packet.pts)[0]
        if self._last_dts is not None:
            if dts <= self._last_dts:
                dts = self._last_dts + 1
            else:
                self._deltas.append(dts - self._last_dts)
        self._last_dts = dts
        self._frames.append(_Frame(packet.data, dts, pts - dts, packet.keyframe))
        while self._frames and dts - self._frames[0].dts > _HELD_TICKS:
            self._frames.popleft()
            self.dropped_packets += 1

    def _sound(self, packet: MediaPacket) -> None:
        if not self.leader._started:
            return  # before the source's timeline exists (its first keyframe)
        rate = self._rate
        ms = self.leader._out_ms(packet.dts)
        at = round(ms * rate / 1000)
        n = codecs.audio_samples(self._acodec, packet.data)
        # the source segmenter's rules (Segmenter._audio), so the rung keeps and drops the
        # same AAC frames: behind the placed samples, drop until back within half a frame;
        # past a gap, re-anchor
        if self._a_next is None:
            self._a_next = at
        else:
            behind = self._a_next * 1000 / rate - ms
            if audio_overlaps(behind, n, rate, self._a_catchup):
                self._a_catchup = True
                self.dropped_packets += 1
                return
            self._a_catchup = False
            if -behind > _AUDIO_RESYNC_MS:
                self._a_next = at
        self._audio.append(_Sample(packet.data, self._a_next, n))
        self._a_next += n
        while len(self._audio) > 2000:
            self._audio.popleft()

    # ---- output -----------------------------------------------------------------------------

    def _frame_ticks(self) -> int:
        if self._deltas:
            return sorted(self._deltas)[len(self._deltas) // 2]
        return self.leader._frame_ticks

    def _drain(self, final: bool = False) -> list[Event]:
        out: list[Event] = []
        while len(self._plans) > _MAX_PLANS:  # the rung stalled: forget what it cannot make
            if isinstance(self._plans.popleft(), PartPlan):
                self.missed_parts += 1
        while self._plans:
            plan = self._plans[0]
            if isinstance(plan, SegmentEnded):
                self._plans.popleft()
                if self._open_segment:
                    out.append(SegmentEnded())
                    self._open_segment = False
                continue
            if not self._started:
                joined = self._join(plan, final)
                if joined is None:
                    break  # no frame for it yet: wait
                if not joined:
                    self._plans.popleft()
                    continue
            if not final and not self._covered(plan):
                break
            self._plans.popleft()
            self._cut(plan, out)
        return out

    def _join(self, plan: PartPlan, final: bool) -> bool | None:
        """Whether the follower starts at ``plan`` (it opens a segment and the rung has a
        keyframe there); None while no frame at or after its start has arrived."""
        while self._frames and self._frames[0].dts < plan.start - _ALIGN_TICKS:
            self._frames.popleft()
        while self._audio and self._audio[0].ts * VIDEO_TIMESCALE < plan.start * self._rate:
            self._audio.popleft()
        if not self._frames:
            return False if final else None
        head = self._frames[0]
        if plan.first_in_segment and head.key and abs(head.dts - plan.start) <= _ALIGN_TICKS:
            self._started = True
            return True
        return False

    def _covered(self, plan: PartPlan) -> bool:
        """Whether the rung's frames reach the plan's end (its last frame ends there or later)."""
        return bool(self._frames) and self._frames[-1].dts + self._frame_ticks() >= plan.end

    def _cut(self, plan: PartPlan, out: list[Event]) -> None:
        vids: list[_Frame] = []
        while self._frames and self._frames[0].dts < plan.end:
            vids.append(self._frames.popleft())
        if not vids:
            # every frame of this part was dropped: its time goes to the next part (or, at the
            # segment's end, to the one before it, already out): numbers stay aligned by segment
            self.merged_parts += 1
            nxt = self._plans[0] if self._plans else None
            if isinstance(nxt, PartPlan) and not nxt.first_in_segment:
                self._plans[0] = PartPlan(
                    nxt.msn,
                    nxt.number,
                    plan.start,
                    nxt.end,
                    plan.first_in_segment,
                    plan.discontinuity or nxt.discontinuity,
                    plan.independent,
                    plan.program_date_time,
                )
            return
        if not self._init_sent:
            self._send_init(out)
        end_s = plan.end / VIDEO_TIMESCALE
        auds: list[_Sample] = []
        while self._audio and self._audio[0].ts / self._rate < end_s:
            auds.append(self._audio.popleft())
        samples: list[_mux.Sample] = []
        for i, v in enumerate(vids):
            until = vids[i + 1].dts if i + 1 < len(vids) else max(plan.end, v.dts + 1)
            samples.append((v.data, until - v.dts, v.cts, v.key))
        runs: list[_mux.Run] = [(VIDEO_TRACK, vids[0].dts, samples)]
        if auds:
            runs.append((AUDIO_TRACK, auds[0].ts, [(a.data, a.n, 0, True) for a in auds]))
        self._seq += 1
        if plan.first_in_segment and self._open_segment:
            out.append(SegmentEnded())
        self._open_segment = True
        out.append(
            PartReady(
                _mux.fragment(self._seq, runs),
                (plan.end - plan.start) / VIDEO_TIMESCALE,
                plan.independent and vids[0].key,
                plan.first_in_segment,
                plan.discontinuity,
                plan.start / VIDEO_TIMESCALE,
                plan.program_date_time,
                plan.msn,
                plan.number,
            )
        )

    def _send_init(self, out: list[Event]) -> None:
        assert self._vcfg is not None
        tracks, names, width, height = track_infos(
            "h264", self._vcfg, self._acodec, self._acfg, None
        )
        fd = self._frame_ticks() / VIDEO_TIMESCALE
        self.frame_rate = round(1 / fd, 3) if fd > 0 else 0.0
        out.append(
            InitReady(
                init_segment(tracks),
                ",".join(names),
                width,
                height,
                self.frame_rate,
                True,
                self._acfg is not None,
            )
        )
        self._init_sent = True
