"""LL-HLS viewers at scale: N simulated hls.js players on one live stream of a real ``kitch serve``.

Run from the repository root after the Cython build (``apt-get install -y nginx`` for the
baseline)::

    python3 benchmarks/bench_viewers.py [--quick] [--viewers 100,500,1000,2000] [--seconds 20]
        [--clients 4] [--ramp 5] [--hls-workers 0,2]

``--hls-workers K`` (a list runs each N once per K) starts kitch with K HLS worker processes
(``--hls-workers``, docs/HLS_WORKERS.md) and points the viewers at their port; the server CPU
is then the main process's plus every worker's. K = 0 (the default) is the main process alone.
The nginx baseline runs once per N (beside the first K).

For each N, a fresh ``kitch serve`` (passthrough alone: no ladder, thumbnails or recordings)
takes one publisher, ``ffmpeg -re -stream_loop -1 -c copy -f flv`` of a cached 720p 2.5 Mb/s
H.264 + AAC fixture (10 s, 2 s GOP). Once the stream is live, the server's CPU is read over a
few seconds with no viewer (the ingest alone), then N viewers join, spread evenly over
``--ramp`` seconds and over ``--clients`` client processes (asyncio on uvloop, raw streams).
Each viewer does what hls.js does in low-latency mode in a browser, on one keep-alive HTTP/1.1
connection with a browser's headers (User-Agent, Accept, Accept-Encoding gzip, Origin,
Referer, Sec-Fetch-*, ``Connection: keep-alive``) from its own 127.2.x.y source address: the
master playlist, the media playlist, the init segment, the parts of the last PART-HOLD-BACK
(its start position), then in a loop a blocking playlist reload for the next part
(``_HLS_msn``/``_HLS_part``, and ``_HLS_skip=YES`` once the server offers delta updates) and a
fetch of each part it newly lists (and the init segment again if EXT-X-MAP changes).

Measured over ``--seconds`` after every viewer has joined (and 2 s to settle):

* server CPU (``/proc``): per viewer (CPU seconds / (N x seconds)), per delivered GB, and the
  viewers one core would carry at that rate (N / cores used); the ingest alone is printed
  beside it;
* bytes per second delivered (headers + bodies as received, gzip included) and requests/s;
* part delay, p50/p99, three ways: (1) per viewer, from the moment the blocking reload that
  lists the part returned to the moment the part's last byte arrived (the aim's figure);
  (2) fan-out, from the first moment any viewer (in any client process) saw the part listed
  to this viewer having it, so a viewer whose reload was answered late is counted too;
  (3) from the part's end on the wall clock (EXT-X-PROGRAM-DATE-TIME + the part durations:
  the server's clock when the media reached it) to this viewer having it; this one includes
  the segmenter's wait for the next frame and drifts with the publisher's pacing (``-re`` of a
  looped clip), so read it as an upper bound;
* time to join: viewer start -> first part received;
* errors: non-200 answers, timeouts, broken connections (over the whole run), and how often a
  viewer found its next part already gone from the playlist (fell behind);
* the client processes' own CPU and their event loops' lag (p99), to see whether the client
  side was the bottleneck.

Baseline in the same run, same N: nginx (one worker, sendfile, gzip for playlists, access log
off) serving the same bytes as static files. A mirror thread follows kitch's live playlist and
copies each new complete segment (and the init segment) into nginx's root (on /dev/shm) with a
plain HLS playlist of the last 6 segments; N plain-HLS viewers (same client, same headers, same
spread) fetch the master and media playlists, the init and the last 3 segments (hls.js starts 3
target durations back), then reload the playlist every target duration (half of it when
nothing changed) and fetch each new segment. nginx's CPU is master + worker.

Aims: at least 1,000 LL-HLS viewers of a 2.5 Mb/s stream per core with p99 part delay under
250 ms (judged at N >= 1,000); no more server CPU per delivered byte than nginx.

``--quick`` (CI smoke): 20 viewers, 320x240 600 kb/s, ~5 s windows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import math
import multiprocessing as mp
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    NGINX,
    NOT_INSTALLED,
    SETUP_HINT,
    Kitch,
    Media,
    Nginx,
    children,
    cpu_seconds,
    ffmpeg_publish,
    free_port,
    machine,
    make_media,
    media_for,
    ratio,
    stop_process,
    tree_cpu_seconds,
    verdict,
)

AIM_VIEWERS_PER_CORE = 1000
AIM_P99_MS = 250.0
CHANNEL = "viewers"
PASSTHROUGH_ONLY = {
    "KITCH_LADDER": "off",
    "KITCH_THUMBNAIL_INTERVAL": "0",
    "KITCH_RECORDINGS": "off",
}
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
RELOAD_TIMEOUT = 15.0  # kitch answers a blocking reload within 3 target durations (6 s)
FETCH_TIMEOUT = 10.0
PLAIN_WINDOW = 6  # segments in the mirrored plain playlist


# -- HTTP/1.1 on one keep-alive connection ----------------------------------------------------


class HttpError(Exception):
    pass


class Conn:
    """One browser-like keep-alive HTTP/1.1 connection (GET only; Content-Length or chunked
    bodies; gzip answers decoded)."""

    def __init__(self, port: int, local: str, origin: str, referer: str) -> None:
        self.port, self.local = port, local
        self.reader: asyncio.StreamReader | None = None
        self.stage = ""  # what the last request was waiting for (to name timeouts)
        self.writer: asyncio.StreamWriter | None = None
        self.tail = (
            f"Host: 127.0.0.1:{port}\r\n"
            "Connection: keep-alive\r\n"
            f"User-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\n"
            f"Origin: {origin}\r\n"
            "Sec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: cors\r\nSec-Fetch-Dest: empty\r\n"
            f"Referer: {referer}\r\n"
            "Accept-Encoding: gzip, deflate, br, zstd\r\n"
            "Accept-Language: en-US,en;q=0.9\r\n\r\n"
        ).encode()

    async def get(self, path: str, timeout: float) -> tuple[int, bytes, int]:
        """``(status, decoded body, bytes received on the wire)``."""
        async with asyncio.timeout(timeout):
            if self.writer is None:
                self.stage = "connecting"
                self.reader, self.writer = await asyncio.open_connection(
                    "127.0.0.1", self.port, local_addr=(self.local, 0)
                )
            self.stage = (
                "blocking reload"
                if "_HLS_msn" in path
                else "playlist"
                if path.endswith(".m3u8")
                else "media"
            )
            reader, writer = self.reader, self.writer
            assert reader is not None
            writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self.tail)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, chunked, gz, close = -1, False, False, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif name == b"content-encoding":
                    gz = b"gzip" in value.lower()
                elif name == b"connection":
                    close = b"close" in value.lower()
            wire = len(head)
            if chunked:
                pieces = []
                while True:
                    size_line = await reader.readuntil(b"\r\n")
                    size = int(size_line.split(b";")[0], 16)
                    chunk = await reader.readexactly(size + 2)
                    wire += len(size_line) + size + 2
                    if size == 0:
                        break
                    pieces.append(chunk[:-2])
                body = b"".join(pieces)
            elif length >= 0:
                body = await reader.readexactly(length)
                wire += length
            else:
                raise HttpError("answer without a length")
        if gz:
            body = zlib.decompress(body, 47)
        if close:
            self.close()
        return status, body, wire

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None


# -- playlists ----------------------------------------------------------------------------------

_PDT_CACHE: dict[str, float] = {}


def _pdt(text: str) -> float:
    value = _PDT_CACHE.get(text)
    if value is None:
        if len(_PDT_CACHE) > 256:
            _PDT_CACHE.clear()
        stamp = text.replace("Z", "+00:00")
        value = _PDT_CACHE[text] = datetime.datetime.fromisoformat(stamp).timestamp()
    return value


@dataclass(slots=True)
class Item:
    """A part (LL-HLS) or a complete segment (plain HLS) as a viewer fetches it."""

    uri: str
    msn: int
    duration: float
    end: float  # its end on the wall clock (PROGRAM-DATE-TIME + durations), 0 if unknown


@dataclass
class Playlist:
    map_uri: str = ""
    target: float = 2.0
    part_target: float = 0.2
    hold_back: float = 0.6
    can_skip: bool = False
    ended: bool = False
    parts: list[Item] = field(default_factory=list)
    segments: list[Item] = field(default_factory=list)
    next_msn: int = 0  # the next part to ask for: (next_msn, next_part)
    next_part: int = 0


_TOKENS = re.compile(
    r'^#EXT-X-PART:DURATION=([\d.]+),URI="([^"]*)"'  # 1, 2 (Kitch writes DURATION first)
    r"|^#EXTINF:([\d.]+),[^\n]*\n([^#\n][^\n]*)"  # 3, 4: a complete segment and its URI
    r"|^#EXT-X-PROGRAM-DATE-TIME:([^\n]+)"  # 5
    r"|^#EXT-X-SKIP:SKIPPED-SEGMENTS=(\d+)"  # 6
    r'|^#EXT-X-MAP:URI="([^"]*)"',  # 7
    re.M,
)
_SEQUENCE = re.compile(r"^#EXT-X-MEDIA-SEQUENCE:(\d+)", re.M)
_TARGET = re.compile(r"^#EXT-X-TARGETDURATION:([\d.]+)", re.M)
_PART_TARGET = re.compile(r"PART-TARGET=([\d.]+)")
_HOLD_BACK = re.compile(r"PART-HOLD-BACK=([\d.]+)")


def parse_media(text: str) -> Playlist:
    """The few things a viewer needs from a media playlist (LL-HLS or plain, delta or full),
    with a handful of regular expressions (the clients parse thousands a second)."""
    pl = Playlist()
    m = _SEQUENCE.search(text)
    msn = int(m.group(1)) if m else 0
    if m := _TARGET.search(text):
        pl.target = float(m.group(1))
    if m := _PART_TARGET.search(text):
        pl.part_target = float(m.group(1))
    if m := _HOLD_BACK.search(text):
        pl.hold_back = float(m.group(1))
    pl.can_skip = "CAN-SKIP-UNTIL=" in text
    pl.ended = "#EXT-X-ENDLIST" in text
    clock = 0.0  # wall clock at the start of the current segment (0 until a PDT)
    seg_parts: list[Item] = []
    part_end = 0.0
    for part_d, part_uri, seg_d, seg_uri, pdt, skipped, map_uri in _TOKENS.findall(text):
        if part_d:
            duration = float(part_d)
            part_end += duration
            end = clock + part_end if clock else 0.0
            seg_parts.append(Item(part_uri, msn, duration, end))
        elif seg_d:
            duration = float(seg_d)
            pl.segments.append(
                Item(seg_uri.strip(), msn, duration, clock + duration if clock else 0.0)
            )
            pl.parts += seg_parts
            seg_parts, part_end = [], 0.0
            if clock:
                clock += duration
            msn += 1
        elif pdt:
            clock = _pdt(pdt.strip())
        elif skipped:
            msn += int(skipped)
        else:
            pl.map_uri = map_uri
    pl.parts += seg_parts
    pl.next_msn, pl.next_part = msn, len(seg_parts)
    return pl


def _variant(master: bytes) -> str:
    for line in master.decode().split("\n"):
        if line and line[0] != "#":
            return line.strip()
    raise HttpError("no variant in the master playlist")


def _join(base: str, uri: str) -> str:
    """``uri`` relative to the playlist path ``base`` (the server's URIs are relative)."""
    if uri.startswith("/"):
        return uri
    return base.rsplit("/", 1)[0] + "/" + uri


# -- the viewers (one client process) ---------------------------------------------------------


@dataclass
class Plan:
    """What one client process runs."""

    mode: str  # "ll" (kitch, LL-HLS) or "plain" (nginx, plain HLS polling)
    port: int
    master: str  # path of the master playlist
    viewers: list[int]  # global viewer indexes
    starts: list[float]  # wall-clock start of each
    window: tuple[float, float]  # wall-clock measuring window
    stop: float  # wall clock at which the process stops its viewers


class Tally:
    """One client process's figures."""

    def __init__(self, window: tuple[float, float]) -> None:
        self.ws, self.we = window
        self.delays: list[float] = []  # reload returned -> item received, in the window
        self.pdt: list[float] = []  # item's end on the wall clock -> received
        self.have: dict[str, list[float]] = {}  # item uri -> receive times, in the window
        self.listed: dict[str, float] = {}  # item uri -> first time listed in this process
        self.joins: list[float] = []
        self.errors: Counter[str] = Counter()
        self.behind = 0
        self.bytes = 0
        self.playlist_bytes = 0  # of which playlists (masters and media playlists)
        self.requests = 0
        self.lag: list[float] = []
        self.late = 0.0  # the latest a viewer started after its planned start
        self.cpu = 0.0

    def answer(self, t: float, wire: int, playlist: bool) -> None:
        if self.ws <= t <= self.we:
            self.bytes += wire
            self.requests += 1
            if playlist:
                self.playlist_bytes += wire

    def listing(self, items: list[Item], t: float) -> None:
        for it in items:
            if it.uri not in self.listed:
                self.listed[it.uri] = t

    def got(self, it: Item, listed: float, t: float) -> None:
        if self.ws <= t <= self.we:
            self.delays.append(t - listed)
            if it.end:
                self.pdt.append(t - it.end)
            self.have.setdefault(it.uri, []).append(t)

    def result(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k not in ("ws", "we")}


async def _fetch(conn: Conn, tally: Tally, path: str, timeout: float = FETCH_TIMEOUT) -> bytes:
    status, body, wire = await conn.get(path, timeout)
    tally.answer(time.time(), wire, ".m3u8" in path)
    if status != 200:
        tally.errors[f"HTTP {status}"] += 1
        raise HttpError(f"HTTP {status} for {path}")
    return body


async def _fetch_new(
    conn: Conn,
    tally: Tally,
    media: str,
    map_uri: str,
    had_map: str,
    todo: list[Item],
    listed: dict[str, float],
) -> tuple[str, float]:
    """Fetch the init segment when it changed, then ``todo`` in order, timing each one whose
    listing time ``listed`` knows; the init's URI now held and when the first item arrived."""
    if map_uri != had_map:
        await _fetch(conn, tally, _join(media, map_uri))
    first = 0.0
    for it in todo:
        await _fetch(conn, tally, _join(media, it.uri))
        now = time.time()
        first = first or now
        if it.uri in listed:
            tally.got(it, listed[it.uri], now)
    return map_uri, first


def _after(items: list[Item], last: str, tally: Tally) -> list[Item]:
    """What a reload lists after ``last``; only the newest when ``last`` left the playlist
    (the viewer fell behind, counted)."""
    uris = [it.uri for it in items]
    if last in uris:
        return items[uris.index(last) + 1 :]
    tally.behind += 1
    return items[-1:]


def _failed(e: Exception, conn: Conn, tally: Tally) -> None:
    """Count a viewer's failed request (HTTP errors are counted by :func:`_fetch`) and drop
    its connection; the viewer then starts again."""
    if isinstance(e, TimeoutError):
        tally.errors[f"timeout ({conn.stage})"] += 1
    elif not isinstance(e, HttpError):
        tally.errors[f"connection ({type(e).__name__}, {conn.stage})"] += 1
    conn.close()


async def ll_viewer(plan: Plan, conn: Conn, tally: Tally, start: float) -> None:
    """An hls.js player in low-latency mode: blocking reloads, one part at a time."""
    seen = False  # the first media received (the join) is timed once
    map_uri = last = ""
    while True:
        try:
            media = _join(plan.master, _variant(await _fetch(conn, tally, plan.master)))
            t = time.time()
            pl = parse_media((await _fetch(conn, tally, media)).decode())
            tally.listing(pl.parts, t)
            if not pl.parts:
                await asyncio.sleep(pl.part_target)
                continue
            # start position: PART-HOLD-BACK behind the live edge, as hls.js does
            back = max(1, round(pl.hold_back / pl.part_target))
            todo = pl.parts[-back:]
            listed: dict[str, float] = {}  # the start's parts are not timed, only the join
            while True:
                map_uri, first_at = await _fetch_new(
                    conn, tally, media, pl.map_uri, map_uri, todo, listed
                )
                if first_at and not seen:
                    seen = True
                    tally.joins.append(first_at - start)
                last = todo[-1].uri if todo else last
                query = f"?_HLS_msn={pl.next_msn}&_HLS_part={pl.next_part}"
                if pl.can_skip:
                    query += "&_HLS_skip=YES"
                body = await _fetch(conn, tally, media + query, RELOAD_TIMEOUT)
                t = time.time()
                pl = parse_media(body.decode())
                if pl.ended:
                    return
                tally.listing(pl.parts, t)
                todo = _after(pl.parts, last, tally)
                listed = {it.uri: t for it in todo}
        except (TimeoutError, OSError, asyncio.IncompleteReadError, HttpError, ValueError) as e:
            _failed(e, conn, tally)
            await asyncio.sleep(0.2)


async def plain_viewer(plan: Plan, conn: Conn, tally: Tally, start: float) -> None:
    """An hls.js player on plain HLS: reload every target duration, fetch new segments."""
    seen = False  # the first media received (the join) is timed once
    map_uri = last = ""
    loop = asyncio.get_running_loop()
    while True:
        try:
            media = _join(plan.master, _variant(await _fetch(conn, tally, plan.master)))
            t = time.time()
            pl = parse_media((await _fetch(conn, tally, media)).decode())
            tally.listing(pl.segments, t)
            if not pl.segments:
                await asyncio.sleep(1.0)
                continue
            todo = pl.segments[-3:]  # hls.js starts 3 target durations back
            listed: dict[str, float] = {}  # the start is not timed, only the join
            reloaded = loop.time()
            while True:
                map_uri, first_at = await _fetch_new(
                    conn, tally, media, pl.map_uri, map_uri, todo, listed
                )
                if first_at and not seen:
                    seen = True
                    tally.joins.append(first_at - start)
                last = todo[-1].uri if todo else last
                wait = pl.target if todo else pl.target / 2
                await asyncio.sleep(max(0.0, reloaded + wait - loop.time()))
                body = await _fetch(conn, tally, media)
                t, reloaded = time.time(), loop.time()
                pl = parse_media(body.decode())
                tally.listing(pl.segments, t)
                todo = _after(pl.segments, last, tally)
                listed = {it.uri: t for it in todo}
        except (TimeoutError, OSError, asyncio.IncompleteReadError, HttpError, ValueError) as e:
            _failed(e, conn, tally)
            await asyncio.sleep(0.5)


def source_address(viewer: int) -> str:
    """Each viewer's own loopback source address (kitch counts viewers by address + agent)."""
    return f"127.2.{viewer // 250}.{viewer % 250 + 1}"


async def _client(plan: Plan) -> dict[str, Any]:
    tally = Tally(plan.window)
    origin = f"http://127.0.0.1:{plan.port}"
    referer = f"{origin}/{CHANNEL}"
    fn = ll_viewer if plan.mode == "ll" else plain_viewer
    conns: list[Conn] = []

    async def one(viewer: int, start: float) -> None:
        await asyncio.sleep(max(0.0, start - time.time()))
        tally.late = max(tally.late, time.time() - start)
        conn = Conn(plan.port, source_address(viewer), origin, referer)
        conns.append(conn)
        await fn(plan, conn, tally, time.time())

    async def lag_probe() -> None:
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(0.05)
            now = time.time()
            if tally.ws <= now <= tally.we:
                tally.lag.append(time.monotonic() - t0 - 0.05)

    tasks = [asyncio.create_task(one(v, s)) for v, s in zip(plan.viewers, plan.starts, strict=True)]
    tasks.append(asyncio.create_task(lag_probe()))
    await asyncio.sleep(max(0.0, plan.window[0] - time.time()))
    cpu0 = time.process_time()
    await asyncio.sleep(max(0.0, plan.window[1] - time.time()))
    tally.cpu = time.process_time() - cpu0
    await asyncio.sleep(max(0.0, plan.stop - time.time()))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for conn in conns:
        conn.close()
    return tally.result()


def client_main(plan: Plan, out: Any) -> None:
    """Entry point of one client process: runs ``plan``, puts its figures on queue ``out``."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    out.put(asyncio.run(_client(plan)))


# -- running N viewers and merging the figures --------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Phase:
    label: str
    n: int
    seconds: float
    cpu: float  # server CPU seconds in the window
    idle_cpu: float  # server CPU per second with no viewer (ingest / nothing)
    bytes: int
    playlist_bytes: int
    requests: int
    delays: list[float]
    fanout: list[float]
    pdt: list[float]
    joins: list[float]
    errors: Counter[str]
    behind: int
    client_cpu: float
    lag_p99: float
    late: float
    workers: int = 0  # kitch's HLS worker processes (0: the main process served)

    @property
    def cores(self) -> float:
        return self.cpu / self.seconds

    @property
    def per_viewer(self) -> float:
        """Server CPU per viewer as a fraction of a core."""
        return self.cpu / (self.n * self.seconds)

    @property
    def net_per_viewer(self) -> float:
        """The same, net of the server's CPU with no viewer (the ingest)."""
        return max(0.0, self.cpu - self.idle_cpu * self.seconds) / (self.n * self.seconds)

    @property
    def per_gb(self) -> float:
        return self.cpu / (self.bytes / 1e9) if self.bytes else float("nan")

    @property
    def viewers_per_core(self) -> float:
        """Viewers that joined (got media) per core the server used."""
        return len(self.joins) / self.cores if self.cpu else float("inf")

    def describe(self) -> list[str]:
        ms = 1000.0
        errors = ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())) or "none"
        idle = self.idle_cpu * 100
        return [
            f"{self.label}, {self.n} viewers: server CPU {self.cpu:.2f} s over {self.seconds:g} s"
            f" = {self.cores * 100:.1f} % of a core (no viewers: {idle:.1f} %); "
            f"per viewer {self.per_viewer * 100:.4f} % of a core "
            f"({self.net_per_viewer * 100:.4f} % net of the no-viewer CPU); "
            f"{self.viewers_per_core:,.0f} viewers per core; {self.per_gb:.2f} CPU-s per GB",
            f"  delivered {self.bytes / self.seconds / 1e6:.2f} MB/s "
            f"({self.bytes * 8 / self.seconds / self.n / 1e6:.2f} Mb/s per viewer, "
            f"{self.playlist_bytes / max(1, self.bytes) * 100:.1f} % of it playlists), "
            f"{self.requests / self.seconds:,.0f} requests/s",
            f"  delay listed -> received: p50 {pct(self.delays, 0.5) * ms:.1f} ms, "
            f"p99 {pct(self.delays, 0.99) * ms:.1f} ms over {len(self.delays):,} fetches; "
            f"fan-out (first listed anywhere -> received): p50 {pct(self.fanout, 0.5) * ms:.1f}"
            f" ms, p99 {pct(self.fanout, 0.99) * ms:.1f} ms; media end (PDT) -> received: "
            f"p50 {pct(self.pdt, 0.5) * ms:.0f} ms, p99 {pct(self.pdt, 0.99) * ms:.0f} ms",
            f"  join (start -> first media received): p50 {pct(self.joins, 0.5) * ms:.0f} ms, "
            f"p99 {pct(self.joins, 0.99) * ms:.0f} ms, {len(self.joins)} of {self.n} joined; "
            f"errors: {errors}; fell behind {self.behind} times",
            f"  clients: {self.client_cpu:.2f} CPU s in the window "
            f"({self.client_cpu / self.seconds * 100:.0f} % of a core), loop lag p99 "
            f"{self.lag_p99 * ms:.1f} ms, latest start {self.late * ms:.0f} ms after plan",
        ]


