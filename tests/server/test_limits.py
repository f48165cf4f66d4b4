"""Connection limits of the RTMP listener, against a real server."""

from __future__ import annotations

import socket
import time

import pytest

from tests.support.server import KitchServer

pytestmark = pytest.mark.slow


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes ``sock`` (EOF or reset) within ``within`` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
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
        # The first two are silent: both go at the handshake timeout (2 s), not before (the
        # server may have accepted them a little after the client saw the connection).
        early = t0 + 2.0 - time.monotonic()
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
