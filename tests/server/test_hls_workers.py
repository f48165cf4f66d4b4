"""A real `kitch serve --hls-workers 2` with a real RTMP publisher: the workers' port answers
/hls as the main port does, survives a SIGKILLed worker and hostile clients, and its playlist
readers count as viewers."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import http.client
import os
import random
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from kitch.api.viewers import ViewerCounter
from kitch.config import Settings
from kitch.hls import HlsRegistry, HlsSettings
from kitch.server import hls_workers
from tests.hls.live import shifted
from tests.hls.packets import demux_packets
from tests.server.conftest import BackgroundPublisher, closed_within, is_live
from tests.support.media import Fixture
from tests.support.server import KitchServer, free_port

pytestmark = pytest.mark.slow

HEADER_TIMEOUT = 2.0
MAX_CONNECTIONS = 40


class Live:
    def __init__(self, server: KitchServer, hls_port: int, publisher: BackgroundPublisher):
        self.server = server
        self.hls_port = hls_port
        self.publisher = publisher


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, av_fixture: Fixture) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("workers")
    hls_port = free_port()
    srv = KitchServer(
        data_dir=tmp / "data",
        log_path=tmp / "server.log",
        extra_args=[
            "--hls-workers", "2", "--hls-port", str(hls_port), "--ladder", "off",
            "--thumbnail-interval", "0", "--recordings", "false",
            "--http-header-timeout", str(HEADER_TIMEOUT),
            "--http-max-connections", str(MAX_CONNECTIONS),
        ],
    )  # fmt: skip
    srv.start()
    acct = srv.create_account("alice")
    pub = BackgroundPublisher(srv.rtmp_url(acct.stream_key), av_fixture)
    try:
        srv.wait_for(lambda: is_live(srv, "alice"), 15, "alice live")
        srv.wait_for(lambda: fetch(hls_port, "/hls/alice/source/index.m3u8")[0] == 200, 15, "hls")
        yield Live(srv, hls_port, pub)
    finally:
        pub.stop()
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()


def fetch(
    port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def worker_pids(server: KitchServer) -> set[int]:
    assert server.proc is not None
    found = set()
    for task in Path(f"/proc/{server.proc.pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found.update(int(c) for c in children)
    return {
        pid
        for pid in found
        if b"kitch.server.hls_worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    }


def _last(playlist: str) -> tuple[int, int]:
    msn = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", playlist).group(1))  # type: ignore[union-attr]
    segments = playlist.count("#EXTINF")
    tail = playlist.rsplit("#EXTINF", 1)[-1]
    return msn + segments, tail.count("#EXT-X-PART:") - 1


def test_worker_answers_match_the_main_port(live: Live) -> None:
    main, worker = live.server.http_port, live.hls_port
    same = 0
    for _ in range(6):
        status, _, text = fetch(main, "/hls/alice/source/index.m3u8")
        assert status == 200
        msn, part = _last(text.decode())
        want = f"/hls/alice/source/index.m3u8?_HLS_msn={msn}&_HLS_part={part + 1}"
        got: dict[int, tuple[int, dict[str, str], bytes]] = {}
        threads = [
            threading.Thread(target=lambda p=p, w=want, g=got: g.__setitem__(p, fetch(p, w)))
            for p in (main, worker)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        (ms, mh, mb), (ws, wh, wb) = got[main], got[worker]
        assert ms == ws == 200
        for name in ("content-type", "cache-control", "access-control-allow-origin"):
            assert mh[name] == wh[name], name
        assert f"{msn}" in wb.decode()
        same += mb == wb
    assert same >= 3, "blocking reloads from both ports should give the same playlist"
    # parts and init from the worker are the main port's bytes
    text = fetch(worker, "/hls/alice/source/index.m3u8")[2].decode()
    names = re.findall(r'URI="([^"]+\.m(?:4s|p4))"', text)
    for name in [n for n in names if "-p" in n][-3:] + [n for n in names if "-i" in n]:
        a = fetch(main, f"/hls/alice/source/{name}")
        b = fetch(worker, f"/hls/alice/source/{name}")
        assert a[0] == b[0] == 200 and a[2] == b[2] and a[1]["content-type"] == b[1]["content-type"]
        assert b[1]["cache-control"] == "public, max-age=31536000, immutable"
    # the preload-hinted part: the worker waits for it, then has the main port's bytes
    hint = re.search(r'PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', text).group(1)  # type: ignore[union-attr]
    b = fetch(worker, f"/hls/alice/source/{hint}")
    a = fetch(main, f"/hls/alice/source/{hint}")
    assert a[0] == b[0] == 200 and a[2] == b[2]
    # gzip, HEAD, delta update, master
    status, headers, body = fetch(
        worker, "/hls/alice/source/index.m3u8", headers={"Accept-Encoding": "gzip"}
    )
    assert headers.get("content-encoding") == "gzip" and b"#EXTM3U" in gzip.decompress(body)
    status, headers, body = fetch(worker, "/hls/alice/source/index.m3u8", "HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 100
    assert b"#EXTM3U" in fetch(worker, "/hls/alice/source/index.m3u8?_HLS_skip=YES")[2]
    assert fetch(worker, "/hls/alice/master.m3u8")[2] == fetch(main, "/hls/alice/master.m3u8")[2]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/hls/nobody/master.m3u8"),
        ("GET", "/hls/alice/nope/index.m3u8"),
        ("GET", "/hls/alice/source/index.m3u8?_HLS_part=1"),
        ("GET", "/hls/alice/source/index.m3u8?_HLS_msn=abc"),
        ("GET", "/hls/alice/source/index.m3u8?_HLS_msn=99999999"),
        ("GET", "/hls/alice/source/nothing.m4s"),
        ("GET", "/hls/alice/source/0-p1.m4s"),
        ("GET", "/hls/alice"),
        ("OPTIONS", "/hls/alice/master.m3u8"),
        ("POST", "/hls/alice/master.m3u8"),
        ("DELETE", "/hls/alice/source/index.m3u8"),
    ],
)
def test_worker_errors_match_the_main_port(live: Live, method: str, path: str) -> None:
    a = fetch(live.server.http_port, path, method)
    b = fetch(live.hls_port, path, method)
    assert a[0] == b[0], (a, b)
    assert a[2] == b[2]
    assert a[1].get("access-control-allow-origin") == b[1].get("access-control-allow-origin")


def _hls_requests(server: KitchServer) -> float:
    """``kitch_http_requests_total`` of GET /hls answered 200, from the main process."""
    text = fetch(server.http_port, "/metrics")[2].decode()
    found = re.search(
        r'^kitch_http_requests_total\{area="hls",method="GET",status="200"\} ([\d.e+]+)$',
        text,
        re.M,
    )
    return float(found.group(1)) if found else 0.0


def test_viewers_and_requests_of_the_worker_port_are_counted(live: Live) -> None:
    before = live.server.channel("alice")["viewers"]
    requests = _hls_requests(live.server)
    for i in range(3):
        status, _, _ = fetch(
            live.hls_port, "/hls/alice/source/index.m3u8", headers={"User-Agent": f"watcher-{i}"}
        )
        assert status == 200
    live.server.wait_for(
        lambda: live.server.channel("alice")["viewers"] >= before + 3, 5, "worker viewers counted"
    )
    live.server.wait_for(
        lambda: _hls_requests(live.server) >= requests + 3, 5, "worker requests in /metrics"
    )


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            out += chunk
        return out


class Viewer(threading.Thread):
    """An LL-HLS reader on one keep-alive connection: blocking reloads; records failures."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.errors: list[Any] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/hls/alice/source/index.m3u8")
            resp = conn.getresponse()
            msn, part = _last(resp.read().decode())
            while not self.stop.is_set():
                conn.request(
                    "GET", f"/hls/alice/source/index.m3u8?_HLS_msn={msn}&_HLS_part={part + 1}"
                )
                resp = conn.getresponse()
                body = resp.read().decode()
                if resp.status != 200:
                    self.errors.append(resp.status)
                    return
                msn, part = _last(body)
                self.ok += 1
        except Exception as exc:
            self.errors.append(exc)
        finally:
            conn.close()


