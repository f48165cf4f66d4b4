"""Connection limits of the RTMP listener, against a real server."""

from __future__ import annotations

import socket
import time

import pytest

from kitch.rtmp.amf0 import amf0_encode
from kitch.rtmp.chunks import ChunkWriter
from tests.support.server import KitchServer

pytestmark = pytest.mark.slow


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes ``sock`` (EOF or reset) within ``within`` seconds; what it
    sends meanwhile is read and dropped."""
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if sock.recv(65536) == b"":
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
    return False


def test_per_address_cap_and_handshake_timeout(server_factory: object) -> None:
    srv: KitchServer = server_factory(  # type: ignore[operator]
        "--rtmp-max-connections-per-ip", "2", "--rtmp-handshake-timeout", "2"
    )
    time.sleep(0.5)  # let the server see the start-up probe's connection close
    first = socket.create_connection(("127.0.0.1", srv.rtmp_port))
    t0 = time.monotonic()
    second = socket.create_connection(("127.0.0.1", srv.rtmp_port))
    time.sleep(0.2)
    third = socket.create_connection(("127.0.0.1", srv.rtmp_port))
    try:
        assert closed_by_server(third, 2), "a third connection from one address must be refused"
        assert "too many connections from this address" in srv.log()
        # The first two are silent: both go at the handshake timeout (2 s), not well before.
        early = t0 + 1.5 - time.monotonic()
        if early > 0:
            assert not closed_by_server(first, early), "closed before the handshake timeout"
        assert closed_by_server(first, 4) and closed_by_server(second, 1)
        took = time.monotonic() - t0
        print(f"silent connections closed {took:.2f} s after connecting (timeout 2 s)")
        assert took < 4
        assert "no publish within the handshake timeout" in srv.log()
        # Below the cap again: a new connection is served (it gets an S0+S1 answer).
        fresh = socket.create_connection(("127.0.0.1", srv.rtmp_port))
        fresh.sendall(b"\x03" + bytes(1536))
        fresh.settimeout(3)
        assert fresh.recv(1) == b"\x03"
        fresh.close()
    finally:
        for s in (first, second, third):
            s.close()


def test_unpublish_then_close_is_not_a_handshake_timeout(server_factory: object) -> None:
    """An encoder that stops (FCUnpublish + deleteStream) after streaming longer than the
    handshake timeout and then closes is logged as closed by the peer, not timed out."""
    srv: KitchServer = server_factory(  # type: ignore[operator]
        "--rtmp-handshake-timeout", "1", "--rtmp-idle-timeout", "10"
    )  # fmt: skip
    acct = srv.create_account("stopper")
    writer = ChunkWriter(128)
    sock = socket.create_connection(("127.0.0.1", srv.rtmp_port))
    try:
        port = sock.getsockname()[1]
        sock.sendall(b"\x03" + bytes(1536))
        got = 0
        while got < 3073:
            got += len(sock.recv(65536))
        sock.sendall(bytes(1536))
        sock.sendall(writer.write(3, 20, 0, 0, amf0_encode("connect", 1.0, {"app": "live"})))
        sock.sendall(writer.write(3, 20, 0, 0, amf0_encode("createStream", 2.0, None)))
        publish = amf0_encode("publish", 3.0, None, acct.stream_key, "live")
        sock.sendall(writer.write(8, 20, 1, 0, publish))
        srv.wait_for(lambda: srv.channel("stopper")["live"], 5, "live")
        time.sleep(1.5)  # streaming for longer than the handshake timeout
        sock.sendall(writer.write(3, 20, 0, 0, amf0_encode("FCUnpublish", 4.0, None, "k")))
        sock.sendall(writer.write(3, 20, 0, 0, amf0_encode("deleteStream", 5.0, None, 1.0)))
        assert not closed_by_server(sock, 0.5), "dropped right after unpublishing"
    finally:
        sock.close()
    srv.wait_for(
        lambda: f"rtmp 127.0.0.1:{port} channel=stopper: closed (" in srv.log(), 5, "close"
    )
    line = next(
        x for x in srv.log().splitlines() if f"127.0.0.1:{port} channel=stopper: closed" in x
    )
    print(line)
    assert "closed by peer" in line