def run_viewers(
    mode: str,
    label: str,
    port: int,
    master: str,
    server_pid: int,
    n: int,
    args: argparse.Namespace,
    cpu_of: Any,
    idle_cpu: float,
) -> Phase:
    clients = max(1, min(args.clients, n))
    now = time.time() + 1.0 + 0.2 * clients  # time for the client processes to start
    starts = [now + args.ramp * i / n for i in range(n)]
    window = (now + args.ramp + args.settle, now + args.ramp + args.settle + args.seconds)
    plans = [
        Plan(
            mode,
            port,
            master,
            list(range(c, n, clients)),
            starts[c::clients],
            window,
            window[1] + 0.3,
        )
        for c in range(clients)
    ]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=client_main, args=(plan, out), daemon=True) for plan in plans]
    for proc in procs:
        proc.start()
    try:
        time.sleep(max(0.0, window[0] - time.time()))
        cpu0 = cpu_of(server_pid)
        time.sleep(max(0.0, window[1] - time.time()))
        cpu = cpu_of(server_pid) - cpu0
        results: list[dict[str, Any]] = [out.get(timeout=60) for _ in procs]
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
    listed: dict[str, float] = {}
    for r in results:
        for uri, t in r["listed"].items():
            if uri not in listed or t < listed[uri]:
                listed[uri] = t
    fanout = [t - listed[uri] for r in results for uri, times in r["have"].items() for t in times]
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r["errors"])
    return Phase(
        label,
        n,
        args.seconds,
        cpu,
        idle_cpu,
        sum(r["bytes"] for r in results),
        sum(r["playlist_bytes"] for r in results),
        sum(r["requests"] for r in results),
        [d for r in results for d in r["delays"]],
        fanout,
        [d for r in results for d in r["pdt"]],
        [d for r in results for d in r["joins"]],
        errors,
        sum(r["behind"] for r in results),
        sum(r["cpu"] for r in results),
        max((pct(r["lag"], 0.99) for r in results if r["lag"]), default=0.0),
        max(r["late"] for r in results),
    )