def test_hostile_clients_get_their_answer_and_do_not_disturb_a_viewer(live: Live) -> None:
    port = live.hls_port
    viewer = Viewer(port)
    viewer.start()
    try:
        out = _raw(port, b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 400") and b'"bad_request"' in out
        out = _raw(port, b"GET /hls/alice/master.m3u8 HTTP/1.1\r\nX-Big: " + b"a" * 70_000)
        assert out.startswith(b"HTTP/1.1 431")
        huge = b"GET /hls/x HTTP/1.1\r\n" + b"".join(
            b"X-%d: %s\r\n" % (i, b"b" * 100) for i in range(400)
        )
        assert _raw(port, huge + b"\r\n").startswith(b"HTTP/1.1 431")
        assert _raw(
            port, b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        ).startswith(b"HTTP/1.1 4")
        # random bytes: an answer or a close, never a crash
        rng = random.Random(7)
        for _ in range(40):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
            if rng.random() < 0.5:
                junk = b"GET /hls/alice/master.m3u8 HTTP/1.1\r\n" + junk + b"\r\n\r\n"
            out = _raw(port, junk)
            assert out == b"" or out.startswith(b"HTTP/1.1 "), out[:100]
        # a request trickled one byte at a time (within the header timeout) is answered
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for byte in b"HEAD /hls/alice/master.m3u8 HTTP/1.0\r\nUser-Agent: t\r\n\r\n":
                s.sendall(bytes([byte]))
                time.sleep(0.002)
            s.settimeout(5)
            head = s.recv(65536)
            assert head.startswith(b"HTTP/1.1 200") and b"content-length:" in head
            assert s.recv(100) == b""  # HTTP/1.0 without keep-alive: closed after the answer
        # thousands of tiny pipelined requests in one go: answered in order while the client
        # reads them; one that never reads is not read from either (bounded), and is harmless
        flood = b"GET /hls/nobody/master.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n" * 3000
        out = _raw(port, flood)
        assert out.count(b"HTTP/1.1 404") == 3000 or b"too many pipelined requests" in out
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.settimeout(2)
            sent = 0
            with contextlib.suppress(TimeoutError, ConnectionResetError, BrokenPipeError):
                for _ in range(400):  # 60 MB if the server read it all
                    s.sendall(flood)
                    sent += len(flood)
            assert sent < 400 * len(flood)  # it stopped reading
        assert fetch(port, "/hls/alice/master.m3u8")[0] == 200
        # a body nothing reads: a small one is skipped, a large one refused
        post = b"POST /hls/alice/master.m3u8 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
        assert _raw(port, post % 5 + b"hello").startswith(b"HTTP/1.1 405")
        assert _raw(port, post % 200_000 + b"x" * 200_000).startswith(b"HTTP/1.1 413")
        # pipelined requests are answered in order on one connection
        two = b"GET /hls/nobody/master.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n" * 2
        three = two + b"GET /hls/alice/master.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        out = _raw(port, three)
        assert out.count(b"HTTP/1.1 404") == 2 and out.count(b"HTTP/1.1 200") == 1
        assert out.index(b"HTTP/1.1 200") > out.rindex(b"HTTP/1.1 404")
        # clients that leave in the middle of a blocking reload or a preload-hinted part
        text = fetch(port, "/hls/alice/source/index.m3u8")[2].decode()
        msn, _ = _last(text)
        hint = re.search(r'PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', text).group(1)  # type: ignore[union-attr]
        for path in (
            f"/hls/alice/source/index.m3u8?_HLS_msn={msn + 1}&_HLS_part=0",
            f"/hls/alice/source/{hint}",
        ):
            # few enough that, still held until their answers are due (a half-closed client
            # may be waiting for them), they cannot fill one worker's cap for the steps below
            for _ in range(5):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                s.close()
        assert fetch(port, "/hls/alice/master.m3u8")[0] == 200
        # slowloris: a trickled head, and a silent connection, are closed after the timeout
        with (
            socket.create_connection(("127.0.0.1", port)) as slow,
            socket.create_connection(("127.0.0.1", port)) as silent,
        ):
            slow.sendall(b"GET /hls/alice/master.m3u8 HTTP/1.1\r\n")
            for _ in range(3):
                time.sleep(0.5)
                slow.sendall(b"X-A: b\r\n")
            took = closed_within(slow, HEADER_TIMEOUT + 3)
            assert took is not None
            assert closed_within(silent, HEADER_TIMEOUT + 3) is not None
        # past the connection cap (per worker): 503 and closed
        held = [
            socket.create_connection(("127.0.0.1", port)) for _ in range(2 * MAX_CONNECTIONS + 5)
        ]
        time.sleep(0.5)
        refused = 0
        for s in held:
            s.settimeout(0.2)
            with contextlib.suppress(TimeoutError, ConnectionResetError):
                refused += s.recv(100).startswith(b"HTTP/1.1 503")
            s.close()
        assert refused >= 5
    finally:
        viewer.stop.set()
        viewer.join(15)
    assert not viewer.errors, viewer.errors
    assert viewer.ok >= 10  # blocking reloads kept coming (a part every ~0.2 s)


def test_a_killed_worker_is_started_again(live: Live) -> None:
    server = live.server
    pids = worker_pids(server)
    assert len(pids) == 2
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    server.wait_for(lambda: len(worker_pids(server) - {victim}) == 2, 10, "a new worker")
    newcomer = (worker_pids(server) - pids).pop()
    # the new worker got a snapshot: every connection (to either worker) is served
    for _ in range(30):
        status, _, body = fetch(live.hls_port, "/hls/alice/source/index.m3u8")
        assert status == 200 and b"#EXT-X-PART:" in body
    assert Path(f"/proc/{newcomer}").exists()


def test_workers_stop_with_the_server(live: Live) -> None:
    server = live.server
    pids = worker_pids(server)
    live.publisher.stop()
    took = server.stop()
    assert took < 8
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        )
    with pytest.raises(OSError):
        fetch(live.hls_port, "/hls/alice/master.m3u8")
    log = server.log()
    assert "Traceback" not in log and "error answering" not in log, log


