"""The HTTP port's listening sockets: several on one port, so a busy event loop still lets a
crowd of new connections in (libuv accepts one connection per listening socket per loop turn),
and a clear error when the port is taken."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import uvloop

from kitch.server.http import OneWrite, listen_sockets
from tests.support.server import free_port


def test_the_sockets_share_one_port_and_each_accepts() -> None:
    socks = listen_sockets("127.0.0.1", 0, 4)
    try:
        ports = {s.getsockname()[1] for s in socks}
        assert len(socks) == 4 and len(ports) == 1
        port = ports.pop()
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(64)]
        accepted = 0
        deadline = time.monotonic() + 5
        while accepted < len(clients) and time.monotonic() < deadline:
            for s in socks:
                try:
                    s.accept()[0].close()
                    accepted += 1
                except BlockingIOError:
                    pass
        for c in clients:
            c.close()
        assert accepted == len(clients)
    finally:
        for s in socks:
            s.close()


class _Busy(asyncio.Protocol):
    """Answers each line after blocking the loop for 2 ms (a loop busy with many viewers)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        time.sleep(0.002)
        self.transport.write(b"ok\n")  # type: ignore[attr-defined]


def _serve_busy(socks: list[socket.socket], stop: threading.Event) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        servers = [await loop.create_server(_Busy, sock=s) for s in socks]
        while not stop.is_set():
            await asyncio.sleep(0.05)
        for server in servers:
            server.close()

    uvloop.run(main())


async def _clients(port: int, busy: int, crowd: int) -> list[float]:
    """``busy`` clients that keep the server's loop saturated (a request every 20 ms each, the
    way viewers poll), then ``crowd`` more at once: the seconds each of those took to get its
    first answer (10 s for one that never did)."""
    joined: list[float] = []
    ready = 0

    async def one(into: list[float] | None) -> None:
        nonlocal ready
        t0 = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"hi\n")
            await reader.readline()
            if into is None:
                ready += 1
            else:
                into.append(time.monotonic() - t0)
            while True:
                await asyncio.sleep(0.02)
                writer.write(b"again\n")
                await reader.readline()
        finally:
            writer.close()

    tasks = [asyncio.create_task(one(None)) for _ in range(busy)]
    deadline = time.monotonic() + 30
    while ready < busy and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # saturated now
    tasks += [asyncio.create_task(one(joined)) for _ in range(crowd)]
    deadline = time.monotonic() + 10
    while len(joined) < crowd and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return joined + [10.0] * (crowd - len(joined))


@pytest.mark.slow
def test_a_crowd_gets_in_while_the_loop_is_busy() -> None:
    """A uvloop server kept saturated by 100 clients (turns of ~0.2 s), then 50 more connect at
    once: with one listening socket that is one accept per turn (~10 s for the crowd); with 32
    they all have their first answer within a few turns."""
    socks = listen_sockets("127.0.0.1", 0, 32)
    port = socks[0].getsockname()[1]
    stop = threading.Event()
    server = threading.Thread(target=_serve_busy, args=(socks, stop), daemon=True)
    server.start()
    try:
        time.sleep(0.2)
        joined = asyncio.run(_clients(port, 100, 50))
    finally:
        stop.set()
        server.join(5)
        for s in socks:
            s.close()
    print(
        f"crowd of 50 joined a busy server in {max(joined):.2f} s (median {sorted(joined)[25]:.2f})"
    )
    assert max(joined) < 4.0  # aim < 1-2 s; generous on a noisy box


def test_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "kitch",
                "serve",
                "--data-dir",
                str(tmp_path / "data"),
                "--http",
                f"127.0.0.1:{port}",
                "--rtmp",
                f"127.0.0.1:{free_port()}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        taken.close()
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


class _Recording(asyncio.Transport):
    """A transport that records what is written to it, call by call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[bytes]] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.calls.append([bytes(data)])

    def writelines(self, list_of_data: object) -> None:
        self.calls.append([bytes(d) for d in list_of_data])  # type: ignore[attr-defined]

    def close(self) -> None:
        self.calls.append([b"<closed>"])


def test_a_response_head_goes_out_with_its_body_in_one_write() -> None:
    real = _Recording()
    wire = OneWrite(real)
    wire.write(b"raw")  # not inside a response: straight through
    wire.hold = True  # a response starts
    wire.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert real.calls == [[b"raw"]]
    wire.write(memoryview(b"body"))
    assert real.calls[-1] == [b"HTTP/1.1 200 OK\r\n\r\n", b"body"]
    wire.hold = True  # a HEAD answer: no body follows, the guard flushes at its end
    wire.write(b"HTTP/1.1 200 OK\r\n\r\n")
    wire.flush()
    assert real.calls[-1] == [b"HTTP/1.1 200 OK\r\n\r\n"]
    wire.hold = True
    wire.write(b"head")
    wire.close()  # a held head is never lost
    assert real.calls[-2:] == [[b"head"], [b"<closed>"]]