# -- the nginx baseline's feed: kitch's complete segments copied as static files ---------------


class Mirror:
    """Follows kitch's live media playlist and copies each new complete segment (and the init
    segment) into ``www``, with a plain HLS playlist of the last segments and a master."""

    def __init__(self, playlist_url: str, www: Path) -> None:
        self.url, self.www = playlist_url, www
        self.listed: list[tuple[str, float, float]] = []  # (name, duration, pdt)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        (www / "master.m3u8").write_text(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
            '#EXT-X-STREAM-INF:BANDWIDTH=2800000,CODECS="avc1.64001f,mp4a.40.2"\nindex.m3u8\n'
        )
        self.target = 2
        self.map = ""

    def start(self) -> Mirror:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)

    def _get(self, url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=10) as resp:
            body: bytes = resp.read()
            return body

    def _write(self, name: str, data: bytes) -> None:
        tmp = self.www / (name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.www / name)

    def _run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                self._poll()
                failures = 0
            except OSError as e:  # a segment that left in between: try again, a few times
                failures += 1
                if failures > 20:
                    self.error = e
                    return
            except Exception as e:  # reported by the main thread
                self.error = e
                return
            self.stop.wait(0.1)

    def _poll(self) -> None:
        pl = parse_media(self._get(self.url).decode())
        self.target = math.ceil(pl.target)
        base = self.url.rsplit("/", 1)[0] + "/"
        if pl.map_uri and pl.map_uri != self.map:
            self._write(pl.map_uri.rsplit("/", 1)[-1], self._get(base + pl.map_uri))
            self.map = pl.map_uri
        changed = False
        for seg in pl.segments:
            name = seg.uri.rsplit("/", 1)[-1]
            if self.listed and seg.msn <= self._msn(self.listed[-1][0]):
                continue
            self._write(name, self._get(base + seg.uri))
            start = seg.end - seg.duration if seg.end else 0.0
            self.listed.append((name, seg.duration, start))
            changed = True
        if not changed:
            return
        for name, _, _ in self.listed[: -PLAIN_WINDOW * 2]:
            with contextlib.suppress(OSError):
                (self.www / name).unlink()
        self.listed = self.listed[-PLAIN_WINDOW * 2 :]
        shown = self.listed[-PLAIN_WINDOW:]
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:7",
            f"#EXT-X-TARGETDURATION:{self.target}",
            f"#EXT-X-MEDIA-SEQUENCE:{self._msn(shown[0][0])}",
            "#EXT-X-INDEPENDENT-SEGMENTS",
            f'#EXT-X-MAP:URI="{self.map.rsplit("/", 1)[-1]}"',
        ]
        if shown[0][2]:
            stamp = datetime.datetime.fromtimestamp(shown[0][2], datetime.UTC)
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{stamp.isoformat(timespec='milliseconds')}")
        for name, duration, _ in shown:
            lines += [f"#EXTINF:{duration:.5f},", name]
        self._write("index.m3u8", ("\n".join(lines) + "\n").encode())

    @staticmethod
    def _msn(name: str) -> int:
        return int(name.rsplit("-s", 1)[1].split(".", 1)[0])

    def ready(self, segments: int) -> bool:
        if self.error is not None:
            raise RuntimeError(f"the mirror failed: {self.error!r}")
        return len(self.listed) >= segments


