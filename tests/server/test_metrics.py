"""The ingest's Prometheus metrics, read from /metrics of a real `kitch serve`."""

from __future__ import annotations

import socket

import av
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import BackgroundPublisher
from tests.support.media import Fixture, publish_pyav
from tests.support.server import KitchServer

pytestmark = pytest.mark.slow


def scrape(server: KitchServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample on /metrics, keyed by (name, sorted labels)."""
    text = server.get("/metrics").decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_ingest_metrics_are_exposed(server: KitchServer, av_fixture: Fixture) -> None:
    acct = server.create_account("metered")
    before = scrape(server)
    assert ("kitch_live_channels", ()) in before, sorted(k[0] for k in before)
    assert value(before, "kitch_live_channels") == 0
    pub = BackgroundPublisher(server.rtmp_url(acct.stream_key), av_fixture)
    try:
        server.wait_for(lambda: server.channel("metered")["live"], 10, "live")
        server.wait_for(
            lambda: value(scrape(server), "kitch_rtmp_received_bytes_total") > 50_000,
            10,
            "received bytes counted",
        )
        live = scrape(server)
        print({k: v for k, v in live.items() if k[0].startswith(("kitch_rtmp", "kitch_live"))})
        assert value(live, "kitch_live_channels") == 1
        assert value(live, "kitch_rtmp_open_connections") == 1
        assert value(live, "kitch_rtmp_connections_total") >= 2  # the start-up probe, then PyAV
        # A wrong key is refused and counted, by reason.
        with pytest.raises((av.error.FFmpegError, OSError)):
            publish_pyav(server.rtmp_url("live_not-a-real-key"), av_fixture)
        # A peer that sends a bad version byte is a protocol error.
        with socket.create_connection(("127.0.0.1", server.rtmp_port)) as bad:
            bad.sendall(b"\x06" + bytes(1536))
            bad.settimeout(5)
            assert bad.recv(1) == b""

        def counted() -> bool:
            now = scrape(server)
            return (
                value(now, "kitch_rtmp_publish_refused_total", reason="unknown_key") == 1
                and value(now, "kitch_rtmp_connections_closed_total", reason="refused") == 1
                and value(now, "kitch_rtmp_connections_closed_total", reason="protocol_error") == 1
            )

        server.wait_for(counted, 5, "refusal and protocol error counted")
    finally:
        pub.stop()
    server.wait_for(
        lambda: value(scrape(server), "kitch_live_channels") == 0, 10, "offline after the grace"
    )
    after = scrape(server)
    assert value(after, "kitch_rtmp_open_connections") == 0
    closed = sum(v for k, v in after.items() if k[0] == "kitch_rtmp_connections_closed_total")
    assert closed == value(after, "kitch_rtmp_connections_total"), after


def test_stream_health_gauges_per_channel_and_rendition_leave_with_the_broadcast(
    server: KitchServer, av_fixture: Fixture
) -> None:
    acct = server.create_account("gauged")
    pub = BackgroundPublisher(server.rtmp_url(acct.stream_key), av_fixture)
    source = {"channel": "gauged", "rendition": "source"}
    try:

        def measured() -> bool:
            now = scrape(server)
            return (
                value(now, "kitch_rendition_bytes_held", **source) > 0
                and value(now, "kitch_rendition_bitrate_kbps", **source) > 0
                and value(now, "kitch_stream_ingest_fps", channel="gauged") > 0
                and value(now, "kitch_stream_keyframe_interval_seconds", channel="gauged") > 0
            )

        server.wait_for(measured, 15, "health gauges of the live stream")
        live = scrape(server)
        print({k: v for k, v in live.items() if k[0].startswith(("kitch_stream", "kitch_rend"))})
        assert value(live, "kitch_rendition_width", **source) == 320
        assert value(live, "kitch_rendition_height", **source) == 240
        assert 25 <= value(live, "kitch_rendition_fps", **source) <= 35
        assert value(live, "kitch_stream_ingest_bitrate_kbps", channel="gauged") > 0
        assert value(live, "kitch_stream_keyframe_interval_seconds", channel="gauged") == (
            pytest.approx(1.0, abs=0.1)
        )
        assert ("kitch_stream_av_drift_ms", (("channel", "gauged"),)) in live
        assert value(live, "kitch_stream_ladder_dropped_packets", channel="gauged") == 0
        window = value(live, "kitch_rendition_window_bytes", **source)
        assert 0 < window <= value(live, "kitch_rendition_bytes_held", **source)
        # the source rendition is not encoded: no encode speed
        assert ("kitch_rendition_encode_speed", tuple(sorted(source.items()))) not in live
    finally:
        pub.stop()
    server.wait_for(lambda: not server.channel("gauged")["live"], 10, "offline")
    after = scrape(server)
    left = [k for k in after if ("channel", "gauged") in k[1]]
    assert left == [], left
