"""The RTMP listener's protocol callbacks in-process: a real RtmpServer on a loopback socket, a
real IngestHub on a real SQLite file and HLS registry, and a raw asyncio client speaking RTMP
with our own wire pieces. These pin the paths of `asyncio.Protocol` glue that the end-to-end
tests reach only by chance: reading paused while a publish awaits the hub, a hang-up during
that wait, and the one timer per connection (re-armed, not per read).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from kitch.config import Settings
from kitch.db import Database
from kitch.db.queries import get_channel
from kitch.db.users import create_user
from kitch.hls import HlsRegistry, HlsSettings
from kitch.rtmp.amf0 import amf0_encode
from kitch.rtmp.chunks import ChunkWriter
from kitch.server.ingest import IngestHub
from kitch.server.rtmp import RtmpServer
from tests.rtmp.client import ASC, AVCC, video_tag
from tests.rtmp.test_enhanced import VPCC, ex_video

IDLE = 1.0


@pytest.fixture
async def rtmp(db: Database, tmp_path: Path) -> AsyncIterator[RtmpServer]:
    settings = Settings(
        data_dir=tmp_path, reconnect_grace=0, rtmp_idle_timeout=IDLE, rtmp_handshake_timeout=5
    )
    hub = IngestHub(db, HlsRegistry(HlsSettings()), settings)
    server = RtmpServer(settings, hub)
    await server.listen("127.0.0.1", 0)
    yield server
    await server.close()
    await hub.stop()


def port_of(server: RtmpServer) -> int:
    sock = server.servers[0].sockets[0]
    return int(sock.getsockname()[1])


class Client:
    """A publisher over a real socket; media on chunk stream 6, message stream 1."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.chunks = ChunkWriter(4096)

    @classmethod
    async def open(cls, server: RtmpServer) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(b"\x03" + bytes(1536))
        await reader.readexactly(3073)
        writer.write(bytes(1536))
        return cls(reader, writer)

    def publish_bytes(self, key: str) -> bytes:
        w = self.chunks
        out = w.write(2, 1, 0, 0, (4096).to_bytes(4, "big"))
        out += w.write(3, 20, 0, 0, amf0_encode("connect", 1.0, {"app": "live"}))
        out += w.write(3, 20, 0, 0, amf0_encode("createStream", 2.0, None))
        out += w.write(8, 20, 1, 0, amf0_encode("publish", 3.0, None, key, "live"))
        return out

    def media_bytes(self, start: int, count: int) -> bytes:
        """AVC and AAC configs (at ``start`` 0), then ``count`` video frames 40 ms apart."""
        w = self.chunks
        out = b""
        if start == 0:
            out += w.write(6, 9, 1, 0, video_tag(1, 0, 0, AVCC))
            out += w.write(4, 8, 1, 0, b"\xaf\x00" + ASC)
        for i in range(start, start + count):
            frame = (5).to_bytes(4, "big") + b"\x65" + bytes(4)
            out += w.write(6, 9, 1, i * 40, video_tag(1 if i == 0 else 2, 1, 0, frame))
        return out

    async def closed_by_server(self, within: float) -> bool:
        try:
            async with asyncio.timeout(within):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True


