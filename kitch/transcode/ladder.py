"""The transcoding ladder: decode a source once, scale once per rung, encode each rung (PyAV).

Everything here blocks (PyAV releases the GIL while it decodes, scales and encodes), so callers
run it in worker threads; it never touches the event loop. Packets in and out are
:class:`~kitch.media.MediaPacket` (millisecond timestamps, length-prefixed NAL units), so a rung's
output feeds the same HLS segmenter as the passthrough rendition.

Rules (see docs/ARCHITECTURE.md, "Ladder"):

* a rung at or above the source height is skipped (never upscale); widths follow the source's
  aspect ratio and are even;
* every libx264 option that matters is set explicitly: frame threads (PyAV's default SLICE thread
  type would turn on x264's sliced threads), no scene-cut keyframes, a bounded lookahead, no
  B-frames, VBV maxrate/bufsize, a main-profile level that fits the rung;
* each frame's picture type is reset before encoding, and exactly the source's keyframes are
  forced as IDR frames, so every rung has its IDRs at the source's keyframe timestamps;
* a rung's IDR carries the decode timestamp of the source keyframe it stands for; its other
  frames are their presentation timestamps minus the source's composition delay at its first
  keyframe (kept monotonic), so segment cuts fall on the same decode timestamps everywhere.
"""

from __future__ import annotations

import fractions
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import av
from av.video.frame import PictureType
from av.video.reformatter import Interpolation, VideoReformatter

from kitch.hls.codecs import annexb_to_avcc
from kitch.media import MediaPacket
from kitch.transcode.decoders import VIDEO_DECODERS, decoder_for

MS = fractions.Fraction(1, 1000)
#: H.264 levels: (level_idc, max macroblocks per second, max macroblocks per frame, max kbit/s
#: for the main profile), Table A-1 of ISO/IEC 14496-10.
_LEVELS = (
    (30, 40_500, 1_620, 10_000),
    (31, 108_000, 3_600, 14_000),
    (32, 216_000, 5_120, 20_000),
    (40, 245_760, 8_192, 20_000),
    (41, 245_760, 8_192, 50_000),
    (42, 522_240, 8_704, 50_000),
)
DECODABLE = tuple(VIDEO_DECODERS)
_KEYS_KEPT = 16  # source keyframes remembered for the encoders' delay (a few GOPs)


class LadderError(Exception):
    """A source the ladder cannot decode, or a codec failure (the caller restarts the part)."""


@dataclass(frozen=True, slots=True)
class Rung:
    """One output rendition: its name (``720p``), height, video bitrate, frame-rate cap and
    x264 preset."""

    name: str
    height: int
    video_kbps: int
    max_fps: float = 30.0
    preset: str = "veryfast"


DEFAULT_RUNGS: tuple[Rung, ...] = (
    Rung("720p", 720, 3000),
    Rung("480p", 480, 1400),
    Rung("360p", 360, 800),
)


@dataclass(frozen=True, slots=True)
class RungPlan:
    """A rung fitted to one source: output size, frame rate and H.264 level."""

    rung: Rung
    width: int
    height: int
    fps: float
    level: int

    @property
    def name(self) -> str:
        return self.rung.name


def h264_level(width: int, height: int, fps: float, kbps: int) -> int:
    """The lowest H.264 level (as level_idc, 31 = 3.1) that holds this size, rate and bitrate."""
    mbs = math.ceil(width / 16) * math.ceil(height / 16)
    for level, per_second, per_frame, max_kbps in _LEVELS:
        if mbs <= per_frame and mbs * fps <= per_second and kbps <= max_kbps:
            return level
    return 51


def plan_ladder(width: int, height: int, fps: float, rungs: Sequence[Rung]) -> list[RungPlan]:
    """The rungs this source gets: lower than the source, widths even and in its aspect ratio,
    the frame rate capped per rung (``fps`` is the source's; 0 when unknown counts as 30)."""
    plans = []
    source_fps = fps if fps > 0 else 30.0
    for rung in rungs:
        if rung.height >= height or rung.height < 2:
            continue
        out_h = rung.height - rung.height % 2
        out_w = max(2, round(width * out_h / height / 2) * 2)
        out_fps = min(source_fps, rung.max_fps)
        plans.append(
            RungPlan(
                rung, out_w, out_h, out_fps, h264_level(out_w, out_h, out_fps, rung.video_kbps)
            )
        )
    return plans