def nginx_conf(port: int) -> str:
    return (
        "http { access_log off; sendfile on; tcp_nopush on; tcp_nodelay on;\n"
        "  keepalive_requests 1000000; keepalive_timeout 75s;\n"
        "  gzip on; gzip_types application/vnd.apple.mpegurl;\n"
        "  types { application/vnd.apple.mpegurl m3u8; video/iso.segment m4s; "
        "video/mp4 mp4; }\n"
        "  server { listen 127.0.0.1:PORT backlog=4096; root {dir}/www;\n"
        "    add_header Cache-Control no-cache; add_header Access-Control-Allow-Origin *; } }\n"
    ).replace("PORT", str(port))


# -- one N: kitch, then nginx on the same bytes -------------------------------------------------


def _live(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return len(parse_media(resp.read().decode()).segments) >= 1
    except (OSError, urllib.error.URLError, ValueError):
        return False


def run_n(
    media: Media, n: int, args: argparse.Namespace, workers: int = 0, baseline: bool = True
) -> tuple[Phase, Phase | None]:
    env = {**PASSTHROUGH_ONLY, "KITCH_HTTP_MAX_CONNECTIONS": str(n + 200)}
    hls_port = free_port()
    if workers:
        env.update({"KITCH_HLS_WORKERS": str(workers), "KITCH_HLS_PORT": str(hls_port)})
    # with workers: the main process and its children (the workers)
    cpu_of = tree_cpu_seconds if workers else cpu_seconds
    with Kitch(env) as k:
        pub = ffmpeg_publish(k.publish_url(CHANNEL), media)
        try:
            playlist = f"{k.server.base}/hls/{CHANNEL}/source/index.m3u8"
            k.server.wait_for(lambda: _live(playlist), 40, "the live stream", 0.2)
            if workers:
                worker_playlist = f"http://127.0.0.1:{hls_port}/hls/{CHANNEL}/source/index.m3u8"
                k.server.wait_for(lambda: _live(worker_playlist), 20, "the workers", 0.2)
            c0 = cpu_of(k.pid)
            time.sleep(args.idle)
            idle = (cpu_of(k.pid) - c0) / args.idle
            before = set(children(k.pid))
            kitch = run_viewers(
                "ll",
                f"kitch LL-HLS ({workers} HLS workers)" if workers else "kitch LL-HLS",
                hls_port if workers else k.server.http_port,
                f"/hls/{CHANNEL}/master.m3u8",
                k.pid,
                n,
                args,
                cpu_of,
                idle,
            )
            kitch.workers = workers
            print("\n".join(kitch.describe()), flush=True)
            if workers and set(children(k.pid)) != before:
                # a worker that exits takes its CPU seconds with it: the sum is too low
                print("  WARNING: an HLS worker was restarted during the run", flush=True)
            base: Phase | None = None
            if not baseline:
                pass
            elif NGINX is None:
                print(f"nginx plain HLS, {n} viewers: {NOT_INSTALLED} ({SETUP_HINT})", flush=True)
            else:
                port = free_port()
                # twice N: nginx closes idle keep-alive connections when fewer than 1/16 of
                # its worker connections are free, which would break the viewers' keep-alive
                with Nginx(nginx_conf(port), worker_connections=2 * n + 100) as ng:
                    www = ng.dir / "www"
                    www.mkdir()
                    mirror = Mirror(playlist, www).start()
                    try:
                        k.server.wait_for(lambda: mirror.ready(2), 40, "mirrored segments", 0.1)
                        ng.start(port)
                        c0 = tree_cpu_seconds(ng.pid)
                        time.sleep(args.idle)
                        nidle = (tree_cpu_seconds(ng.pid) - c0) / args.idle
                        base = run_viewers(
                            "plain",
                            "nginx plain HLS",
                            port,
                            "/master.m3u8",
                            ng.pid,
                            n,
                            args,
                            tree_cpu_seconds,
                            nidle,
                        )
                    finally:
                        mirror.close()
                print("\n".join(base.describe()), flush=True)
            if pub.poll() is not None:
                raise RuntimeError("the publisher died during the run")
        finally:
            stop_process(pub)
    return kitch, base


def add_run_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of a viewers run (window, client processes, ramp, settle, idle) that the
    scripts built on this simulator share."""
    ap.add_argument("--seconds", type=float, default=20.0, help="measuring window (20)")
    ap.add_argument("--clients", type=int, default=4, help="client processes (4)")
    ap.add_argument("--ramp", type=float, default=5.0, help="seconds over which viewers join (5)")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds after the ramp (2)")
    ap.add_argument("--idle", type=float, default=3.0, help="seconds of no-viewer CPU (3)")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 viewers, tiny media, ~5 s (CI)")
    ap.add_argument("--viewers", default="100,500,1000,2000", help="N list (100,500,1000,2000)")
    add_run_arguments(ap)
    ap.add_argument(
        "--hls-workers",
        default="0",
        help="kitch's HLS worker processes; a list (0,2) runs each N once per value (0)",
    )
    args = ap.parse_args()
    worker_counts = [int(x) for x in args.hls_workers.split(",") if x.strip()] or [0]
    print(machine(), flush=True)
    if args.quick:
        counts = [20]
        args.seconds, args.ramp, args.settle, args.idle, args.clients = 4.0, 1.0, 0.5, 0.5, 2
        media = media_for(True)
    else:
        counts = [int(x) for x in args.viewers.split(",") if x.strip()]
        media = make_media(width=1280, height=720, video_kbps=2500)
    print(
        f"media: {media.path.name} (ffmpeg -re -stream_loop -1 -c copy); viewers {counts}; "
        f"window {args.seconds:g} s after a {args.ramp:g} s ramp + {args.settle:g} s; "
        f"{args.clients} client processes",
        flush=True,
    )
    results: list[tuple[Phase, Phase | None]] = []
    for n in counts:
        base_of_n: Phase | None = None
        for i, workers in enumerate(worker_counts):
            kitch, base = run_n(media, n, args, workers, baseline=i == 0)
            base_of_n = base_of_n or base
            results.append((kitch, base_of_n))  # later K compared with this N's nginx run
    print("summary:")
    for kitch, base in results:
        p99 = pct(kitch.delays, 0.99) * 1000
        with_workers = f" with {kitch.workers} HLS workers" if kitch.workers else ""
        line = (
            f"  N={kitch.n}: kitch{with_workers} {kitch.per_viewer * 100:.4f} % of a core per "
            "viewer "
            f"({kitch.viewers_per_core:,.0f} viewers per core; {len(kitch.joins)} of {kitch.n} "
            f"joined), {kitch.per_gb:.2f} CPU-s/GB, "
            f"p99 part delay {p99:.1f} ms"
        )
        if base is None:
            line += f"; nginx {NOT_INSTALLED}"
        else:
            line += (
                f"; nginx {base.per_viewer * 100:.4f} % per viewer, {base.per_gb:.2f} CPU-s/GB; "
                f"kitch/nginx CPU per viewer {ratio(kitch.per_viewer, base.per_viewer)}, "
                f"CPU per delivered byte {ratio(kitch.per_gb, base.per_gb)}"
            )
        print(line)
    judged = [k for k, _ in results if k.n >= AIM_VIEWERS_PER_CORE]
    if judged:
        ok = any(
            k.viewers_per_core >= AIM_VIEWERS_PER_CORE
            and len(k.joins) == k.n
            and pct(k.delays, 0.99) * 1000 < AIM_P99_MS
            for k in judged
        )
        print(
            f"summary: aim >= {AIM_VIEWERS_PER_CORE} LL-HLS viewers per core with p99 part delay "
            f"< {AIM_P99_MS:.0f} ms: {verdict(ok)}"
        )
    else:
        print(
            f"summary: aim >= {AIM_VIEWERS_PER_CORE} LL-HLS viewers per core with p99 part delay "
            f"< {AIM_P99_MS:.0f} ms: not judged (no run with N >= {AIM_VIEWERS_PER_CORE})"
        )
    pairs = [(k, b) for k, b in results if b is not None]
    if pairs:
        ok = all(k.per_gb <= b.per_gb for k, b in pairs)
        print(f"summary: aim CPU per delivered byte <= nginx: {verdict(ok)}")
    else:
        print(f"summary: aim CPU per delivered byte <= nginx: {NOT_INSTALLED}")


if __name__ == "__main__":
    main()