async def wait_until(cond: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_input_pipelined_behind_a_publish_is_fed_after_the_lookup(
    rtmp: RtmpServer, db: Database
) -> None:
    """Connect, publish and media in one write while the hub is busy: reading pauses until the
    publish is authorised, then every packet reaches the broadcast."""
    _, key = await create_user(db, "piped", "piped@example.test", "x")
    client = await Client.open(rtmp)
    hub = rtmp.hub
    async with hub._lock:  # the hub is busy: the publish waits after its key lookup
        client.writer.write(client.publish_bytes(key) + client.media_bytes(0, 10))
        await asyncio.sleep(0.3)
        assert "piped" not in hub.live
    await wait_until(lambda: "piped" in hub.live, 3, "live")
    b = hub.live["piped"]
    await wait_until(lambda: b.stats.packets_total == 10, 3, "ten frames counted")
    client.writer.write(client.media_bytes(10, 5))
    await wait_until(lambda: b.stats.packets_total == 15, 3, "five more frames counted")
    assert b.stats.video_codec == "h264" and b.stats.audio_codec == "aac"
    client.writer.close()


@pytest.mark.parametrize("how", ["peer hangs up", "kicked"])
async def test_gone_while_the_publish_is_authorised_ends_the_broadcast(
    rtmp: RtmpServer, db: Database, how: str
) -> None:
    """A publisher that goes while its publish awaits the hub must not leave a live broadcast
    with nobody to end it: the late authorisation is followed by publisher_gone. (Reading is
    paused meanwhile, so a hang-up is seen once the hub answers; a kick aborts at once.)"""
    _, key = await create_user(db, "gone", "gone@example.test", "x")
    client = await Client.open(rtmp)
    hub = rtmp.hub
    async with hub._lock:
        client.writer.write(client.publish_bytes(key))
        await asyncio.sleep(0.3)
        if how == "kicked":
            (conn,) = rtmp.connections
            conn.kick("dropped by the test")
            await wait_until(lambda: not rtmp.connections, 3, "the connection to close")
            assert conn.lost and conn.broadcast is None
            client.writer.close()
        else:
            client.writer.close()
    await wait_until(lambda: not rtmp.connections and not rtmp.tasks, 3, "everything to finish")
    assert "gone" not in hub.live
    info = await get_channel(db, "gone")
    assert info is not None and not info.live


async def test_idle_timer_is_rearmed_while_media_flows_then_fires(
    rtmp: RtmpServer, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "kitch.rtmp")
    _, key = await create_user(db, "steady", "steady@example.test", "x")
    client = await Client.open(rtmp)
    client.writer.write(client.publish_bytes(key) + client.media_bytes(0, 1))
    await wait_until(lambda: "steady" in rtmp.hub.live, 3, "live")
    t0 = time.monotonic()
    sent = 1
    while time.monotonic() - t0 < 2.5 * IDLE:  # media for longer than the idle timeout
        client.writer.write(client.media_bytes(sent, 1))
        silent_at = time.monotonic()
        sent += 1
        await asyncio.sleep(0.2)
    assert rtmp.connections, "closed although media kept arriving"
    assert await client.closed_by_server(IDLE + 1.5), "a silent publisher was not dropped"
    took = time.monotonic() - silent_at
    print(f"dropped {took:.2f} s after its last media (idle timeout {IDLE:g} s)")
    assert IDLE - 0.1 <= took < IDLE + 1.0
    assert f"no media for {IDLE:g} s" in caplog.text
    client.writer.close()


async def test_a_codec_the_output_refuses_closes_the_publish_and_ends_the_broadcast(
    db: Database, tmp_path: Path
) -> None:
    """The MPEG-TS output cannot carry VP9: the encoder gets Rejected naming the codec, what
    it pipelined behind (an unpublish and a second publish) is ignored, the socket closes."""
    settings = Settings(data_dir=tmp_path, reconnect_grace=5, hls_format="ts")
    hub = IngestHub(db, HlsRegistry(HlsSettings(format="ts")), settings)
    rtmp = RtmpServer(settings, hub)
    await rtmp.listen("127.0.0.1", 0)
    before = REGISTRY.get_sample_value("kitch_rtmp_publish_refused_total", {"reason": "codec"})
    try:
        _, key = await create_user(db, "vp", "vp@example.test", "x")
        client = await Client.open(rtmp)
        w = client.chunks
        client.writer.write(client.publish_bytes(key))
        await wait_until(lambda: "vp" in hub.live, 3, "live")
        client.writer.write(
            w.write(6, 9, 1, 0, ex_video(1, 0, b"vp09", VPCC))
            + w.write(3, 20, 0, 0, amf0_encode("deleteStream", 4.0, None, 1.0))
            + w.write(8, 20, 1, 0, amf0_encode("publish", 5.0, None, key, "live"))
        )
        answer = b""
        async with asyncio.timeout(3):
            while chunk := await client.reader.read(65536):
                answer += chunk
        assert b"NetStream.Publish.Rejected" in answer and b"video codec vp9" in answer
        assert answer.count(b"NetStream.Publish.Start") == 1  # the second publish got nothing
        await wait_until(lambda: not rtmp.connections and not rtmp.tasks, 3, "closed")
        assert hub.live == {}
        info = await get_channel(db, "vp")
        assert info is not None and not info.live
        rows = await db.fetchall("SELECT end_reason FROM broadcast_sessions")
        assert [r["end_reason"] for r in rows] == [
            "publish refused: video codec vp9 cannot be carried by this server's MPEG-TS "
            "output; send h264 or hevc"
        ]
        after = REGISTRY.get_sample_value("kitch_rtmp_publish_refused_total", {"reason": "codec"})
        assert (after or 0) - (before or 0) == 1
        client.writer.close()
    finally:
        await rtmp.close()
        await hub.stop()
