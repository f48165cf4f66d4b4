"""Two real `kitch serve` nodes sharing one data dir (its SQLite file): a channel lives on one
node at a time, HLS requests to the other node are redirected to it, a second publish of the
key on the other node is refused, and a killed node's channel moves within the lease time."""

from __future__ import annotations

import http.client
import re
import signal
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import av
import pytest

from tests.support.hls import play_hls
from tests.support.media import Fixture, ffmpeg_cli_publish, publish_pyav
from tests.support.server import KitchServer, free_port

pytestmark = pytest.mark.slow

#: The default heartbeat and lease (1 s, 5 s): the lease is what the move may take.
LEASE = 5.0
#: Light nodes: no ladder, no thumbnails, no recordings (the publish copies packets).
LIGHT = ["--ladder", "off", "--thumbnail-interval", "0", "--recordings", "off"]


class Publisher:
    """PyAV publishing a fixture in a thread (looping) until stopped; keeps the error it hit."""

    def __init__(self, url: str, fixture: Fixture) -> None:
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(url, fixture), daemon=True)
        self.thread.start()

    def _run(self, url: str, fixture: Fixture) -> None:
        try:
            publish_pyav(url, fixture, loops=100, stop=self.stop_event)
        except BaseException as exc:  # reported to the test through .error
            self.error = exc

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)


def node(tmp_path: Path, name: str, *args: str) -> KitchServer:
    port = free_port()
    return KitchServer(
        data_dir=tmp_path / "data",
        log_path=tmp_path / f"{name}.log",
        http_port=port,
        extra_args=["--node-id", name, "--node-url", f"http://127.0.0.1:{port}", *LIGHT, *args],
    )


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[KitchServer]]:
    started: list[KitchServer] = []
    yield started
    for srv in started:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()