async def _get(port: int, path: str) -> tuple[int, bytes]:
    return await asyncio.to_thread(lambda: fetch(port, path)[::2])  # type: ignore[return-value]


async def test_a_worker_that_falls_behind_is_resynced_and_ingest_never_waits(
    tmp_path: Path, av_fixture: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process: the real registry, one real worker process. The worker is stopped
    (SIGSTOP) while the stream goes on: past the bound it is dropped (ingest goes on without
    waiting), and once it runs again and has drained, a snapshot makes it serve the current
    playlist again."""
    monkeypatch.setattr(hls_workers, "MAX_BEHIND", 256 * 1024)
    settings = Settings(data_dir=tmp_path, hls_workers=1, hls_port=free_port(), http="127.0.0.1:1")
    registry = HlsRegistry(HlsSettings(segment_count=3))
    counter = ViewerCounter(30.0)
    workers = hls_workers.HlsWorkers(settings, registry, counter, asdict(registry.settings))
    await workers.start()
    port = workers.port
    packets = shifted(demux_packets(av_fixture.path), 8, av_fixture.seconds)
    stream = registry.open("alice", 1000.0)
    try:
        third = len(packets) // 4
        for p in packets[:third]:
            stream.feed(p, 1000 + p.dts / 1000)
        want = stream.media_playlist("source")
        for _ in range(50):
            status, body = await _get(port, "/hls/alice/source/index.m3u8")
            if body.decode() == want:
                break
            await asyncio.sleep(0.1)
        assert body.decode() == want
        proc = workers.slots[0].proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)
        link = workers.slots[0].link
        assert link is not None
        t0 = time.monotonic()
        for p in packets[third:]:
            stream.feed(p, 1000 + p.dts / 1000)
            await asyncio.sleep(0)
        took = time.monotonic() - t0
        assert link.behind, "the stopped worker should have been dropped"
        assert hls_workers.WORKER_RESYNCS._value.get() >= 1  # type: ignore[attr-defined]
        assert link.transport is not None
        assert link.transport.get_write_buffer_size() < 4 * 256 * 1024  # bounded
        print(f"fed {len(packets) - third} packets in {took:.2f} s with a stopped worker")
        os.kill(proc.pid, signal.SIGCONT)
        want = stream.media_playlist("source")
        for _ in range(100):
            status, body = await _get(port, "/hls/alice/source/index.m3u8")
            if status == 200 and body.decode() == want:
                break
            await asyncio.sleep(0.1)
        assert body.decode() == want
        assert not link.behind and workers.slots[0].proc is proc  # resynced, not restarted
    finally:
        await workers.stop()
    assert proc.poll() is not None
