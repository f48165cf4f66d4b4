"""Hostile RTMP peers for the benchmarks: they keep reconnecting as the server closes them.

Three kinds, one third each, every socket from its own loopback address (127.0.1.x) so the
per-address connection cap does not turn them away before they cost anything:

* ``silence``: connect, then send nothing (closed by the handshake timeout, default 10 s);
* ``garbage``: a valid handshake, then 4 KiB of random bytes every 100 ms;
* ``trickle``: a valid handshake, Set Chunk Size 4096, then the header of a 3 MiB video
  message (under the default 4 MiB cap, so the server must hold it) trickled 4 KiB per 50 ms.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import struct
import threading
import time
from dataclasses import dataclass, field

KINDS = ("silence", "garbage", "trickle")
_STEP = 0.05


@dataclass
class KindStats:
    connects: int = 0
    lifetimes: list[float] = field(default_factory=list)  # seconds until the server closed us

    def describe(self, kind: str) -> str:
        if not self.lifetimes:
            return f"{kind}: {self.connects} connects, none closed by the server yet"
        life = sorted(self.lifetimes)
        return (
            f"{kind}: {self.connects} connects, {len(life)} closed by the server after "
            f"median {statistics.median(life):.2f} s, max {life[-1]:.2f} s"
        )


class HostilePeers:
    """Run ``count`` hostile sockets against 127.0.0.1:``port`` in a background thread."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.stats = {kind: KindStats() for kind in KINDS}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hostile", daemon=True)

    def __enter__(self) -> HostilePeers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def report(self) -> list[str]:
        return [self.stats[kind].describe(kind) for kind in KINDS]

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        tasks = [
            asyncio.create_task(self._peer(KINDS[i % 3], f"127.0.1.{i + 1}"))
            for i in range(self.count)
        ]
        while not self._stop.is_set():
            await asyncio.sleep(_STEP)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _peer(self, kind: str, addr: str) -> None:
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", self.port, local_addr=(addr, 0)
                )
            except OSError:
                await asyncio.sleep(0.2)
                continue
            self.stats[kind].connects += 1
            t0 = time.monotonic()
            closed = False
            try:
                closed = await self._behave(kind, reader, writer)
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                closed = True
            finally:
                writer.transport.abort()
            if closed:
                self.stats[kind].lifetimes.append(time.monotonic() - t0)
            await asyncio.sleep(0.1)

    async def _closed_within(self, reader: asyncio.StreamReader, seconds: float) -> bool:
        """Wait up to ``seconds`` for the server to close; True when it did."""
        try:
            data = await asyncio.wait_for(reader.read(65536), seconds)
        except TimeoutError:
            return False
        return not data

    async def _behave(
        self, kind: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Misbehave until the server closes the socket (True) or we are told to stop."""
        if kind != "silence":
            writer.write(b"\x03" + bytes(8) + os.urandom(1528))
            await reader.readexactly(3073)
            writer.write(bytes(1536))
            if kind == "trickle":
                writer.write(b"\x02" + bytes(3) + b"\x00\x00\x04\x01" + bytes(4))  # Set Chunk Size
                writer.write(struct.pack(">I", 4096))
                length = 3 << 20
                writer.write(
                    b"\x06" + bytes(3) + length.to_bytes(3, "big") + b"\x09\x01\x00\x00\x00"
                )
        sent = 0
        while not self._stop.is_set():
            if kind == "garbage":
                writer.write(os.urandom(4096))
            elif kind == "trickle":
                if sent:
                    writer.write(b"\xc6")
                writer.write(bytes(4096))
                sent += 4096
            await writer.drain()
            wait = 0.1 if kind == "garbage" else _STEP if kind == "trickle" else 0.25
            if await self._closed_within(reader, wait):
                return True
        return False
