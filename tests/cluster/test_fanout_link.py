"""A node's link to a real redis-server, in process: payloads both ways, and a Redis that stops
answering without closing its sockets (a network partition, here SIGSTOP) is noticed."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kitch.cluster import fanout as fanout_module
from kitch.cluster.fanout import Fanout
from tests.support.redis import RedisServer, redis_server


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


async def until(predicate: object, timeout: float) -> float:
    t0 = time.monotonic()
    while not predicate():  # type: ignore[operator]
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


async def test_payloads_counts_and_a_silent_redis(
    redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout_module, "PING_EVERY", 0.2)
    monkeypatch.setattr(fanout_module, "VIEWERS_EVERY", 0.1)
    a, b = Fanout(redis.url), Fanout(redis.url)
    got: dict[str, list[bytes]] = {"a": [], "b": []}
    a.on("chat", got["a"].append)
    b.on("chat", got["b"].append)
    a.local_viewers = lambda: {"room": 2}
    b.local_viewers = lambda: {"room": 3, "other": 1}
    ups: list[str] = []

    async def up() -> None:
        ups.append("a")

    a.up_hooks.append(up)
    downs: list[str] = []
    a.down_hooks.append(lambda: downs.append("a"))
    await a.start()
    await b.start()
    try:
        await until(lambda: a.connected and b.connected, 10)
        assert a.tag != b.tag and ups == ["a"]
        for i in range(20):
            assert a.publish("chat", b"p%d" % i)
        await until(lambda: len(got["b"]) == 20, 5)
        assert got["a"] == got["b"] == [b"p%d" % i for i in range(20)]  # the sender's too
        await until(lambda: a.remote_viewers == {"room": 3, "other": 1}, 5)
        await until(lambda: b.remote_viewers == {"room": 2}, 5)

        assert redis.proc is not None
        redis.proc.send_signal(signal.SIGSTOP)  # the sockets stay open; nothing answers
        try:
            took = await until(lambda: not a.connected, 5)
            assert took < 2.0 and downs == ["a"]
            assert not a.publish("chat", b"alone")  # the caller delivers it itself
            assert a.remote_viewers == {}
        finally:
            redis.proc.send_signal(signal.SIGCONT)
        await until(lambda: a.connected and b.connected, 15)
        assert ups == ["a", "a"]
        assert a.publish("chat", b"back")
        await until(lambda: got["b"][-1:] == [b"back"], 5)
    finally:
        await a.stop()
        await b.stop()


async def test_a_redis_with_a_password(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, password="s3cret-pass").start()
    node = Fanout(server.url)
    got: list[bytes] = []
    node.on("events", got.append)
    await node.start()
    try:
        await until(lambda: node.connected, 10)
        assert node.publish("events", b"hello")
        await until(lambda: got == [b"hello"], 5)
        assert "s3cret" not in node.shown
    finally:
        await node.stop()
        server.stop()
