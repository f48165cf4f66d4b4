"""Prometheus metrics of the ingest side (served by the app's /metrics)."""

from prometheus_client import Counter, Gauge

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
