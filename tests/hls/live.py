"""A real uvicorn on loopback serving /hls from a registry, and a paced packet feeder."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import uvicorn

from kitch.api.hls import HlsApp
from kitch.hls import HlsRegistry, LiveStream
from kitch.media import MediaPacket


@dataclass
class LiveServer:
    registry: HlsRegistry
    port: int
    loop: asyncio.AbstractEventLoop
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/hls"

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the server's event loop (where the ingest would feed the muxer)."""
        self.loop.call_soon_threadsafe(fn)

    def call_wait(self, fn: Callable[[], object]) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self.loop.call_soon_threadsafe(run)
        done.wait(5)


@contextlib.contextmanager
def live_server(registry: HlsRegistry) -> Iterator[LiveServer]:
    app = HlsApp(registry)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", loop="asyncio")
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.serve(sockets=[sock]))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield LiveServer(registry, port, loop, server, thread)
    finally:
        server.should_exit = True
        thread.join(10)
        loop.close()
        sock.close()


def shifted(packets: list[MediaPacket], loops: int, seconds: float) -> list[MediaPacket]:
    """The packets repeated ``loops`` times, timestamps continuing (configs only once)."""
    out = [p for p in packets if p.is_config]
    media = [p for p in packets if not p.is_config]
    for i in range(loops):
        shift = round(i * seconds * 1000)
        out.extend(p._replace(dts=p.dts + shift, pts=p.pts + shift) for p in media)
    return out


@dataclass
class Feeder:
    """Feeds packets into a stream on the server loop, paced by their DTS from ``start``."""

    srv: LiveServer
    stream: LiveStream
    packets: list[MediaPacket | None]  # None: the publisher reconnects (timestamps restart)
    realtime_from_ms: int = 0  # packets before this DTS go in at once
    end: bool = True
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        start = time.monotonic() - self.realtime_from_ms / 1000
        try:
            for p in self.packets:
                if self.stop.is_set():
                    return
                if p is None:
                    self.srv.call(lambda: self.stream.discontinuity(time.time()))
                    start = time.monotonic() + 0.05
                    continue
                delay = start + max(p.dts, 0) / 1000 - time.monotonic()
                if delay > 0 and p.dts >= self.realtime_from_ms:
                    time.sleep(delay)
                self.srv.call(lambda p=p: self.stream.feed(p, time.time()))
            if self.end:
                self.srv.call_wait(lambda: self.stream.end(time.time()))
        finally:
            self.done.set()

    def start(self) -> threading.Thread:
        t = threading.Thread(target=self.run, daemon=True)
        t.start()
        return t
