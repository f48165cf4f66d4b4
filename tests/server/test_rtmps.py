"""RTMPS: `kitch serve --rtmps` with a self-signed certificate made by the openssl CLI; PyAV's
``rtmps://`` client (FFmpeg's TLS, which does not verify by default) publishes to it."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import av
import pytest

from tests.server.conftest import BackgroundPublisher, closed_within
from tests.support.media import Fixture, publish_pyav
from tests.support.server import KitchServer, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI"),
]


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_rtmps_publish(server_factory: object, tmp_path: Path, av_fixture: Fixture) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    server: KitchServer = server_factory(  # type: ignore[operator]
        "--rtmps", f"127.0.0.1:{port}", "--tls-cert", str(cert), "--tls-key", str(key),
        "--rtmp-handshake-timeout", "3",
    )  # fmt: skip
    acct = server.create_account("secure")
    url = f"rtmps://127.0.0.1:{port}/live/{acct.stream_key}"
    pub = BackgroundPublisher(url, av_fixture)
    try:
        server.wait_for(lambda: server.channel("secure")["live"], 15, "live over RTMPS")
        server.wait_for(
            lambda: b"#EXTINF" in server.get("/hls/secure/source/index.m3u8"), 15, "segments"
        )
    finally:
        pub.stop()
    assert pub.error is None, pub.error

    # The TLS port speaks only TLS: a plain RTMP client gets no RTMP answer.
    with pytest.raises((av.error.FFmpegError, OSError)):
        publish_pyav(f"rtmp://127.0.0.1:{port}/live/{acct.stream_key}", av_fixture)

    # A refused publish over TLS: the encoder gets its error and a TLS close, the server logs it.
    with pytest.raises((av.error.FFmpegError, OSError)):
        publish_pyav(f"rtmps://127.0.0.1:{port}/live/not-a-key", av_fixture)
    server.wait_for(lambda: "publish refused" in server.log(), 5, "the refusal logged")
    assert "Traceback" not in server.log()

    # A TLS peer that never completes its handshake is dropped within the handshake timeout.
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)
        assert sock.recv(1) == b""
    took = time.monotonic() - t0
    print(f"stalled TLS handshake dropped after {took:.2f} s")
    assert took < 6

    # Certificates are really served: a verifying client sees our self-signed cert.
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_unfinished_tls_handshakes_count_against_the_caps_from_accept(
    server_factory: object, tmp_path: Path, av_fixture: Fixture
) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    server: KitchServer = server_factory(  # type: ignore[operator]
        "--rtmps", f"127.0.0.1:{port}", "--tls-cert", str(cert), "--tls-key", str(key),
        "--rtmp-handshake-timeout", "3", "--rtmp-max-connections-per-ip", "4",
    )  # fmt: skip
    acct = server.create_account("capped")
    # Four TLS connections that never send a ClientHello (and one that stops half-way) fill
    # this address's cap at once: accept is what counts, not the end of the handshake.
    stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's first bytes
    stalled.append(half)
    t0 = time.monotonic()
    try:
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", port)) as extra:
            assert closed_within(extra, 1.0) is not None, "a fifth TLS connection was not refused"
        with socket.create_connection(("127.0.0.1", server.rtmp_port)) as plain:
            assert closed_within(plain, 1.0) is not None, (
                "the cap is per address across RTMP and RTMPS"
            )
        assert "refused: too many connections from this address" in server.log()
        # The stalled ones are closed by the handshake timeout ...
        for sock in stalled:
            assert closed_within(sock, 6.0) is not None
        assert time.monotonic() - t0 < 6.0
    finally:
        for sock in stalled:
            sock.close()
    # ... and then the address may publish again, over RTMPS.
    url = f"rtmps://127.0.0.1:{port}/live/{acct.stream_key}"
    pub = BackgroundPublisher(url, av_fixture)
    try:
        server.wait_for(lambda: server.channel("capped")["live"], 15, "live over RTMPS")
    finally:
        pub.stop()
    assert pub.error is None, pub.error
    assert "Traceback" not in server.log()
