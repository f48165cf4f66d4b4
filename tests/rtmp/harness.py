"""A tiny threaded TCP server that shuttles bytes between real sockets and RtmpServerSession.

It stands in for the lead's asyncio listener so real clients (PyAV, ffmpeg, GStreamer) can be
tested against the sans-IO session alone.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

from kitch.media import MediaPacket
from kitch.rtmp import (
    Event,
    MediaReceived,
    PublishRequested,
    RtmpLimits,
    RtmpProtocolError,
    RtmpServerSession,
)


@dataclass
class Connection:
    events: list[Event] = field(default_factory=list)
    error: str | None = None
    captured: bytearray = field(default_factory=bytearray)
    closed: threading.Event = field(default_factory=threading.Event)
    session: RtmpServerSession | None = None

    def packets(self, kind: str | None = None) -> list[MediaPacket]:
        return [
            e.packet
            for e in self.events
            if isinstance(e, MediaReceived) and (kind is None or e.packet.kind == kind)
        ]


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        owner = self.server.owner
        conn = Connection()
        owner.connections.append(conn)
        sock: socket.socket = self.request
        sock.settimeout(30)
        session = RtmpServerSession(owner.limits, time.monotonic())
        conn.session = session
        try:
            while True:
                try:
                    data = sock.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                if owner.capture:
                    conn.captured += data
                try:
                    session.receive_data(data, time.monotonic())
                except RtmpProtocolError as exc:
                    conn.error = str(exc)
                    break
                while (event := session.next_event()) is not None:
                    conn.events.append(event)
                    if isinstance(event, PublishRequested):
                        if owner.reject is not None:
                            session.reject_publish(*owner.reject)
                        else:
                            session.accept_publish()
                out = session.data_to_send()
                if out:
                    sock.sendall(out)
                if session.wants_close:
                    break
        finally:
            sock.close()
            conn.closed.set()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: RtmpTestServer


class RtmpTestServer:
    """``with RtmpTestServer() as srv: publish(srv.url("key"))``; ``reject=(code, text)``
    refuses every publish; ``capture`` keeps the bytes each client sent."""

    def __init__(
        self,
        *,
        reject: tuple[str, str] | None = None,
        limits: RtmpLimits | None = None,
        capture: bool = False,
    ) -> None:
        self.reject = reject
        self.limits = limits or RtmpLimits()
        self.capture = capture
        self.connections: list[Connection] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{key}"

    def wait_closed(self, timeout: float = 10.0) -> Connection:
        deadline = time.monotonic() + timeout
        while not self.connections and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.connections, "no client connected"
        conn = self.connections[-1]
        assert conn.closed.wait(max(0.0, deadline - time.monotonic())), "connection still open"
        return conn

    def __enter__(self) -> RtmpTestServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
