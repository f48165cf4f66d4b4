"""Chat fan-out: one room, many receivers, a few senders; Kitch against bare broadcast servers.

Kitch: a real ``kitch serve``; a broadcaster and moderators (so the per-user rate limit does
not cap them) send ``say`` frames whose text carries the send time; anonymous receivers on
real sockets (spread over 127.0.2.x source addresses, under the per-address socket cap) count
the deliveries (msgpack maps: a WebSocket message may carry several) and their latency.
Baselines, each a bare ``websockets`` server in its own process, measured in the same run with
the same clients and message rate:

- "bare websockets broadcast": every ``say`` is answered by broadcasting the same kind of
  msgpack ``message`` frame to every socket at once with ``websockets.broadcast``;
- "bare websockets, coalesced": the same frames, batched as Kitch batches them (the frames of
  a window back to back in one WebSocket message: at once when the last batch is older than
  ``kitch.api.chat.BATCH_WINDOW``, else when the window ends).

The receivers run in a separate process (asyncio, the ``websockets`` client, no compression
on either side); their CPU is printed too. Memory per idle connection: the server's RSS before
and after the receivers connect, divided by their number.

Several nodes (``--nodes N --redis [URL]``): N ``kitch serve`` processes sharing one data
directory and one Redis (a redis-server the script starts, unless a URL is given), the
receivers and the senders spread over the nodes in turn, every message crossing Redis; it is
measured against one node alone with the same clients in the same invocation (no bare
baselines then), and printed as ratios: ``N nodes / 1 node``.

    python benchmarks/bench_chat.py [--quick] [--receivers N] [--rate MSG_PER_S] [--seconds S]
                                    [--nodes N --redis [URL]]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import msgpack
from _common import (
    Kitch,
    cpu_seconds,
    free_port,
    machine,
    ratio,
    rss_bytes,
    stop_process,
    verdict,
    wait_port,
)
from websockets.asyncio.client import ClientConnection, connect

from kitch.api.chat import BATCH_WINDOW

AIM_DELIVERIES = 100_000.0
AIM_RATIO = 0.8
AIM_P99_MS = 100.0
PER_ADDRESS = 16  # receivers per 127.0.2.x source address (the server allows 20 per address)


# -- the bare baseline servers (`bench_chat.py --bare-server PORT [--window SECONDS]`) ----------


def bare_server(port: int, window: float | None) -> None:
    """Broadcast each message at once, or (with ``window``) in batches as Kitch does."""
    from websockets.asyncio.server import ServerConnection, broadcast, serve
    from websockets.exceptions import ConnectionClosed

    next_id = 0
    batch: list[bytes] = []
    last_flush = float("-inf")
    timer: asyncio.Handle | None = None

    def flush(server: Any) -> None:
        nonlocal last_flush, timer
        timer = None
        data = b"".join(batch)
        batch.clear()
        last_flush = asyncio.get_running_loop().time()
        broadcast(server.connections, data)

    def send(server: Any, data: bytes) -> None:
        nonlocal timer
        if window is None:
            broadcast(server.connections, data)
            return
        batch.append(data)
        if timer is None:
            loop = asyncio.get_running_loop()
            due = last_flush + window
            if due <= loop.time():
                timer = loop.call_soon(flush, server)
            else:
                timer = loop.call_at(due, flush, server)

    async def handler(ws: ServerConnection) -> None:
        nonlocal next_id
        with contextlib.suppress(ConnectionClosed):
            await _serve_one(ws)

    async def _serve_one(ws: ServerConnection) -> None:
        nonlocal next_id
        async for data in ws:
            frame = msgpack.unpackb(data)
            if isinstance(frame, dict) and frame.get("type") == "say":
                next_id += 1
                message = {
                    "type": "message",
                    "id": next_id,
                    "user": {"name": "sender", "display_name": "sender", "color": None},
                    "text": frame["text"],
                    "ts": time.time(),
                }
                send(ws.server, msgpack.packb(message))

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port, compression=None) as server:
            await server.serve_forever()

    asyncio.run(main())


# -- the receivers (a separate process) ---------------------------------------------------------


def receivers_process(urls: list[str], count: int, pipe: Connection) -> None:
    asyncio.run(_receivers(urls, count, pipe))


async def _receivers(urls: list[str], count: int, pipe: Connection) -> None:
    """``count`` receivers, receiver ``i`` on ``urls[i % len(urls)]`` (one node each)."""
    got = [0] * count
    messages = [0]  # WebSocket messages, each one or more frames
    latencies: list[float] = []
    last = [0.0]

    async def one(i: int, ready: asyncio.Event) -> None:
        host = f"127.0.2.{i // PER_ADDRESS + 1}"
        async with connect(
            urls[i % len(urls)],
            compression=None,
            max_size=1 << 16,
            local_addr=(host, 0),
            max_queue=None,
        ) as ws:
            ready.set()
            lat = latencies.append
            frames = msgpack.Unpacker(raw=False)  # a message holds one or more maps
            async for data in ws:
                messages[0] += 1
                frames.feed(data)
                now = time.time()
                for frame in frames:
                    if frame.get("type") != "message":
                        continue
                    got[i] += 1
                    lat(now - float(frame["text"].split()[1]))
                    last[0] = now

    loop = asyncio.get_running_loop()
    readies = [asyncio.Event() for _ in range(count)]
    tasks = []
    for i in range(count):  # in waves, not to overflow the listen backlog
        tasks.append(asyncio.create_task(one(i, readies[i])))
        if i % 50 == 49:
            await asyncio.gather(*(r.wait() for r in readies[i - 49 : i + 1]))
    await asyncio.gather(*(r.wait() for r in readies))
    await asyncio.sleep(1.0)  # the welcome frames are in
    pipe.send("ready")
    cpu0 = time.process_time()
    messages[0] = 0
    expected = await loop.run_in_executor(None, pipe.recv)  # messages sent, after the run
    deadline = time.time() + 10
    while time.time() < deadline and sum(got) < expected * count:
        before = sum(got)
        await asyncio.sleep(0.5)
        if sum(got) == before and time.time() - last[0] > 2.0:
            break
    cpu = time.process_time() - cpu0
    latencies.sort()

    def p(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0

    open_ = sum(1 for t in tasks if not t.done())
    pipe.send(
        {
            "delivered": sum(got),
            "messages": messages[0],
            "last": last[0],
            "p50": p(0.5),
            "p99": p(0.99),
            "max": p(1.0),
            "cpu": cpu,
            "open": open_,
        }
    )
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# -- a run --------------------------------------------------------------------------------------


@dataclass
class Result:
    sent: int
    delivered: int
    expected: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu: float
    client_cpu: float
    rss_per_conn: float
    open_after: int
    messages: int

    @property
    def per_message(self) -> float:
        """Frames per WebSocket message."""
        return self.delivered / self.messages if self.messages else 0.0

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0


async def _drain(ws: ClientConnection) -> None:
    async for _ in ws:
        pass


async def _send(
    urls: list[str], tokens: list[str | None], rate: float, seconds: float
) -> tuple[int, float]:
    """Send ``rate`` messages/s for ``seconds`` round-robin over one socket per sender."""
    socks = []
    for i, (url, token) in enumerate(zip(urls, tokens, strict=True)):
        ws = await connect(url, compression=None, local_addr=(f"127.0.3.{i + 1}", 0))
        if token is not None:
            await ws.send(msgpack.packb({"type": "auth", "token": token}))
        socks.append(ws)
    drains = [asyncio.create_task(_drain(ws)) for ws in socks]
    await asyncio.sleep(0.5)
    total = int(rate * seconds)
    t0 = time.time()
    for k in range(total):
        target = t0 + k / rate
        delay = target - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        text = f"m{k} {time.time():.6f}"
        await socks[k % len(socks)].send(
            msgpack.packb({"type": "say", "text": text, "nonce": str(k)})
        )
    await asyncio.sleep(0.2)
    for d in drains:
        d.cancel()
    for ws in socks:
        await ws.close()
    return total, t0


def run(
    name: str,
    pid: int | list[int],
    recv_url: str | list[str],
    send_urls: list[str],
    tokens: list[str | None],
    receivers: int,
    rate: float,
    seconds: float,
) -> Result:
    """One measured run; ``pid`` and ``recv_url`` name every node when several serve."""
    pids = pid if isinstance(pid, list) else [pid]
    recv_urls = recv_url if isinstance(recv_url, list) else [recv_url]
    rss0 = sum(rss_bytes(p) for p in pids)
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(
        target=receivers_process, args=(recv_urls, receivers, child), daemon=True
    )
    proc.start()
    if not parent.poll(120):
        proc.kill()
        raise RuntimeError(f"{name}: the receivers did not connect")
    assert parent.recv() == "ready"
    rss1 = sum(rss_bytes(p) for p in pids)
    cpu0 = sum(cpu_seconds(p) for p in pids)
    sent, t0 = asyncio.run(_send(send_urls, tokens, rate, seconds))
    parent.send(sent)
    stats: dict[str, Any] = parent.recv()
    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
    proc.join(10)
    if proc.is_alive():
        proc.kill()
    return Result(
        sent=sent,
        delivered=stats["delivered"],
        expected=sent * receivers,
        seconds=max(stats["last"] - t0, 1e-9),
        p50_ms=stats["p50"] * 1000,
        p99_ms=stats["p99"] * 1000,
        max_ms=stats["max"] * 1000,
        server_cpu=cpu,
        client_cpu=stats["cpu"],
        rss_per_conn=(rss1 - rss0) / receivers,
        open_after=stats["open"],
        messages=stats["messages"],
    )


def show(name: str, r: Result) -> None:
    print(
        f"{name}: {r.rate:,.0f} deliveries/s ({r.delivered:,} of {r.expected:,} "
        f"over {r.seconds:.2f} s, {r.sent} messages), latency p50 {r.p50_ms:.1f} ms "
        f"p99 {r.p99_ms:.1f} ms max {r.max_ms:.1f} ms, server CPU {r.server_cpu:.2f} s, "
        f"receivers' CPU {r.client_cpu:.2f} s, "
        f"RSS per idle connection {r.rss_per_conn / 1024:.1f} KiB, "
        f"{r.per_message:.2f} frames per WebSocket message, {r.open_after} sockets still open"
    )


def bare(name: str, window: float | None, *run_args: Any) -> Result:
    port = free_port()
    args = [sys.executable, __file__, "--bare-server", str(port)]
    if window is not None:
        args += ["--window", str(window)]
    server = subprocess.Popen(args)
    try:
        wait_port(port)
        url = f"ws://127.0.0.1:{port}/"
        receivers, rate, seconds, n_senders = run_args
        found = run(
            name, server.pid, url, [url] * n_senders, [None] * n_senders, receivers, rate, seconds
        )
    finally:
        stop_process(server)
    show(name, found)
    return found


# -- several nodes through Redis ----------------------------------------------------------------


@contextlib.contextmanager
def redis_url(given: str | None) -> Iterator[str]:
    """``given``, or a redis-server started for the run (tests/support/redis.py)."""
    if given:
        yield given
        return
    from tests.support.redis import RedisServer

    with tempfile.TemporaryDirectory(prefix="kitch-bench-redis-") as tmp:
        server = RedisServer(Path(tmp)).start()
        try:
            yield server.url
        finally:
            server.stop()


@contextlib.contextmanager
def kitch_nodes(count: int, redis: str | None, env: dict[str, str]) -> Iterator[list[Any]]:
    """``count`` ``kitch serve`` nodes on one data directory (with ``--redis`` when given)."""
    from tests.support.server import KitchServer

    args = ["--thumbnail-interval", "0", "--ladder", "off"]
    if redis is not None:
        args += ["--redis", redis]
    with tempfile.TemporaryDirectory(prefix="kitch-bench-nodes-") as tmp:
        nodes = []
        try:
            for i in range(count):  # one after the other: the first creates the database
                node_args = [*args, "--node-id", f"node{i}"]  # one data dir: ids of their own
                node = KitchServer(Path(tmp) / "data", Path(tmp) / f"node{i}.log", node_args, env)
                nodes.append(node.start())
            yield nodes
        finally:
            for node in nodes:
                with contextlib.suppress(Exception):
                    node.stop()


def room_run(
    name: str,
    nodes: list[Any],
    receivers: int,
    rate: float,
    seconds: float,
    n_senders: int,
    prefix: str,
    crossed: bool = False,
) -> Result:
    """A room on ``nodes``: its owner and moderators send, each sender on the next node in
    turn, the receivers spread over the nodes the same way; ``crossed``: every receiver on the
    first node, every sender on the others (each message crosses Redis once to reach them)."""
    first = nodes[0]
    owner = first.create_account(f"{prefix}cast")
    mods = [first.create_account(f"{prefix}mod{i}") for i in range(n_senders - 1)]
    urls = [f"ws://127.0.0.1:{n.http_port}/ws/chat/{owner.username}" for n in nodes]

    async def appoint() -> None:
        async with connect(urls[0], compression=None) as ws:
            await ws.send(msgpack.packb({"type": "auth", "token": owner.access_token}))
            for m in mods:
                await ws.send(msgpack.packb({"type": "mod", "user": m.username}))
            await asyncio.sleep(1.0)  # stored, and known to every node's room

    asyncio.run(appoint())
    tokens: list[str | None] = [a.access_token for a in [owner, *mods]]
    send_urls = [urls[i % len(urls)] for i in range(n_senders)]
    recv_urls = urls
    if crossed:
        recv_urls = urls[:1]
        send_urls = [urls[1 + i % (len(urls) - 1)] for i in range(n_senders)]
    pids = [n.proc.pid for n in nodes]
    found = run(name, pids, recv_urls, send_urls, tokens, receivers, rate, seconds)
    show(name, found)
    return found


def main_nodes(args: argparse.Namespace, receivers: int, rate: float, seconds: float) -> None:
    n_senders = max(2 if args.quick else 10, int(rate * seconds / 90) + 1)
    n_senders = max(n_senders, args.nodes)
    print(machine())
    print(
        f"setup: 1 room, {receivers} receivers, {n_senders} senders, "
        f"{rate:g} messages/s for {seconds:g} s (offered: {rate * receivers:,.0f} deliveries/s); "
        f"1 node alone, then {args.nodes} nodes through Redis: clients spread over them, then "
        f"crossed (receivers on one node, senders on the others)"
    )
    env = {"KITCH_BCRYPT_COST": "4", "KITCH_HTTP_MAX_CONNECTIONS": str(receivers + 100)}
    with kitch_nodes(1, None, env) as nodes:
        one = room_run("kitch, 1 node", nodes, receivers, rate, seconds, n_senders, "one")
    with redis_url(args.redis or None) as url, kitch_nodes(args.nodes, url, env) as nodes:
        many = room_run(
            f"kitch, {args.nodes} nodes + Redis", nodes, receivers, rate, seconds, n_senders, "many"
        )
        crossed = room_run(
            f"kitch, {args.nodes} nodes + Redis, receivers on node 1, senders on the others",
            nodes, receivers, rate, seconds, n_senders, "cross", crossed=True,
        )  # fmt: skip
    for label, found in (("", many), (", crossed", crossed)):
        print(
            f"{args.nodes} nodes{label} / 1 node: deliveries/s {ratio(found.rate, one.rate)}, "
            f"p99 {ratio(found.p99_ms, one.p99_ms)}, "
            f"server CPU {ratio(found.server_cpu, one.server_cpu)}"
        )
    complete = all(r.delivered >= r.expected for r in (one, many, crossed))
    print(
        f"summary: every message delivered on every node: {verdict(complete)}; "
        f"aim p99 < {AIM_P99_MS:g} ms with {args.nodes} nodes: {verdict(many.p99_ms < AIM_P99_MS)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="50 receivers, 2 s (CI smoke)")
    parser.add_argument("--receivers", type=int, help="receiving sockets (default 1000)")
    parser.add_argument("--rate", type=float, help="messages per second sent (default 100)")
    parser.add_argument("--seconds", type=float, help="sending time (default 8)")
    parser.add_argument(
        "--nodes", type=int, default=1, help="kitch nodes sharing the room (>1 needs --redis)"
    )
    parser.add_argument(
        "--redis",
        nargs="?",
        const="",
        metavar="URL",
        help="fan-out through Redis: this URL, or (no URL) a redis-server started for the run",
    )
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--window", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server, args.window)
        return
    receivers = args.receivers or (50 if args.quick else 1000)
    rate = args.rate or (50.0 if args.quick else 100.0)
    seconds = args.seconds or (2.0 if args.quick else 8.0)
    if args.nodes > 1 or args.redis is not None:
        if args.nodes < 2 or args.redis is None:
            parser.error("several nodes need --nodes N (2 or more) and --redis")
        main_nodes(args, receivers, rate, seconds)
        return
    n_senders = 2 if args.quick else 10
    # privileged senders may send 100 messages per 30 s each
    n_senders = max(n_senders, int(rate * seconds / 90) + 1)
    print(machine())
    print(
        f"setup: 1 room, {receivers} receivers, {n_senders} senders, "
        f"{rate:g} messages/s for {seconds:g} s (offered: {rate * receivers:,.0f} deliveries/s)"
    )

    with Kitch(
        {"KITCH_BCRYPT_COST": "4", "KITCH_HTTP_MAX_CONNECTIONS": str(receivers + 100)}
    ) as kitch:
        srv = kitch.server
        owner = srv.create_account("benchcast")
        mods = [srv.create_account(f"benchmod{i}") for i in range(n_senders - 1)]
        url = f"ws://127.0.0.1:{srv.http_port}/ws/chat/benchcast"

        async def appoint() -> None:
            async with connect(url, compression=None) as ws:
                await ws.send(msgpack.packb({"type": "auth", "token": owner.access_token}))
                for m in mods:
                    await ws.send(msgpack.packb({"type": "mod", "user": m.username}))
                await asyncio.sleep(0.5)

        asyncio.run(appoint())
        tokens: list[str | None] = [a.access_token for a in [owner, *mods]]
        k = run("kitch", kitch.pid, url, [url] * n_senders, tokens, receivers, rate, seconds)
    show("kitch", k)
    b = bare("bare websockets broadcast", None, receivers, rate, seconds, n_senders)
    c = bare("bare websockets, coalesced", BATCH_WINDOW, receivers, rate, seconds, n_senders)

    for label, base in (("bare", b), ("bare coalesced", c)):
        print(
            f"kitch / {label}: deliveries/s {ratio(k.rate, base.rate)}, "
            f"p99 {ratio(k.p99_ms, base.p99_ms)}, "
            f"server CPU {ratio(k.server_cpu, base.server_cpu)}, "
            f"RSS per connection {ratio(k.rss_per_conn, base.rss_per_conn)}"
        )
    met_rate = k.rate >= AIM_DELIVERIES
    met_ratio = b.rate > 0 and k.rate / b.rate >= AIM_RATIO
    met_p99 = k.p99_ms < AIM_P99_MS
    print(
        f"summary: aim >= {AIM_DELIVERIES:,.0f} deliveries/s: {verdict(met_rate)}; "
        f"aim >= {AIM_RATIO} of bare: {verdict(met_ratio)}; "
        f"aim p99 < {AIM_P99_MS:g} ms: {verdict(met_p99)}"
    )


if __name__ == "__main__":
    main()
