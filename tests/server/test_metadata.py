"""Numbers in a publisher's onMetaData: NaN, infinities, huge and negative values never reach the
stats or the API, and the publish goes on."""

from __future__ import annotations

import json
import math
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from kitch.ingest.stats import MAX_DIMENSION, MAX_FRAMERATE, IngestStats, peer_number
from kitch.rtmp.amf0 import amf0_encode
from kitch.rtmp.chunks import ChunkWriter
from tests.support.hls import play_hls
from tests.support.media import Fixture
from tests.support.server import KitchServer

NAN, INF = float("nan"), float("inf")

#: onMetaData sent before each pass over the clip.
NASTY: list[dict[str, object]] = [
    {"framerate": NAN, "videodatarate": -5.0, "audiosamplerate": -INF},
    {"framerate": INF, "width": INF, "height": 1e300},
    {"framerate": 1e308, "width": 1e308, "height": 1e308, "encoder": "x" * 1000},
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (NAN, None),
        (INF, None),
        (-INF, None),
        (-5.0, None),
        (0.0, None),
        (True, None),
        ("30", None),
        (None, None),
        (29.97, 29.97),
        (1e308, 100.0),
        (7, 7.0),
    ],
)
def test_peer_number_keeps_only_finite_positive_values_clamped(
    value: object, expected: float | None
) -> None:
    assert peer_number(value, 100.0) == expected


def test_metadata_numbers_are_checked_before_they_are_stored() -> None:
    audio_only = IngestStats()  # no video frames: the frame rate shown is the metadata's
    audio_only.on_metadata(NASTY[0])  # type: ignore[arg-type]
    assert audio_only.snapshot()["fps"] is None
    json.dumps(audio_only.snapshot(), allow_nan=False)  # what the channel list must encode
    stats = IngestStats()
    for values in NASTY:
        stats.on_metadata(values)  # type: ignore[arg-type]
    snap = stats.snapshot()
    assert snap["width"] == snap["height"] == MAX_DIMENSION
    assert snap["fps"] == MAX_FRAMERATE
    assert snap["encoder"] == "x" * 200


def flv_tags(path: Path) -> list[tuple[int, int, bytes]]:
    """(message type, timestamp ms, payload) of every tag in an FLV file."""
    data = path.read_bytes()
    assert data[:3] == b"FLV"
    pos = struct.unpack(">I", data[5:9])[0] + 4
    tags = []
    while pos + 11 <= len(data):
        kind = data[pos]
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | data[pos + 7] << 24
        tags.append((kind, ts, data[pos + 11 : pos + 11 + size]))
        pos += 11 + size + 4
    return tags


class RawPublisher:
    """A raw-socket RTMP publisher: the clip in real time, ``passes`` times, each pass after an
    onMetaData from NASTY."""

    def __init__(self, port: int, key: str, fixture: Fixture, passes: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.writer = ChunkWriter(128)
        self.tags = [t for t in flv_tags(fixture.path) if t[0] in (8, 9)]
        self.span = fixture.seconds
        self.key = key
        self.passes = passes
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _command(self, *values: object, sid: int = 0, csid: int = 3) -> None:
        self.sock.sendall(self.writer.write(csid, 20, sid, 0, amf0_encode(*values)))

    def _run(self) -> None:
        try:
            self.sock.sendall(b"\x03" + bytes(1536))
            got = 0
            while got < 3073:
                chunk = self.sock.recv(65536)
                assert chunk, "server closed during the handshake"
                got += len(chunk)
            self.sock.sendall(bytes(1536))
            self._command("connect", 1.0, {"app": "live", "tcUrl": "rtmp://h/live"})
            self._command("createStream", 2.0, None)
            self._command("publish", 3.0, None, self.key, "live", sid=1, csid=8)
            t0 = time.monotonic()
            for n in range(self.passes):
                meta = amf0_encode("@setDataFrame", "onMetaData", NASTY[n % len(NASTY)])
                offset = int(n * self.span * 1000)
                self.sock.sendall(self.writer.write(5, 18, 1, offset, meta))
                for kind, ts, payload in self.tags:
                    at = t0 + (offset + ts) / 1000
                    if (wait := at - time.monotonic()) > 0:
                        time.sleep(wait)
                    self.sock.sendall(
                        self.writer.write(6 if kind == 9 else 4, kind, 1, offset + ts, payload)
                    )
        except BaseException as exc:  # reported by the test
            self.error = exc

    def close(self) -> None:
        self.thread.join(30)
        self.sock.close()


@pytest.mark.slow
def test_nan_and_infinite_metadata_keep_the_channel_list_and_the_stream_alive(
    server: KitchServer, av_fixture: Fixture
) -> None:
    acct = server.create_account("nasty")
    pub = RawPublisher(server.rtmp_port, acct.stream_key, av_fixture, passes=3)
    try:
        server.wait_for(lambda: server.channel("nasty")["live"], 15, "live")
        answers = []
        deadline = time.monotonic() + 2 * av_fixture.seconds
        while time.monotonic() < deadline:  # the stats are written every 3 s
            status, body = server.request("GET", "/api/v1/channels")
            answers.append(status)
            assert status == 200, body
            time.sleep(0.25)
        channel = server.channel("nasty")
        assert channel["live"] is True
        stats = channel["stream"]["stats"]
        for name in ("fps", "width", "height", "bitrate_kbps"):
            value = stats.get(name)
            assert value is None or math.isfinite(value), (name, value)
        playback = play_hls(f"{server.base}/hls/nasty/master.m3u8", video_frames=20)
        assert len(playback.video_pts) >= 20
        assert pub.error is None, pub.error
        pub.thread.join(30)
        assert pub.error is None, pub.error
        status, body = server.request("GET", "/api/v1/channels")
        assert status == 200, body
    finally:
        pub.close()
    log = server.log()
    assert "Traceback" not in log and "OverflowError" not in log
    assert "rtmp 127.0.0.1" in log and "protocol error" not in log
