"""The whole cluster from outside: two `kitch serve` nodes sharing a real PostgreSQL and a real
redis-server, behind the nginx caching edge shipped in deploy/nginx. A real RTMP publish to node
A plays through the edge; chat users on A and on B see each other's messages in one order; A is
killed, the publisher comes back on B, and a viewer reloading through the edge reads on after a
discontinuity (B's media sequence starts above A's); the chat history is whole afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.chat.test_chat_server import Chat
from tests.cluster.test_leases_e2e import LIGHT, Publisher
from tests.edge.nginx import EdgeNginx
from tests.support.media import Fixture
from tests.support.postgres import PostgresCluster
from tests.support.redis import RedisServer, redis_server
from tests.support.server import KitchServer, free_port

pytestmark = pytest.mark.slow

#: The default heartbeat and lease (1 s, 5 s).
LEASE = 5.0


@dataclass
class Seen:
    """One playlist the viewer got: when, the newest segment's number and discontinuity
    number, and the broadcast id its file names carry (which node's broadcast it is)."""

    at: float
    msn: int
    discontinuity: int
    broadcast: str


@dataclass
class EdgeViewer:
    """An LL-HLS viewer through the edge, in a thread: a blocking reload for the part after the
    newest listed (``_HLS_msn``/``_HLS_part``, as hls.js asks), then that part; on any error a
    plain reload half a second later, as a player retries."""

    url: str
    seen: list[Seen] = field(default_factory=list)
    parts: int = 0
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        return thread

    def _get(self, url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=15) as resp:
            data: bytes = resp.read()
            return data

    def _run(self) -> None:
        ask = ""
        while not self.stop.is_set():
            try:
                text = self._get(f"{self.url}/source/index.m3u8{ask}").decode()
                ask = self._read(text)
            except (OSError, urllib.error.URLError, ValueError) as exc:
                self.errors.append(f"{time.monotonic():.1f} {exc}")
                ask = ""
                self.stop.wait(0.5)

    def _read(self, text: str) -> str:
        msn = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))  # type: ignore[union-attr]
        found = re.search(r"#EXT-X-DISCONTINUITY-SEQUENCE:(\d+)", text)
        disc = int(found.group(1)) if found else 0
        body = text.split("#EXTINF")
        if len(body) < 2:
            raise ValueError("no complete segment listed yet")
        msn += len(body) - 2  # the newest complete segment
        disc += text.count("#EXT-X-DISCONTINUITY\n")
        names = re.findall(r'URI="([0-9a-f]+)-p(\d+)\.m4s"', text)
        if not names:
            raise ValueError("no parts listed")
        self.seen.append(Seen(time.monotonic(), msn, disc, names[-1][0]))
        tail = text.rsplit("#EXTINF", 1)[-1]  # the parts after the newest complete segment
        in_progress = re.findall(r"#EXT-X-PART:[^\n]*", tail)
        part = f"{names[-1][0]}-p{names[-1][1]}.m4s"
        if self._get(f"{self.url}/source/{part}"):
            self.parts += 1
        return f"?_HLS_msn={msn + 1}&_HLS_part={len(in_progress)}"


@pytest.fixture
async def database_for_nodes(postgres: PostgresCluster) -> AsyncIterator[str]:
    name = await postgres.create_database()
    yield postgres.url(name)
    await postgres.drop_database(name)


def start_node(tmp: Path, name: str, database: str, redis: RedisServer) -> KitchServer:
    port = free_port()
    return KitchServer(
        data_dir=tmp / f"{name}-data",  # their own data dirs: only the database is shared
        log_path=tmp / f"{name}.log",
        http_port=port,
        extra_args=[
            "--database", database, "--redis", redis.url, "--node-id", name,
            "--node-url", f"http://127.0.0.1:{port}", *LIGHT,
        ],
    ).start()  # fmt: skip


async def said(chat: Chat, count: int) -> list[tuple[int, str]]:
    out = []
    for _ in range(count):
        m = await chat.expect("message", timeout=15)
        out.append((int(m["id"]), str(m["text"])))
    return out


