"""Hostile peers beside a real publisher against a real `kitch serve`.

Two of each: bad C0, short C1, connect then silence, garbage after the handshake, Set Chunk
Size 2^31-1 then a message that never ends, every chunk stream id up to 65,599 opened at once,
a 16 MiB message trickled, AMF nested 20,000 deep, publish names of 64 KiB, publish names that
are Boolean or Null. The live stream's HLS output keeps going without a gap, every hostile socket
is closed within a few seconds (silent ones within the handshake timeout) with a logged reason
naming the peer, the server stays up and a new publisher is accepted afterwards.
"""

from __future__ import annotations

import os
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from kitch.rtmp.amf0 import amf0_encode
from kitch.rtmp.chunks import ChunkWriter
from tests.server.conftest import BackgroundPublisher
from tests.support.hls import play_hls
from tests.support.media import Fixture
from tests.support.server import KitchServer

pytestmark = pytest.mark.slow

HANDSHAKE_TIMEOUT = 3.0
#: A hostile socket must be closed this long after its last act (silence: after it connected).
CLOSE_WITHIN = HANDSHAKE_TIMEOUT + 2.0


@dataclass
class Peer:
    kind: str
    port: int = 0
    closed_after: float | None = None  # seconds from its last act to the server's close
    error: BaseException | None = None
    sent: int = 0
    notes: list[str] = field(default_factory=list)


