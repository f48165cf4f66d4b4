"""`kitch serve`: one process, one event loop: the HTTP app (uvicorn) and the RTMP listener."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
from collections.abc import Generator
from dataclasses import asdict
from functools import partial

import uvicorn

from kitch.api.app import create_app, metrics_app
from kitch.api.chat import service as chat_service
from kitch.api.events import Events
from kitch.api.hosts import HostPolicy
from kitch.api.web import web_routes
from kitch.cluster.fanout import Fanout
from kitch.cluster.nodes import ClusterNode, NodeIdInUseError
from kitch.config import Settings, parse_hostport, parse_ladder
from kitch.db import Database, open_database
from kitch.db.queries import ladder_settings
from kitch.hls import HlsRegistry, HlsSettings
from kitch.ingest.ladder import LadderConfig, LadderPool, LadderSink
from kitch.ingest.sinks import SinkFactory
from kitch.ingest.thumbnails import PRODUCTION_INTERVAL, Thumbnailer, ThumbnailStore
from kitch.logs import setup_logging
from kitch.server.hls_workers import HlsWorkers
from kitch.server.http import ConnectionGuard, HttpLimits, listen_sockets, listener_config
from kitch.server.ingest import IngestHub
from kitch.server.recordings import Recordings
from kitch.server.rtmp import RtmpServer
from kitch.transcode.ladder import Rung

log = logging.getLogger("kitch.server")

#: One HTTP listener: its address and its listening sockets.
Listener = tuple[tuple[str, int], list[socket.socket]]


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling (`serve` owns SIGINT/SIGTERM for the process),
    and whose housekeeping loop wakes once a second (the resolution of its Date header) or at
    once on :meth:`stop`, instead of ten times a second (an idle server: 0.3 % of a core -> ~0)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stopped = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def stop(self) -> None:
        self.should_exit = True
        self._stopped.set()

    async def main_loop(self) -> None:
        counter = 0  # on_tick refreshes the Date header when counter % 10 == 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), 1.0)


def hls_settings_from(settings: Settings) -> HlsSettings:
    return HlsSettings(
        segment_count=settings.hls_segment_count,
        max_stream_memory=settings.hls_max_stream_memory,
        departed_retention=settings.hls_departed_retention,
        ended_retention=settings.hls_ended_retention,
        format=settings.hls_format,
    )


def thumbnail_store(settings: Settings) -> ThumbnailStore:
    """Where live thumbnails are kept and the offline ones saved (``DATA_DIR/thumbnails``)."""
    return ThumbnailStore(settings.data_dir / "thumbnails", settings.thumbnail_interval)


def sink_factories(
    settings: Settings,
    db: Database,
    thumbnails: Thumbnailer | None = None,
    recordings: Recordings | None = None,
) -> list[SinkFactory]:
    """The outputs every broadcast feeds, in order, after the passthrough HLS sink (which the
    hub always puts first). One line each; a factory answers None to skip a broadcast."""
    config = LadderConfig(tuple(Rung(*r) for r in parse_ladder(settings.ladder)))
    pool = LadderPool(settings.ladder_slots or max(1, (os.cpu_count() or 1) // 2))

    async def channel_ladder(channel_id: int) -> tuple[bool, list[str]]:
        return await ladder_settings(db, channel_id)

    return [
        lambda b: LadderSink(b.stream, b.channel_id, pool, config, channel_ladder),
        *([thumbnails.sink] if thumbnails is not None else []),
        *([recordings.sink] if recordings is not None else []),
    ]


def tls_context(settings: Settings) -> ssl.SSLContext:
    if settings.tls_cert is None or settings.tls_key is None:
        raise SystemExit("--rtmps needs --tls-cert and --tls-key")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    return ctx


async def serve(settings: Settings, ready: asyncio.Event | None = None) -> None:
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # the HTTP sockets first: a busy port stops the server before anything else starts
    listeners: list[Listener] = []
    try:
        address = parse_hostport(settings.http)
        listeners.append((address, listen_sockets(*address, settings.http_listen_sockets)))
        if settings.metrics_listen is not None:
            maddress = parse_hostport(settings.metrics_listen)
            listeners.append((maddress, listen_sockets(*maddress, 1)))
        await _serve(settings, listeners, ready)
    finally:
        for _, socks in listeners:
            for sock in socks:
                sock.close()


def _positions(registry: HlsRegistry) -> dict[str, tuple[int, int]]:
    """Where each live channel's HLS numbering stands (the cluster node writes it to the
    channel's lease, for a node that takes the channel over)."""
    out = {}
    for channel in registry.channels():
        stream = registry.get(channel)
        if stream is not None and not stream.ended:
            at = stream.resume_point()
            out[channel] = (at.next_msn, at.discontinuity_sequence)
    return out