async def test_two_nodes_behind_the_edge_survive_the_loss_of_one(
    tmp_path: Path, database_for_nodes: str, av_fixture: Fixture
) -> None:
    nodes: list[KitchServer] = []
    publishers: list[Publisher] = []
    viewer: EdgeViewer | None = None
    with redis_server() as redis, contextlib.ExitStack() as stack:
        try:
            a = start_node(tmp_path, "a", database_for_nodes, redis)
            nodes.append(a)
            b = start_node(tmp_path, "b", database_for_nodes, redis)
            nodes.append(b)
            edge = stack.enter_context(
                EdgeNginx(origins=[f"127.0.0.1:{a.http_port}", f"127.0.0.1:{b.http_port}"])
            )
            streamer = a.create_account("alice")
            fan = b.create_account("bobby")
            publishers.append(Publisher(a.rtmp_url(streamer.stream_key), av_fixture))
            await asyncio.to_thread(
                a.wait_for, lambda: a.channel("alice")["live"], 15, "alice live on A"
            )

            # the stream plays through the edge, whichever node the edge asks
            viewer = EdgeViewer(f"{edge.base}/hls/alice")
            viewer.start()
            deadline = time.monotonic() + 20
            while viewer.parts < 5:
                assert time.monotonic() < deadline, viewer.errors[-5:]
                await asyncio.sleep(0.2)
            on_a = viewer.seen[-1].broadcast

            # chat: the streamer on A and a fan on B, each heard by both in one order
            talk_a = await Chat.open(a, "alice", streamer.access_token)
            talk_b = await Chat.open(b, "alice", fan.access_token)
            for i in range(5):
                await talk_a.say(f"a{i}")
                await talk_b.say(f"b{i}")
            heard_a, heard_b = await said(talk_a, 10), await said(talk_b, 10)
            assert heard_a == heard_b
            assert sorted(t for _, t in heard_a) == sorted(
                [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)]
            )
            before = len(viewer.seen)

            # A dies; the encoder retries on B until B takes the channel (the lease ran out)
            a.stop(signal.SIGKILL)
            died = time.monotonic()
            publishers[0].stop()
            while not any(s.broadcast != on_a for s in viewer.seen[before:]):
                if publishers[-1] is publishers[0] or not publishers[-1].thread.is_alive():
                    publishers.append(Publisher(b.rtmp_url(streamer.stream_key), av_fixture))
                assert time.monotonic() - died < LEASE + 20, (b.log()[-3000:], viewer.errors)
                await asyncio.sleep(0.5)
            moved = time.monotonic() - died
            # the viewer reads on from B: parts keep coming, B's numbering starts above A's,
            # and B's broadcast comes after a discontinuity
            parts = viewer.parts
            deadline = time.monotonic() + 15
            while viewer.parts < parts + 5:
                assert time.monotonic() < deadline, viewer.errors[-5:]
                await asyncio.sleep(0.2)
            # (on A's side a plain reload after a failed request may get a playlist the edge
            # cached before A died, up to its max-age old, and walk A's cached parts again:
            # ordinary CDN behaviour. What must hold is the handover: once B's broadcast shows,
            # A's never does again, and every segment B lists is newer than any A listed.)
            on_b = next(i for i, s in enumerate(viewer.seen) if s.broadcast != on_a)
            from_a, from_b = viewer.seen[:on_b], viewer.seen[on_b:]
            assert all(s.broadcast != on_a for s in from_b), (viewer.seen, viewer.errors)
            newest_a = max(s.msn for s in from_a)
            assert min(s.msn for s in from_b) > newest_a, viewer.seen
            last_a, first_b = from_a[-1], from_b[0]
            assert first_b.discontinuity > last_a.discontinuity, viewer.seen
            gap = first_b.at - last_a.at
            print(
                f"A killed: B took the channel and the viewer read on from it after {moved:.1f} s "
                f"(playlist gap {gap:.1f} s, {len(viewer.errors)} failed requests meanwhile); "
                f"segment {newest_a} on A -> {first_b.msn} on B, discontinuity "
                f"{last_a.discontinuity} -> {first_b.discontinuity}"
            )

            # chat goes on through B; the history B gives a newcomer is whole and in order
            await talk_a.close()
            talk_a = await Chat.open(b, "alice", streamer.access_token)
            await talk_a.say("after")
            assert [t for _, t in await said(talk_b, 1)] == ["after"]
            late = await Chat.open(b, "alice")
            history = [(int(m["id"]), str(m["text"])) for m in late.welcome["history"]]
            assert history[-11:] == [*heard_a, (history[-1][0], "after")]
            for chat in (talk_a, talk_b, late):
                await chat.close()
        finally:
            if viewer is not None:
                viewer.stop.set()
            for pub in publishers:
                pub.stop()
            for node in nodes:
                if node.proc is not None and node.proc.poll() is None:
                    node.stop()
