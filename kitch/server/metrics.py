"""Prometheus metrics of the ingest side (served by the app's /metrics)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

RTMP_CONNECTIONS = Counter("kitch_rtmp_connections_total", "RTMP connections accepted")
RTMP_CLOSED = Counter(
    "kitch_rtmp_connections_closed_total", "RTMP connections closed, by reason", ["reason"]
)
RTMP_BYTES = Counter("kitch_rtmp_received_bytes_total", "Bytes received from RTMP peers")
RTMP_OPEN = Gauge("kitch_rtmp_open_connections", "RTMP connections currently open")
PUBLISH_REFUSED = Counter(
    "kitch_rtmp_publish_refused_total", "Publish requests refused, by reason", ["reason"]
)
LIVE_CHANNELS = Gauge("kitch_live_channels", "Channels currently live")

HealthSource = Callable[[], Iterable[tuple[str, dict[str, Any]]]]

#: Per-channel gauges: (metric name, section of the health answer, key in it, help).
CHANNEL_GAUGES = (
    ("kitch_stream_ingest_bitrate_kbps", "ingest", "bitrate_kbps", "Ingest bit rate (kbit/s)"),
    ("kitch_stream_ingest_fps", "ingest", "fps", "Ingest video frame rate"),
    (
        "kitch_stream_keyframe_interval_seconds",
        "ingest",
        "keyframe_interval",
        "Longest recent keyframe interval of the ingest",
    ),
    ("kitch_stream_av_drift_ms", "ingest", "av_drift_ms", "Audio ahead of video in the ingest"),
    (
        "kitch_stream_ladder_decode_cpu_seconds",
        "ladder",
        "decode_cpu_seconds",
        "CPU seconds the ladder spent decoding",
    ),
    (
        "kitch_stream_ladder_dropped_packets",
        "ladder",
        "dropped_packets",
        "Packets the ladder could not take",
    ),
    (
        "kitch_stream_ladder_decoder_restarts",
        "ladder",
        "decoder_restarts",
        "Ladder decoder restarts",
    ),
)
#: Per-rendition gauges: (metric name, key in a rendition's health, help).
RENDITION_GAUGES = (
    ("kitch_rendition_width", "width", "Rendition width (pixels)"),
    ("kitch_rendition_height", "height", "Rendition height (pixels)"),
    ("kitch_rendition_bitrate_kbps", "bitrate_kbps", "Rendition average bit rate (kbit/s)"),
    ("kitch_rendition_fps", "fps", "Rendition frame rate"),
    ("kitch_rendition_encode_speed", "encode_speed", "Encoding speed (x real time)"),
    ("kitch_rendition_dropped_frames", "dropped_frames", "Frames the rendition dropped"),
    ("kitch_rendition_restarts", "restarts", "Encoder restarts of the rendition"),
    ("kitch_rendition_cpu_seconds", "cpu_seconds", "CPU seconds spent on the rendition"),
    ("kitch_rendition_bytes_held", "bytes_held", "Bytes of media the rendition holds in memory"),
    (
        "kitch_rendition_window_bytes",
        "window_bytes",
        "Bytes of the rendition's listed window (segments, parts, init)",
    ),
)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class StreamHealthCollector(Collector):
    """The health figures of every live broadcast as gauges labelled ``channel`` (and
    ``rendition``), read at scrape time from the sources added (the ingest hubs): a broadcast
    that ends leaves the exposition with it, so the label set stays bounded."""

    def __init__(self) -> None:
        self.sources: list[HealthSource] = []

    def add(self, source: HealthSource) -> None:
        self.sources.append(source)

    def discard(self, source: HealthSource) -> None:
        if source in self.sources:
            self.sources.remove(source)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        channel = {
            name: GaugeMetricFamily(name, text, labels=["channel"])
            for name, _, _, text in CHANNEL_GAUGES
        }
        rendition = {
            name: GaugeMetricFamily(name, text, labels=["channel", "rendition"])
            for name, _, text in RENDITION_GAUGES
        }
        for source in list(self.sources):
            for name, health in source():
                for metric, section, key, _ in CHANNEL_GAUGES:
                    value = _number(health.get(section, {}).get(key))
                    if value is not None:
                        channel[metric].add_metric([name], value)
                for r in health.get("renditions", []):
                    for metric, key, _ in RENDITION_GAUGES:
                        value = _number(r.get(key))
                        if value is not None:
                            rendition[metric].add_metric([name, str(r.get("name"))], value)
        yield from channel.values()
        yield from rendition.values()


STREAM_HEALTH = StreamHealthCollector()
REGISTRY.register(STREAM_HEALTH)