async def _serve(
    settings: Settings, listeners: list[Listener], ready: asyncio.Event | None
) -> None:
    db = await open_database(settings.database_url)
    log.info("database %s", db.url)  # the password never shows
    node: ClusterNode | None = None
    try:
        # cluster: this node's row and heartbeat; a crash's leftovers are closed, but not the
        # channels other running nodes hold (docs/CLUSTER.md, "Nodes")
        node = await ClusterNode.from_settings(db, settings)
        closed = await node.start()
        if closed:
            log.warning("closed %d broadcast session(s) left open by an earlier crash", closed)
        registry = HlsRegistry(hls_settings_from(settings))
        events = Events(settings.viewer_window, settings.viewer_tick)
        store = thumbnail_store(settings)
        await store.load()
        thumbnailer = None
        if settings.thumbnail_interval:
            thumbnailer = Thumbnailer(store, settings.thumbnail_interval)
            low, _high = PRODUCTION_INTERVAL
            if settings.thumbnail_interval < low:
                log.warning(
                    "thumbnail_interval %g s is below %g s: meant for tests only",
                    settings.thumbnail_interval,
                    low,
                )
        recordings = Recordings(db, settings)
        await recordings.start()
        sinks = sink_factories(settings, db, thumbnailer, recordings)
        hub = IngestHub(db, registry, settings, sinks=sinks, listener=events, leases=node)
        node.on_lost = hub.lease_lost
        node.positions = partial(_positions, registry)
        app = create_app(
            settings,
            db=db,
            hls=registry,
            hosts=HostPolicy.from_settings(settings),
            serve_metrics=settings.metrics_listen is None,
            fallback_routes=web_routes(settings),
            health=hub.health,
            events=events,
            thumbnails=store,
            hls_router=node,
        )
        # -- several nodes: the fan-out through Redis (docs/CLUSTER.md, "Fan-out") --
        fanout = None
        if settings.redis is not None:
            fanout = Fanout(settings.redis, node=node.node_id)  # its viewer counts under this id
            app.state.fanout = fanout
            events.attach(fanout)
            chat_service(app)  # the chat takes its payloads from now on
            await fanout.start()
        rtmp = RtmpServer(settings, hub)
        host, port = parse_hostport(settings.rtmp)
        await rtmp.listen(host, port)
        if settings.rtmps:
            thost, tport = parse_hostport(settings.rtmps)
            await rtmp.listen(thost, tport, tls_context(settings))
        hub.start()
        workers = None
        if settings.hls_workers:
            workers = HlsWorkers(settings, registry, events.viewers, asdict(registry.settings))
            await workers.start()
            workers.routes(node.routes)  # channels live on other nodes: workers redirect too
            node.on_routes = workers.routes
        guard = ConnectionGuard(HttpLimits.from_settings(settings))
        (address, _), *metrics_listener = listeners
        servers = [_HttpServer(listener_config(app, address, guard, settings, lifespan="on"))]
        for maddress, _ in metrics_listener:  # --metrics-listen: /metrics on its own port
            mapp = metrics_app(settings)
            servers.append(
                _HttpServer(listener_config(mapp, maddress, guard, settings, lifespan="off"))
            )
        stopping = asyncio.Event()

        def on_signal(signum: int) -> None:
            log.info("received %s: shutting down", signal.Signals(signum).name)
            stopping.set()
            for server in servers:
                server.stop()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        log.info(
            "kitch serving http://%s rtmp://%s/live%s%s",
            settings.http,
            settings.rtmp,
            f" rtmps://{settings.rtmps}/live" if settings.rtmps else "",
            f" metrics http://{settings.metrics_listen}/metrics" if settings.metrics_listen else "",
        )
        tasks = [
            asyncio.create_task(s.serve(sockets=socks), name="http")
            for s, (_, socks) in zip(servers, listeners, strict=True)
        ]
        if ready is not None:
            ready.set()
        await asyncio.wait(
            [*tasks, asyncio.create_task(stopping.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        for server in servers:
            server.stop()
        await rtmp.close()
        await hub.stop()
        await node.stop()
        if workers is not None:
            await workers.stop()
        if thumbnailer is not None:  # the ended broadcasts' last pictures reach the disk
            await asyncio.to_thread(thumbnailer.close)
        await recordings.close()
        await asyncio.gather(*tasks)
        if fanout is not None:
            await fanout.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    finally:
        if node is not None:
            await node.stop()  # a failed start: the heartbeat stops, the node row goes
        await db.close()


def run(settings: Settings) -> int:
    setup_logging(settings.log_format, settings.log_level)
    try:
        try:
            import uvloop  # optional (uvicorn[standard]): a faster event loop
        except ImportError:
            asyncio.run(serve(settings))
        else:
            uvloop.run(serve(settings))
    except (OSError, NodeIdInUseError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0
