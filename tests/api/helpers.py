"""Shared constants, assertions and a fake live-health provider for the API tests."""

from __future__ import annotations

from typing import Any

import httpx

TEST_SECRET = "test-secret-0123456789abcdef0123456789"
PASSWORD = "correct horse battery"
Register = Any  # the ``register`` fixture: async (name="alice", password=PASSWORD) -> dict


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code


def health_document(channel: str) -> dict[str, Any]:
    """What the ingest hub answers for a live channel running a two-rung ladder."""
    return {
        "live": True,
        "since": "2026-01-31T12:00:00.000Z",
        "ingest": {
            "bitrate_kbps": 4500.5,
            "fps": 30.0,
            "keyframe_interval": 2.0,
            "av_drift_ms": 12.0,
            "width": 1920,
            "height": 1080,
            "video_codec": "h264",
            "audio_codec": "aac",
        },
        "ladder": {
            "state": "running",
            "reason": None,
            "decode_cpu_seconds": 12.5,
            "dropped_packets": 0,
            "decoder_restarts": 0,
        },
        "renditions": [
            {
                "name": "source",
                "width": 1920,
                "height": 1080,
                "bitrate_kbps": 4500.5,
                "fps": 30.0,
                "encode_speed": None,
                "dropped_frames": 0,
                "restarts": 0,
                "cpu_seconds": 0.0,
                "bytes_held": 9_000_000,
                "window_bytes": 4_600_000,
                "error": None,
            },
            {
                "name": "720p",
                "width": 1280,
                "height": 720,
                "bitrate_kbps": 2950.0,
                "fps": 30.0,
                "encode_speed": 1.4,
                "dropped_frames": 3,
                "restarts": 1,
                "cpu_seconds": 40.2,
                "bytes_held": 6_000_000,
                "window_bytes": 3_100_000,
                "error": None,
            },
        ],
    }


class FakeHub:
    """The health provider's contract: a document for a live channel, None otherwise."""

    def __init__(self) -> None:
        self.live: set[str] = set()
        self.asked: list[str] = []

    def health(self, channel: str) -> dict[str, Any] | None:
        self.asked.append(channel)
        return health_document(channel) if channel in self.live else None