class Hostile:
    """One raw socket to the RTMP port; helpers to speak just enough RTMP."""

    def __init__(self, port: int, peer: Peer) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.peer = peer
        peer.port = self.sock.getsockname()[1]
        self.writer = ChunkWriter(128)

    def send(self, data: bytes) -> bool:
        """Send; False once the server has closed the connection."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        self.peer.sent += len(data)
        return True

    def handshake(self) -> None:
        self.send(b"\x03" + bytes(1536))
        got = 0
        while got < 3073:
            chunk = self.sock.recv(65536)
            assert chunk, "server closed during the handshake"
            got += len(chunk)
        self.send(bytes(1536))

    def command(self, *values: object, sid: int = 0, csid: int = 3) -> bool:
        return self.send(self.writer.write(csid, 20, sid, 0, amf0_encode(*values)))

    def connect(self) -> bool:
        return self.command("connect", 1.0, {"app": "live", "tcUrl": "rtmp://h/live"})

    def closed_by_server(self, wait: float) -> bool:
        """Read (and drop) until the server closes or ``wait`` seconds pass."""
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return False
            try:
                if not self.sock.recv(65536):
                    return True
            except OSError:
                return True
        return False

    def wait_close(self, t_last: float) -> None:
        if self.closed_by_server(CLOSE_WITHIN + 5):
            self.peer.closed_after = time.monotonic() - t_last

    def trickle(self, piece: bytes, every: float) -> None:
        """Send ``piece`` every ``every`` seconds until the server closes."""
        start = time.monotonic()
        while time.monotonic() - start < CLOSE_WITHIN + 5:
            if not self.send(piece) or self.closed_by_server(every):
                self.peer.closed_after = time.monotonic() - start
                return


def bad_c0(h: Hostile) -> float:
    h.send(b"\x06" + os.urandom(1536))
    return time.monotonic()


def short_c1(h: Hostile) -> float:
    h.send(b"\x03" + os.urandom(100))
    return time.monotonic()


def connect_then_silence(h: Hostile) -> float:
    h.handshake()
    h.connect()
    return time.monotonic()


def garbage_after_handshake(h: Hostile) -> float:
    h.handshake()
    h.send(os.urandom(8192))
    return time.monotonic()


def huge_chunk_size_endless_message(h: Hostile) -> float:
    h.handshake()
    h.send(h.writer.write(2, 1, 0, 0, struct.pack(">I", 0x7FFFFFFF)))
    # A 4 MiB - 1 video message (just under the message cap) whose bytes never all arrive.
    length = 4 * 1024 * 1024 - 1
    header = bytes([0x06]) + bytes(3) + length.to_bytes(3, "big") + b"\x09" + b"\x01\x00\x00\x00"
    h.send(header)
    h.trickle(os.urandom(1024), 0.1)
    return time.monotonic()


def every_chunk_stream_id(h: Hostile) -> float:
    h.handshake()
    out = bytearray()
    for csid in range(2, 65600):
        out += ChunkWriter(128).write(csid, 8, 1, 0, b"x")
    h.send(bytes(out))
    return time.monotonic()


def trickled_16_mib_message(h: Hostile) -> float:
    h.handshake()
    length = 16 * 1024 * 1024 - 1
    header = bytes([0x06]) + bytes(3) + length.to_bytes(3, "big") + b"\x09" + b"\x01\x00\x00\x00"
    h.send(header)
    h.trickle(bytes(64), 0.1)
    return time.monotonic()


def amf_nested_20000_deep(h: Hostile) -> float:
    h.handshake()
    deep = b"\x0a\x00\x00\x00\x01" * 20_000 + b"\x05"
    payload = amf0_encode("connect", 1.0) + deep
    h.send(h.writer.write(2, 1, 0, 0, struct.pack(">I", 65536)))
    h.writer.chunk_size = 65536
    h.send(h.writer.write(3, 20, 0, 0, payload))
    return time.monotonic()


def publish_name(name: object) -> Callable[[Hostile], float]:
    def act(h: Hostile) -> float:
        h.handshake()
        h.connect()
        h.command("createStream", 2.0, None)
        h.command("publish", 3.0, None, name, "live", sid=1, csid=8)
        return time.monotonic()

    return act


KINDS: dict[str, Callable[[Hostile], float]] = {
    "bad C0": bad_c0,
    "short C1": short_c1,
    "connect then silence": connect_then_silence,
    "garbage after handshake": garbage_after_handshake,
    "chunk size 2^31-1, endless message": huge_chunk_size_endless_message,
    "every chunk stream id": every_chunk_stream_id,
    "16 MiB message trickled": trickled_16_mib_message,
    "AMF nested 20000 deep": amf_nested_20000_deep,
    "64 KiB publish name": publish_name("k" * 65536),
    "Boolean publish name": publish_name(True),
    "Null publish name": publish_name(None),
}


def run_peer(port: int, peer: Peer, act: Callable[[Hostile], float]) -> None:
    try:
        h = Hostile(port, peer)
        try:
            t_last = act(h)
            if peer.closed_after is None:
                h.wait_close(t_last)
        finally:
            h.sock.close()
    except BaseException as exc:  # reported by the test
        peer.error = exc


def media_playlist(server: KitchServer, name: str) -> str:
    return bytes(server.get(f"/hls/{name}/source/index.m3u8")).decode()


def has_segments(server: KitchServer, name: str) -> bool:
    status, body = server.request("GET", f"/hls/{name}/source/index.m3u8")
    return status == 200 and b"#EXTINF" in body


def segments_of(text: str) -> dict[int, float]:
    """Media sequence number -> EXTINF duration of every segment listed."""
    seq = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))  # type: ignore[union-attr]
    out: dict[int, float] = {}
    for line in text.splitlines():
        if line.startswith("#EXTINF:"):
            out[seq] = float(line[8:].split(",")[0])
            seq += 1
    return out


def test_hostile_peers_beside_a_live_publisher(server_factory: object, av_fixture: Fixture) -> None:
    t_start = time.monotonic()
    server: KitchServer = server_factory(  # type: ignore[operator]
        "--rtmp-handshake-timeout", str(HANDSHAKE_TIMEOUT),
        "--rtmp-max-connections-per-ip", "64",
        "--reconnect-grace", "3",
    )  # fmt: skip
    acct = server.create_account("steady")
    pub = BackgroundPublisher(server.rtmp_url(acct.stream_key), av_fixture)
    try:
        server.wait_for(lambda: has_segments(server, "steady"), 15, "segments")
        seen = segments_of(media_playlist(server, "steady"))
        peers = [Peer(kind) for kind in KINDS for _ in range(2)]
        threads = [
            threading.Thread(target=run_peer, args=(server.rtmp_port, p, KINDS[p.kind]))
            for p in peers
        ]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        discontinuities = 0
        while any(t.is_alive() for t in threads):
            text = media_playlist(server, "steady")
            discontinuities = max(discontinuities, text.count("#EXT-X-DISCONTINUITY\n"))
            seen.update(segments_of(text))
            time.sleep(0.5)
        for t in threads:
            t.join()
        window = time.monotonic() - t0
        time.sleep(2.5)  # let the segment covering the end of the window complete
        seen.update(segments_of(media_playlist(server, "steady")))

        # The server stayed up and the publisher never noticed.
        assert server.proc is not None and server.proc.poll() is None
        assert pub.alive and pub.error is None, pub.error

        # Every hostile socket was closed by the server, in time, with a logged reason.
        log = server.log()
        report = []
        for p in peers:
            assert p.error is None, (p.kind, p.error)
            assert p.closed_after is not None, f"{p.kind}: socket still open"
            assert p.closed_after < CLOSE_WITHIN, (p.kind, p.closed_after)
            m = re.search(rf"rtmp 127\.0\.0\.1:{p.port}: closed \((.+)\)", log)
            assert m, f"{p.kind}: no close logged for port {p.port}"
            report.append(f"{p.kind:38s} closed after {p.closed_after:4.1f} s: {m.group(1)}")
        print("\n" + "\n".join(report))
        assert "Traceback" not in log

        # HLS kept going: contiguous sequence numbers, no discontinuity, durations cover the
        # hostile window.
        numbers = sorted(seen)
        assert numbers == list(range(numbers[0], numbers[-1] + 1)), numbers
        assert discontinuities == 0 and "#EXT-X-DISCONTINUITY\n" not in media_playlist(
            server, "steady"
        )
        total = sum(seen.values())
        assert total >= window, (total, window)
        playback = play_hls(f"{server.base}/hls/steady/master.m3u8", video_frames=30)
        assert playback.max_video_gap() < 0.1
    finally:
        pub.stop()

    # A new publisher is accepted afterwards.
    other = server.create_account("after")
    pub2 = BackgroundPublisher(server.rtmp_url(other.stream_key), av_fixture)
    try:
        server.wait_for(lambda: server.channel("after")["live"], 15, "new publisher live")
    finally:
        pub2.stop()
    print(f"hostile test took {time.monotonic() - t_start:.1f} s")