def raw_get(srv: KitchServer | int, path: str) -> tuple[int, dict[str, str], bytes]:
    """One GET (to a server's HTTP port, or to a port) without following redirects."""
    port = srv if isinstance(srv, int) else srv.http_port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def follow(url: str) -> tuple[str, bytes]:
    """GET following redirects: (the URL that answered, body)."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.geturl(), resp.read()


def segments(srv: KitchServer, name: str = "alice") -> int:
    """Complete segments in the channel's source playlist on ``srv`` (FFmpeg's reader wants
    two)."""
    return raw_get(srv, f"/hls/{name}/source/index.m3u8")[2].count(b"#EXTINF")


def numbering(srv: KitchServer, name: str = "alice") -> tuple[int, int]:
    """(the newest listed media sequence number, its discontinuity number) on ``srv``: for
    A the last it served, for B (just after the move) the first of its own."""
    text = raw_get(srv, f"/hls/{name}/source/index.m3u8")[2].decode()
    msn = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))  # type: ignore[union-attr]
    found = re.search(r"#EXT-X-DISCONTINUITY-SEQUENCE:(\d+)", text)
    disc = int(found.group(1)) if found else 0
    segs = text.split("#EXTINF")[1:]
    if segs:  # the newest complete segment and the discontinuity tags before it
        msn += len(segs) - 1
        disc += text.count("#EXT-X-DISCONTINUITY\n")
    return msn, disc


def live(srv: KitchServer, name: str) -> bool:
    return bool(srv.channel(name)["live"])


def lease_rows(data_dir: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(data_dir / "kitch.db") as conn:
        return list(conn.execute("SELECT channel, node_id FROM channel_leases"))


def test_a_channel_plays_through_any_node_and_moves_when_its_node_dies(
    tmp_path: Path, nodes: list[KitchServer], av_fixture: Fixture
) -> None:
    a = node(tmp_path, "a")
    nodes.append(a.start())
    acct = a.create_account("alice")
    first = Publisher(a.rtmp_url(acct.stream_key), av_fixture)
    second: Publisher | None = None
    try:
        a.wait_for(lambda: segments(a) >= 2, 15, "two segments of alice on A")
        # B starts while alice is live on A: it must not mark her offline
        b = node(tmp_path, "b")
        nodes.append(b.start())
        assert live(b, "alice") and live(a, "alice")
        assert lease_rows(tmp_path / "data") == [("alice", "a")]
        # the web app's page on B lets its player follow a redirect to A
        status, headers, _ = raw_get(b, "/alice")
        assert (
            status == 200 and f"connect-src 'self' {a.base}" in headers["content-security-policy"]
        )

        # HLS through B: an absolute 307 to A, same path and query
        path = "/hls/alice/source/index.m3u8?_HLS_msn=0&_HLS_part=0"
        status, headers, _ = raw_get(b, path)
        assert status == 307, (status, headers)
        assert headers["location"] == a.base + path
        assert headers["access-control-allow-origin"] == "*"
        where, playlist = follow(b.base + "/hls/alice/source/index.m3u8")
        assert where == a.base + "/hls/alice/source/index.m3u8"
        part = re.findall(rb'#EXT-X-PART:.*URI="([^"]+)"', playlist)[-1].decode()
        status, headers, _ = raw_get(b, f"/hls/alice/source/{part}")
        assert (status, headers["location"]) == (307, f"{a.base}/hls/alice/source/{part}")
        where, data = follow(f"{b.base}/hls/alice/source/{part}")
        assert urlsplit(where).port == a.http_port and data == follow(where)[1] and data
        # FFmpeg's HLS reader pointed at B plays the stream A serves
        playback = play_hls(f"{b.base}/hls/alice/master.m3u8", video_frames=30)
        assert (playback.width, playback.height) == (320, 240) and playback.audio_pts
        # A channel nobody holds: B's own 404, as without a cluster
        assert raw_get(b, "/hls/nobody/master.m3u8")[0] == 404

        # The same key published to B while A holds it: refused as a second publisher
        with pytest.raises((av.error.FFmpegError, OSError)):
            publish_pyav(b.rtmp_url(acct.stream_key), av_fixture)
        assert "refused second publisher" in b.log() and "live on node a" in b.log()
        assert first.thread.is_alive() and first.error is None

        # A dies: within the lease B accepts the publisher again, and serves alice itself
        a_msn, a_disc = numbering(a)
        a.stop(signal.SIGKILL)
        died = time.monotonic()
        moved = [("alice", "b")]
        while True:  # the encoder retries, as OBS does, until B takes it
            second = Publisher(b.rtmp_url(acct.stream_key), av_fixture)
            tried = time.monotonic()
            while second.thread.is_alive() and time.monotonic() - tried < 2:
                if lease_rows(tmp_path / "data") == moved:
                    break
                time.sleep(0.05)
            if lease_rows(tmp_path / "data") == moved:
                break
            second.stop()
            assert time.monotonic() - died < LEASE + 3, b.log()
        took = time.monotonic() - died
        print(f"the channel moved to B {took:.2f} s after A was killed (lease {LEASE:g} s)")
        assert took < LEASE + 2
        b.wait_for(lambda: segments(b) >= 2, 10, "two segments of alice on B")
        playback = play_hls(f"{b.base}/hls/alice/master.m3u8", video_frames=30)
        assert len(playback.video_pts) >= 30
        # B numbers on from A: a player reloading across the move reads forward, after a
        # discontinuity, instead of seeing the media sequence go back
        b_msn, b_disc = numbering(b)
        print(f"last segment on A {a_msn} (discontinuity {a_disc}), first on B {b_msn} ({b_disc})")
        assert b_msn > a_msn and b_disc > a_disc
        assert live(b, "alice")
        assert lease_rows(tmp_path / "data") == [("alice", "b")]
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert second.error is None, second.error


def test_an_ended_broadcast_and_a_clean_shutdown_free_the_channel_at_once(
    tmp_path: Path, nodes: list[KitchServer], av_fixture: Fixture
) -> None:
    a, b = node(tmp_path, "a"), node(tmp_path, "b")
    nodes += [a.start(), b.start()]
    acct = a.create_account("bob")
    pub = Publisher(a.rtmp_url(acct.stream_key), av_fixture)
    try:
        a.wait_for(lambda: live(a, "bob"), 10, "bob live on A")
    finally:
        pub.stop()  # PyAV unpublishes: the broadcast ends and its lease goes with it
    assert pub.error is None
    a.wait_for(lambda: not lease_rows(tmp_path / "data"), 3, "the lease released")
    pub = Publisher(b.rtmp_url(acct.stream_key), av_fixture)  # at once, no lease wait
    try:
        b.wait_for(lambda: live(b, "bob"), 5, "bob live on B")
        assert lease_rows(tmp_path / "data") == [("bob", "b")]
        b.stop()  # SIGTERM: a clean shutdown gives every lease and the node row up
        assert lease_rows(tmp_path / "data") == []
        with sqlite3.connect(tmp_path / "data" / "kitch.db") as conn:
            assert [r[0] for r in conn.execute("SELECT id FROM nodes")] == ["a"]
    finally:
        pub.stop()
    pub = Publisher(a.rtmp_url(acct.stream_key), av_fixture)
    try:
        a.wait_for(lambda: live(a, "bob"), 5, "bob live on A again")
    finally:
        pub.stop()


def test_hls_workers_redirect_to_the_holding_node_too(
    tmp_path: Path, nodes: list[KitchServer], av_fixture: Fixture
) -> None:
    wa, wb = free_port(), free_port()
    a = node(tmp_path, "a", "--hls-workers", "1", "--hls-port", str(wa))
    b = node(tmp_path, "b", "--hls-workers", "1", "--hls-port", str(wb))
    nodes += [a.start(), b.start()]
    acct = a.create_account("carol")
    pub = Publisher(a.rtmp_url(acct.stream_key), av_fixture)
    path = "/hls/carol/source/index.m3u8?_HLS_msn=0"

    def worker_status(port: int) -> int:
        try:
            return raw_get(port, path)[0]
        except OSError:  # the worker is not listening yet
            return 0

    try:
        a.wait_for(lambda: worker_status(wa) == 200, 15, "carol on A's worker")
        # B's worker learns of carol at B's next heartbeat, then redirects like B itself
        b.wait_for(lambda: worker_status(wb) == 307, 5, "B's worker redirecting carol")
        status, headers, _ = raw_get(wb, path)
        assert status == 307
        assert headers["location"] == a.base + path
        assert raw_get(wb, "/hls/nobody/master.m3u8")[0] == 404
    finally:
        pub.stop()
    # the broadcast ended: nobody holds carol, B's worker answers its own 404 again
    b.wait_for(lambda: worker_status(wb) == 404, 5, "B's worker forgetting carol")


def test_a_publisher_that_drops_comes_back_on_another_node_within_the_grace(
    tmp_path: Path, nodes: list[KitchServer], av_fixture: Fixture
) -> None:
    """The reconnect grace (10 s by default) keeps the broadcast on A for a publisher that
    comes back there; one that comes back on B is accepted at once, and A's broadcast ends."""
    a, b = node(tmp_path, "a"), node(tmp_path, "b")
    nodes += [a.start(), b.start()]
    acct = a.create_account("erin")
    encoder = ffmpeg_cli_publish(a.rtmp_url(acct.stream_key), av_fixture, loops=-1)
    try:
        a.wait_for(lambda: lease_rows(tmp_path / "data") == [("erin", "a")], 10, "erin on A")
    finally:
        encoder.kill()  # the connection drops without an unpublish: A's grace starts
        encoder.wait()
        assert encoder.stderr is not None
        encoder.stderr.close()
    a.wait_for(lambda: "grace" in a.log(), 5, "A's grace")
    dropped = time.monotonic()
    pub = Publisher(b.rtmp_url(acct.stream_key), av_fixture)
    try:
        b.wait_for(lambda: lease_rows(tmp_path / "data") == [("erin", "b")], 5, "erin on B")
        assert time.monotonic() - dropped < 3  # not after A's 10 s grace
        a.wait_for(lambda: "taken by another node" in a.log(), 5, "A ending its broadcast")
        assert live(a, "erin") and live(b, "erin")
        b.wait_for(lambda: segments(b, "erin") >= 1, 10, "erin's playlist on B")
        status, headers, _ = raw_get(a, "/hls/erin/master.m3u8")
        assert (status, headers["location"]) == (307, b.base + "/hls/erin/master.m3u8")
    finally:
        pub.stop()
    assert pub.error is None