def avc_config_from_annexb(headers: bytes) -> bytes:
    """An AVCDecoderConfigurationRecord (avcC payload) from Annex B SPS/PPS, as libx264 gives
    them in its global header."""
    nals = [n[4:] for n in _split_avcc(annexb_to_avcc(headers))]
    sps = [n for n in nals if n and n[0] & 0x1F == 7]
    pps = [n for n in nals if n and n[0] & 0x1F == 8]
    if not sps or not pps or len(sps[0]) < 4:
        raise LadderError("encoder gave no SPS/PPS")
    out = bytearray([1, sps[0][1], sps[0][2], sps[0][3], 0xFF, 0xE0 | len(sps)])
    for nal in sps:
        out += len(nal).to_bytes(2, "big") + nal
    out.append(len(pps))
    for nal in pps:
        out += len(nal).to_bytes(2, "big") + nal
    if sps[0][1] in (100, 110, 122, 144):  # high profiles: 4:2:0, 8 bit, no SPS extensions
        out += bytes([0xFC | 1, 0xF8, 0xF8, 0])
    return bytes(out)


def _split_avcc(data: bytes) -> list[bytes]:
    """Length-prefixed NAL units (prefix included), one item each."""
    out, i = [], 0
    while i + 4 <= len(data):
        size = int.from_bytes(data[i : i + 4], "big")
        out.append(data[i : i + 4 + size])
        i += 4 + size
    return out


def _strip_parameter_sets(avcc: bytes) -> bytes:
    """Drop SPS/PPS/AUD NAL units from a sample: the init segment carries the configuration."""
    return b"".join(n for n in _split_avcc(avcc) if len(n) > 4 and n[4] & 0x1F not in (7, 8, 9))


class SourceTiming:
    """What the rungs need of the source's clock: its composition delay at the first keyframe
    and the decode timestamps of its recent keyframes (by presentation timestamp)."""

    def __init__(self) -> None:
        self.first_pts: int | None = None
        self.decode_delay = 0
        self.key_dts: dict[int, int] = {}

    def on_keyframe(self, packet: MediaPacket) -> None:
        if self.first_pts is None:
            self.first_pts = packet.pts
            self.decode_delay = max(0, packet.composition_offset)
        self.key_dts[packet.pts] = packet.dts
        while len(self.key_dts) > _KEYS_KEPT:
            del self.key_dts[next(iter(self.key_dts))]

    def dts_for(self, pts: int, keyframe: bool, last_dts: int) -> int:
        """A rung frame's decode timestamp: its source keyframe's, or ``pts`` less the delay
        (monotonic, never after ``pts``)."""
        dts = self.key_dts.get(pts) if keyframe else None
        if dts is None:
            dts = min(pts, max(last_dts + 1, pts - self.decode_delay))
        return dts


