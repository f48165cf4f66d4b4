"""HTTP hardening of a real `kitch serve` over real sockets: header read timeout, header size
cap, connection cap (RTMP ingest unaffected), trusted proxies, allowed hosts, /metrics access."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kitch.config import Settings
from kitch.server.http import ConnectionGuard, HttpLimits, listener_config
from tests.server.conftest import BackgroundPublisher, closed_within
from tests.support.media import Fixture
from tests.support.server import KitchServer, free_port

pytestmark = pytest.mark.slow


def raw_request(
    port: int, path: str, host: str | None = "127.0.0.1", headers: str = ""
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request with ``Connection: close``; (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        host_line = f"Host: {host}\r\n" if host is not None else ""
        sock.sendall(
            f"GET {path} HTTP/1.1\r\n{host_line}{headers}Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    fields = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines)}
    return int(status_line.split()[1]), fields, body


def rss_kib(server: KitchServer) -> int:
    assert server.proc is not None
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]


def test_silent_and_trickling_connections_are_closed(server_factory: object) -> None:
    server: KitchServer = server_factory("--http-header-timeout", "1.5")  # type: ignore[operator]
    silent = socket.create_connection(("127.0.0.1", server.http_port))
    trickle = socket.create_connection(("127.0.0.1", server.http_port))
    try:
        trickle.sendall(b"GET /api/v1/channels HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        t0 = time.monotonic()
        closed_at = None
        while time.monotonic() - t0 < 6:  # a header line every 0.2 s, never the blank line
            try:
                trickle.sendall(b"X-Slow: 1\r\n")
            except OSError:
                closed_at = time.monotonic() - t0
                break
            if closed_within(trickle, 0.2) is not None:
                closed_at = time.monotonic() - t0
                break
        assert closed_at is not None and closed_at < 3.0, closed_at
        took = closed_within(silent, 3.0)
        assert took is not None, "a connection that sent nothing stayed open"
        # A keep-alive connection that answered a request gets the same time for the next one.
        with socket.create_connection(("127.0.0.1", server.http_port)) as conn:
            conn.sendall(b"GET /api/v1/channels HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            conn.settimeout(5)
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")
            assert closed_within(conn, 3.0) is not None
    finally:
        silent.close()
        trickle.close()
    # A request sent at a normal pace is answered.
    assert raw_request(server.http_port, "/api/v1/channels")[0] == 200
    assert "no complete request headers within 1.5 s" in server.log()


def test_huge_headers_are_refused_and_memory_stays_bounded(server_factory: object) -> None:
    server: KitchServer = server_factory("--http-max-header-bytes", "16384")  # type: ignore[operator]
    assert (
        raw_request(server.http_port, "/api/v1/channels", headers="X-Big: " + "a" * 8000 + "\r\n")[
            0
        ]
        == 200
    )
    before = rss_kib(server)
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as sock:
        sock.sendall(b"GET /api/v1/channels HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        line = b"X-Flood: " + b"f" * 1013 + b"\r\n"  # 1 KiB a line, 16 MiB in all
        try:
            for _ in range(16 * 1024):
                sock.sendall(line)
                sent += len(line)
        except OSError:
            pass
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    assert sent < 16 * 1024 * 1024, "the server read 16 MiB of headers"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert rss_kib(server) - before < 8 * 1024
    port = server.http_port
    assert raw_request(port, "/api/v1/channels")[0] == 200
    # One header just over the cap; headers sent a byte at a time (the blank line split
    # across reads); a body far larger than the cap is not headers.
    assert raw_request(port, "/", headers="X-Big: " + "b" * 16384 + "\r\n")[0] == 431
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for byte in b"GET /api/v1/channels HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n":
            sock.sendall(bytes([byte]))
            time.sleep(0.001)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    body = b'{"username": "' + b"u" * 200_000 + b'"}'
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n" + b"Content-Length: %d\r\n\r\n" % len(body) + body
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 413")
    assert "request headers too large" in server.log()


def test_connections_past_the_cap_are_refused_while_ingest_goes_on(
    server_factory: object, av_fixture: Fixture
) -> None:
    server: KitchServer = server_factory(  # type: ignore[operator]
        "--http-max-connections", "8", "--http-header-timeout", "60", "--reconnect-grace", "3"
    )
    acct = server.create_account("capped")
    held = [socket.create_connection(("127.0.0.1", server.http_port)) for _ in range(8)]
    pub = None
    try:
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as extra:
            extra.sendall(b"GET /api/v1/channels HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try:
                answer = extra.recv(65536)
            except OSError:
                answer = b""
            assert answer == b"" or answer.startswith(b"HTTP/1.1 503"), answer[:100]
            assert closed_within(extra, 2.0) is not None
        # RTMP ingest does not care about the HTTP side being full.
        pub = BackgroundPublisher(server.rtmp_url(acct.stream_key), av_fixture)
        server.wait_for(lambda: "channel capped is live" in server.log(), 15, "live")
        for sock in held[:2]:
            sock.close()
        time.sleep(0.3)
        channel = json.loads(raw_request(server.http_port, "/api/v1/channels/capped")[2])
        assert channel["live"] is True
        metrics = raw_request(server.http_port, "/metrics")[2].decode()
        assert 'kitch_http_connections_closed_total{reason="limit"} 1.0' in metrics
        assert pub.alive and pub.error is None
    finally:
        if pub is not None:
            pub.stop()
        for sock in held:
            sock.close()


def failed_login_logged_from(server: KitchServer, forwarded: str) -> str:
    status, _, _ = raw_post_login(server.http_port, forwarded)
    assert status in (401, 429)
    found = re.findall(r"wrong password for \S+ from (\S+)", server.log())
    assert found
    return found[-1]


def raw_post_login(port: int, forwarded: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"username": "prox", "password": "wrong password 1"}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nConnection: close\r\n"
            + f"X-Forwarded-For: {forwarded}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), {}, data


@pytest.mark.parametrize("trusted", [None, "127.0.0.0/8, ::1"])
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    server_factory: object, trusted: str | None
) -> None:
    args = ["--trusted-proxies", trusted] if trusted else []
    server: KitchServer = server_factory(*args)  # type: ignore[operator]
    server.create_account("prox")
    seen = failed_login_logged_from(server, "203.0.113.9")
    assert seen == ("203.0.113.9" if trusted else "127.0.0.1")


def test_host_header_must_be_one_of_the_servers_names(server_factory: object) -> None:
    server: KitchServer = server_factory()  # type: ignore[operator]
    port = server.http_port
    for host in (f"127.0.0.1:{port}", "localhost", f"[::1]:{port}"):
        assert raw_request(port, "/api/v1/channels", host=host)[0] == 200, host
    status, headers, body = raw_request(port, "/api/v1/channels", host="evil.example")
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_host"
    assert headers["content-type"] == "application/json"
    assert raw_request(port, "/", host="evil.example:80")[0] == 400
    assert raw_request(port, "/hls/x/master.m3u8", host="192.168.1.50")[0] == 400
    # The slash redirect no longer reflects a foreign host (it is refused before routing).
    assert raw_request(port, "/login/", host="evil.example")[0] == 400


def test_allowed_hosts_setting_and_wildcard_bind(server_factory: object, tmp_path: Path) -> None:
    named: KitchServer = server_factory(  # type: ignore[operator]
        "--allowed-hosts", "tv.example.com,*.lan.example, 127.0.0.1", data_dir=tmp_path / "a"
    )
    for host, status in (
        ("tv.example.com", 200),
        ("TV.example.com:8000", 200),
        ("box.lan.example", 200),
        ("127.0.0.1", 200),
        ("localhost", 400),
        ("example.com", 400),
    ):
        assert raw_request(named.http_port, "/api/v1/channels", host=host)[0] == status, host
    port = free_port()
    lan = KitchServer(
        data_dir=tmp_path / "b",
        log_path=tmp_path / "lan.log",
        extra_args=["--http", f"0.0.0.0:{port}"],  # after KitchServer's own --http: it wins
        http_port=port,
    ).start()
    try:
        for host, status in (
            ("192.168.1.50:8000", 200),
            ("[fe80::1]", 200),
            ("localhost", 200),
            ("evil.example", 400),
        ):
            assert raw_request(port, "/api/v1/channels", host=host)[0] == status, host
    finally:
        lan.stop()


def test_metrics_on_a_separate_listener_with_a_token(server_factory: object) -> None:
    mport = free_port()
    token = "t" * 24
    server: KitchServer = server_factory(  # type: ignore[operator]
        "--metrics-listen", f"127.0.0.1:{mport}", "--metrics-token", token
    )
    assert raw_request(server.http_port, "/metrics")[0] == 404
    status, headers, _ = raw_request(mport, "/metrics")
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert raw_request(mport, "/metrics", headers="Authorization: Bearer wrong\r\n")[0] == 401
    status, _, body = raw_request(mport, "/metrics", headers=f"Authorization: Bearer {token}\r\n")
    assert status == 200 and b"kitch_http_requests_total" in body
    assert raw_request(mport, "/api/v1/channels")[0] == 404


def test_metrics_token_on_the_web_port(server_factory: object) -> None:
    token = "s" * 20
    server: KitchServer = server_factory("--metrics-token", token)  # type: ignore[operator]
    assert raw_request(server.http_port, "/metrics")[0] == 401
    auth = f"Authorization: Bearer {token}\r\n"
    assert raw_request(server.http_port, "/metrics", headers=auth)[0] == 200


def test_a_pipelined_head_trickled_behind_a_slow_request_is_bounded(tmp_path: Path) -> None:
    """In process: the guard around a real uvicorn whose one route takes 5 s to answer."""

    async def slow(request: Request) -> PlainTextResponse:
        await asyncio.sleep(5)
        return PlainTextResponse("late")

    settings = Settings(data_dir=tmp_path, http_max_header_bytes=16384)
    guard = ConnectionGuard(HttpLimits.from_settings(settings))
    app = Starlette(routes=[Route("/slow", slow)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = listener_config(app, ("127.0.0.1", 0), guard, settings, lifespan="off")
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(server.serve(sockets=[sock])), daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n")
            sent = 0
            t0 = time.monotonic()
            try:
                while time.monotonic() - t0 < 4 and sent < 4 * 1024 * 1024:
                    conn.sendall(b"X-Pipelined: " + b"p" * 1010 + b"\r\n")
                    sent += 1025
            except OSError:
                pass
            assert closed_within(conn, 2.0) is not None
        assert sent < 2 * 1024 * 1024, sent
        assert not guard.open  # the connection was forgotten
    finally:
        server.should_exit = True
        thread.join(10)
        loop.close()
        sock.close()
