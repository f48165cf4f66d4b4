"""The passthrough sink: the publisher's packets, as they are, into the HLS ``source`` rendition.

It is every broadcast's first sink and owns the broadcast's :class:`~kitch.hls.LiveStream`: a
reconnect's discontinuity and the end (EXT-X-ENDLIST) apply to every rendition of the stream.
It refuses the codecs its container cannot carry: MPEG-TS output (``format`` "ts") takes H.264,
HEVC, AAC and Opus; fMP4 takes every codec the RTMP side ingests.
"""

from __future__ import annotations

from typing import Any

from kitch.hls.codecs import TS_AUDIO, TS_VIDEO
from kitch.hls.registry import SOURCE
from kitch.ingest.sinks import BroadcastInfo
from kitch.media import MediaPacket


class PassthroughSink:
    name = "hls"
    wants_frames = True  # every frame; the native lane feeds its stream for it

    def __init__(self, info: BroadcastInfo) -> None:
        self.stream = info.stream
        self.ts = info.stream.settings.format == "ts"

    def refuse(self, packet: MediaPacket) -> str | None:
        if not self.ts:
            return None
        carried = TS_VIDEO if packet.kind == "video" else TS_AUDIO
        if packet.codec in carried:
            return None
        return (
            f"{packet.kind} codec {packet.codec} cannot be carried by this server's MPEG-TS "
            f"output; send {' or '.join(carried)}"
        )

    def packet(self, packet: MediaPacket, now: float) -> None:
        self.stream.feed(packet, now)

    def discontinuity(self, now: float) -> None:
        self.stream.discontinuity(now)

    def end(self, now: float) -> None:
        self.stream.end(now)

    def health(self) -> dict[str, Any]:
        """The ``source`` rendition: what the muxer holds and measured."""
        r = self.stream.renditions[SOURCE]
        init = r.init
        _, avg = r.store.bitrate()
        return {
            "renditions": [
                {
                    "name": SOURCE,
                    "width": (init.width or None) if init else None,
                    "height": (init.height or None) if init else None,
                    "bitrate_kbps": round(avg / 1000, 1) if avg else None,
                    "fps": r.segmenter.frame_rate or None,
                    "encode_speed": None,
                    "dropped_frames": r.segmenter.dropped_packets,
                    "restarts": 0,
                    "cpu_seconds": 0.0,
                    "bytes_held": r.store.bytes_held,
                    "window_bytes": r.store.window_bytes,
                    "error": (
                        f"{r.config_errors} unreadable codec configuration(s)"
                        if r.config_errors
                        else None
                    ),
                }
            ]
        }