def x264_params(plan: RungPlan) -> str:
    """libx264's own settings for a rung (``-x264-params``): no scene-cut keyframes (IDRs come
    only where the source has keyframes), a 10-frame lookahead, no sliced threads, VBV at 1.2x
    the bitrate with a 2 s buffer, the rung's level, no AUDs, parameter sets only in the
    configuration record."""
    kbps = plan.rung.video_kbps
    params = {
        "scenecut": "0",
        "keyint": "infinite",
        "rc-lookahead": "10",
        "sliced-threads": "0",
        "vbv-maxrate": str(kbps * 6 // 5),
        "vbv-bufsize": str(kbps * 2),
        "level": f"{plan.level // 10}.{plan.level % 10}",
        "aud": "0",
        "repeat-headers": "0",
    }
    return ":".join(f"{k}={v}" for k, v in params.items())


@dataclass(slots=True)
class DecodedFrame:
    frame: av.VideoFrame
    pts: int  # ms
    keyframe: bool


class VideoDecoder:
    """Decodes one source's video from its configuration record and coded packets."""

    def __init__(self, config: MediaPacket, threads: int = 1) -> None:
        decoder = decoder_for(config.codec)
        if decoder is None:
            raise LadderError(f"cannot decode {config.codec}")
        try:
            ctx = av.CodecContext.create(decoder, "r")
        except av.FFmpegError as exc:
            raise LadderError(f"no {config.codec} decoder: {exc}") from None
        assert isinstance(ctx, av.VideoCodecContext)
        self.ctx = ctx
        if config.codec != "vp9":
            self.ctx.extradata = bytes(config.data)
        self.ctx.thread_type = "FRAME" if threads > 1 else "SLICE"
        self.ctx.thread_count = threads
        self.codec = config.codec

    def decode(self, packet: MediaPacket | None) -> list[DecodedFrame]:
        """Frames in presentation order; ``None`` flushes the decoder."""
        try:
            if packet is None:
                frames = self.ctx.decode(None)
            else:
                pkt = av.Packet(packet.data)  # type: ignore[arg-type]  # any buffer works
                pkt.pts, pkt.dts, pkt.time_base = packet.pts, packet.dts, MS
                frames = self.ctx.decode(pkt)
        except av.FFmpegError as exc:
            raise LadderError(f"{self.codec} decode failed: {exc}") from None
        return [DecodedFrame(f, int(f.pts), bool(f.key_frame)) for f in frames if f.pts is not None]


@dataclass
class RungEncoder:
    """Scales and encodes one rung with libx264; every option set explicitly."""

    plan: RungPlan
    timing: SourceTiming
    threads: int = 1
    _last_dts: int = field(init=False, default=-(1 << 62))
    ctx: av.VideoCodecContext = field(init=False)
    _scaler: VideoReformatter = field(init=False)
    _next_due: float = field(init=False, default=-math.inf)
    _config_sent: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        plan, kbps = self.plan, self.plan.rung.video_kbps
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = plan.width, plan.height, "yuv420p"
        ctx.time_base = MS
        ctx.framerate = fractions.Fraction(plan.fps).limit_denominator(1001)
        ctx.bit_rate = kbps * 1000
        ctx.gop_size = 100_000  # IDRs only where the source has keyframes
        ctx.max_b_frames = 0
        ctx.thread_type = "FRAME"  # never sliced threads
        ctx.thread_count = self.threads
        ctx.flags |= av.codec.context.Flags.global_header
        ctx.options = {
            "preset": plan.rung.preset,
            "profile": "main",
            "forced-idr": "1",
            "x264-params": x264_params(plan),
        }
        try:
            ctx.open()
        except av.FFmpegError as exc:
            raise LadderError(f"libx264 for {plan.name}: {exc}") from None
        self.ctx = ctx
        self._scaler = VideoReformatter()
        self.config = avc_config_from_annexb(bytes(ctx.extradata or b""))

    def encode(self, decoded: DecodedFrame | None) -> list[MediaPacket]:
        """Encode one source frame (``None`` flushes); answers the rung's packets, its
        configuration record first."""
        if decoded is not None:
            if not decoded.keyframe and decoded.pts < self._next_due:
                return []  # over the rung's frame-rate cap
            step = 1000.0 / self.plan.fps
            base = decoded.pts if decoded.keyframe else max(self._next_due, decoded.pts - step)
            self._next_due = base + step - 0.5
            frame = self._scaler.reformat(
                decoded.frame,
                width=self.plan.width,
                height=self.plan.height,
                format="yuv420p",
                interpolation=Interpolation.BILINEAR,
            )
            frame.pts, frame.time_base = decoded.pts, MS
            frame.pict_type = PictureType.I if decoded.keyframe else PictureType.NONE
        else:
            frame = None
        try:
            packets = self.ctx.encode(frame)
        except av.FFmpegError as exc:
            raise LadderError(f"{self.plan.name} encode failed: {exc}") from None
        out: list[MediaPacket] = []
        for p in packets:
            pts = int(p.pts or 0)
            dts = self._last_dts = self.timing.dts_for(pts, p.is_keyframe, self._last_dts)
            if not self._config_sent:
                self._config_sent = True
                out.append(MediaPacket("video", "h264", dts, dts, self.config, True, True))
            data = _strip_parameter_sets(annexb_to_avcc(bytes(p)))
            out.append(MediaPacket("video", "h264", dts, pts, data, p.is_keyframe))
        return out


class VideoLadder:
    """Decode once, then each rung scales and encodes: ``feed`` a source video packet, get
    ``{rung name: [packets]}``. Blocking; run it in a worker thread."""

    def __init__(self, config: MediaPacket, plans: Sequence[RungPlan], threads: int = 1) -> None:
        self.decoder = VideoDecoder(config, threads)
        self.plans = list(plans)
        self.encoders: dict[str, RungEncoder] = {}
        self.timing = SourceTiming()
        self.threads = threads

    def feed(self, packet: MediaPacket | None) -> dict[str, list[MediaPacket]]:
        if packet is not None and packet.keyframe:
            self.timing.on_keyframe(packet)
        if packet is not None and self.timing.first_pts is None:
            return {}  # start at a keyframe
        if not self.encoders:
            self.encoders = {p.name: RungEncoder(p, self.timing, self.threads) for p in self.plans}
        out: dict[str, list[MediaPacket]] = {name: [] for name in self.encoders}
        for decoded in self.decoder.decode(packet):
            for name, enc in self.encoders.items():
                out[name] += enc.encode(decoded)
        if packet is None:
            for name, enc in self.encoders.items():
                out[name] += enc.encode(None)
        return out
