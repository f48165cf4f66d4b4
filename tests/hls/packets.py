"""Turn a fixture file into the MediaPackets the RTMP ingest would hand to the HLS muxer."""

from __future__ import annotations

from pathlib import Path

import av

from kitch.media import MediaPacket


def config(packets: list[MediaPacket], kind: str) -> bytes:
    """The first configuration record of ``kind`` ("video" or "audio") in ``packets``."""
    return next(p.data for p in packets if p.is_config and p.kind == kind)


def demux_packets(path: Path) -> list[MediaPacket]:
    """Config packets first (avcC / AudioSpecificConfig), then every packet in file order,
    timestamps in integer milliseconds as FLV carries them."""
    out: list[MediaPacket] = []
    media: list[MediaPacket] = []
    with av.open(str(path)) as inp:
        for s in inp.streams:
            extradata = s.codec_context.extradata
            if s.type == "video" and extradata:
                out.append(MediaPacket("video", "h264", 0, 0, bytes(extradata), True, True))
            elif s.type == "audio" and extradata:
                out.append(MediaPacket("audio", "aac", 0, 0, bytes(extradata), False, True))
        for pkt in inp.demux():
            if pkt.dts is None or pkt.size == 0:
                continue
            tb = pkt.time_base
            dts = round(pkt.dts * tb * 1000)
            pts = round((pkt.pts if pkt.pts is not None else pkt.dts) * tb * 1000)
            kind = pkt.stream.type
            codec = "h264" if kind == "video" else "aac"
            media.append(
                MediaPacket(kind, codec, dts, pts, bytes(pkt), bool(pkt.is_keyframe), False)
            )
    media.sort(key=lambda p: p.dts)
    return out + media
