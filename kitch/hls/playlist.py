"""Rendering of master and LL-HLS media playlists (draft-pantos-hls-rfc8216bis) from a store."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from kitch.hls.store import RenditionStore

VERSION = 9  # EXT-X-SKIP needs 9
TS_VERSION = 3  # MPEG-TS playlists: decimal EXTINF, nothing newer
PART_HOLD_BACK_PARTS = 3  # PART-HOLD-BACK in part targets (the spec asks for at least 2)
SKIP_TARGETS = 6  # CAN-SKIP-UNTIL in target durations (the spec minimum)
PARTS_FOR_TARGETS = 3  # EXT-X-PART tags are listed for the last 3 target durations


@dataclass(frozen=True, slots=True)
class RenditionReport:
    uri: str  # the other rendition's playlist, relative to this one
    last_msn: int
    last_part: int


@dataclass(frozen=True, slots=True)
class VariantInfo:
    uri: str
    bandwidth: int
    average_bandwidth: int
    width: int
    height: int
    frame_rate: float
    codecs: str


def _pdt(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _num(value: float) -> str:
    """Decimal seconds without trailing zeros noise (5 places at most)."""
    text = f"{value:.5f}".rstrip("0").rstrip(".")
    return text or "0"


def skip_until(store: RenditionStore) -> float:
    return SKIP_TARGETS * float(store.target_duration or 1)


def media_playlist(
    store: RenditionStore,
    *,
    skip: bool = False,
    reports: tuple[RenditionReport, ...] = (),
) -> str:
    """The media playlist of ``store`` (which must be :attr:`~RenditionStore.ready`).

    ``skip`` asks for a delta update: complete segments that end at least CAN-SKIP-UNTIL
    before the end of the playlist are replaced by one EXT-X-SKIP tag (nothing is skipped, and
    no tag is written, when the window is not long enough).
    """
    if store.ts:
        return ts_playlist(store)
    td = store.target_duration or 1
    pt = store.part_target or 1.0
    segments = list(store.segments)
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{VERSION}",
        f"#EXT-X-TARGETDURATION:{td}",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,"
        f"CAN-SKIP-UNTIL={_num(skip_until(store))},"
        f"PART-HOLD-BACK={_num(math.ceil(PART_HOLD_BACK_PARTS * pt * 1000) / 1000)}",
        f"#EXT-X-PART-INF:PART-TARGET={_num(pt)}",
        f"#EXT-X-MEDIA-SEQUENCE:{store.media_sequence}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{store.discontinuity_sequence}",
    ]
    if all(seg.independent for seg in segments):
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    total = sum(s.duration for s in segments)
    skipped = 0
    if skip:
        end = 0.0
        for seg in segments:
            end += seg.duration
            if not seg.complete or total - end < skip_until(store):
                break
            skipped += 1
        if skipped:
            lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")
    # parts are listed for the segments in the last PARTS_FOR_TARGETS target durations
    parts_from = len(segments)
    acc = 0.0
    for i in range(len(segments) - 1, -1, -1):
        if acc >= PARTS_FOR_TARGETS * td:
            break
        parts_from = i
        acc += segments[i].duration
    current_init: int | None = None
    for i, seg in enumerate(segments):
        if i < skipped:
            continue
        first = i == skipped
        # after EXT-X-SKIP the first segment is not the playlist's first: its tag must stay
        if seg.discontinuity and (skipped or not first):
            lines.append("#EXT-X-DISCONTINUITY")
        if seg.init != current_init:
            lines.append(f'#EXT-X-MAP:URI="{store.init_name(seg.init)}"')
            current_init = seg.init
        if first or seg.discontinuity:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_pdt(seg.program_date_time)}")
        if i >= parts_from:
            for part in seg.parts:
                attrs = f'DURATION={_num(part.duration)},URI="{store.part_name(part.number)}"'
                if part.independent:
                    attrs += ",INDEPENDENT=YES"
                lines.append(f"#EXT-X-PART:{attrs}")
        if seg.complete:
            lines.append(f"#EXTINF:{seg.duration:.5f},")
            lines.append(store.segment_name(seg.msn, store.is_ts(seg.init)))
    if store.ended:
        lines.append("#EXT-X-ENDLIST")
    else:
        lines.append(
            f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{store.part_name(store.next_part_number)}"'
        )
        for r in reports:
            lines.append(
                f'#EXT-X-RENDITION-REPORT:URI="{r.uri}",LAST-MSN={r.last_msn},'
                f"LAST-PART={r.last_part}"
            )
    return "\n".join(lines) + "\n"


def ts_playlist(store: RenditionStore) -> str:
    """Plain HLS media playlist (RFC 8216, version 3) of complete MPEG-TS segments."""
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{TS_VERSION}",
        f"#EXT-X-TARGETDURATION:{store.target_duration or 1}",
        f"#EXT-X-MEDIA-SEQUENCE:{store.media_sequence}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{store.discontinuity_sequence}",
    ]
    if all(seg.independent for seg in store.segments if seg.complete):
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    first = True
    for seg in store.segments:
        if not seg.complete:
            break
        if seg.discontinuity and not first:
            lines.append("#EXT-X-DISCONTINUITY")
        if first or seg.discontinuity:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_pdt(seg.program_date_time)}")
        lines.append(f"#EXTINF:{seg.duration:.5f},")
        lines.append(store.segment_name(seg.msn, store.is_ts(seg.init)))
        first = False
    if store.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def master_playlist(variants: list[VariantInfo], version: int = VERSION) -> str:
    """Master playlist listing each rendition with measured bandwidth and real codecs
    (``version`` 3 when every rendition is MPEG-TS), H.264 variants first. No
    EXT-X-INDEPENDENT-SEGMENTS here: it would bind every future segment, and a GOP that
    outgrows TARGETDURATION makes segments that start without a keyframe; each media playlist
    says it while it holds."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{version}"]
    # H.264 first (every browser plays it; players that start with the first entry do), each
    # group from the highest bandwidth down; a HEVC/AV1/VP9 source keeps its real CODECS, last
    ordered = sorted(variants, key=lambda v: (not v.codecs.startswith("avc1"), -v.bandwidth))
    for v in ordered:
        attrs = [f"BANDWIDTH={max(1, v.bandwidth)}"]
        if v.average_bandwidth:
            attrs.append(f"AVERAGE-BANDWIDTH={v.average_bandwidth}")
        if v.width and v.height:
            attrs.append(f"RESOLUTION={v.width}x{v.height}")
        if v.frame_rate:
            attrs.append(f"FRAME-RATE={v.frame_rate:.3f}")
        attrs.append(f'CODECS="{v.codecs}"')
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        lines.append(v.uri)
    return "\n".join(lines) + "\n"
