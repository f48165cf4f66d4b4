"""Many streams: N real-time 720p publishers into one kitch serve, against nginx-rtmp.

Run from the repository root after the Cython build; the baseline needs
``apt-get install -y nginx libnginx-mod-rtmp``::

    python3 benchmarks/bench_streams.py [--quick] [--publishers 50[,75,...]] [--seconds 20]
        [--warmup 6]

Each publisher is ``ffmpeg -re -stream_loop -1 -i FILE -c copy -f flv`` of a 10 s 1280x720
2.5 Mb/s H.264 + 128 kb/s AAC FLV (made once with PyAV, cached in .bench-cache/), each on its
own channel of one fresh ``kitch serve`` (passthrough alone, as bench_passthrough). Once every
channel is live and after ``--warmup`` seconds, for ``--seconds``:

* the server's CPU (/proc) in slices: CPU per stream (mean and the slices' spread);
* its RSS growth per stream (RSS before the publishers started vs at the end);
* the LL-HLS listing delay: one client per stream (asyncio, keep-alive HTTP/1.1, each from its
  own loopback address) does blocking playlist reloads (``_HLS_msn``/``_HLS_part`` of the next
  part) on the stream's media playlist, as a low-latency player does. A part's end on the wall
  clock is its segment's EXT-X-PROGRAM-DATE-TIME plus the durations of the parts up to and
  including it; Kitch anchors PROGRAM-DATE-TIME to the arrival (``time.time()``) of the frame
  that starts the output timeline, and the clients run on the same machine and clock. The
  delay of a part = the time the reload answer that first lists it was received - the part's
  end (the aim's figure; p50/p99 over every part of every stream). A part is closed as soon as
  the frame that fills it arrives, and that frame's own duration counts in the part, so a part
  can be listed up to one frame duration *before* its end: the delay from the arrival of the
  part's last frame (its end - one frame) is printed beside it. Each stream's anchor is one
  arrival, so a stream's delays can all sit a few ms off (its first keyframe read early or late
  against FFmpeg's ``-re`` pacing); the delay above the stream's own best part is printed too:
  what the load adds, free of that constant;
* that the publishers keep up with real time: per stream, the media listed between the first
  and the newest part listed in the window / the wall clock between their listings (1.00 =
  real time; an ingest that cannot keep up makes ffmpeg block and fall behind).

Then, where installed, the same N publishers into nginx-rtmp (``live on; hls on``, one worker,
2 s fragments written to /dev/shm): CPU per stream. nginx-rtmp's playlists carry no
PROGRAM-DATE-TIME and no parts, so no listing delay is measured for it.

``--publishers`` takes a comma-separated list: each count is a run of its own (kitch, then
nginx), which is how the ceiling of the machine is found (the count where the p99 listing delay
passes 50 ms or a stream falls behind real time). ``--quick`` (CI smoke): 3 publishers of a 2 s
320x240 600 kb/s clip, a 3 s window.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field

from _common import (
    NOT_INSTALLED,
    RTMP_MODULE,
    SETUP_HINT,
    Kitch,
    Media,
    Nginx,
    cpu_seconds,
    ffmpeg_publish,
    free_port,
    machine,
    make_media,
    media_for,
    native_share,
    nginx_rtmp_available,
    nginx_rtmp_hls_conf,
    rss_bytes,
    stop_process,
    tree_cpu_seconds,
    verdict,
)
from bench_viewers import (
    Conn,
    HttpError,
    Item,
    _join,
    _variant,
    parse_media,
    pct,
    source_address,
)

#: Kitch's environment: the passthrough alone; every publisher (and client) is on loopback.
ENV = {
    "KITCH_LADDER": "off",
    "KITCH_THUMBNAIL_INTERVAL": "0",
    "KITCH_RECORDINGS": "off",
    "KITCH_RTMP_MAX_CONNECTIONS_PER_IP": "1000",
}
#: The aim: p99 listing delay below this (seconds).
AIM_P99 = 0.050
#: A stream whose media advanced less than this share of the window fell behind real time.
REAL_TIME = 0.97
RELOAD_TIMEOUT = 15.0


@dataclass
class Probe:
    """What one stream's client saw in the measuring window."""

    delays: list[float] = field(default_factory=list)  # listed at - part end (s)
    #: (listed at, part end) of the first and the newest part listed in the window
    first: tuple[float, float] | None = None
    last: tuple[float, float] | None = None
    errors: int = 0
    reloads: int = 0


async def probe_stream(
    port: int, channel: str, local: str, window: tuple[float, float], probe: Probe
) -> None:
    """Blocking playlist reloads for the next part of ``channel`` until the window ends; each
    part newly listed inside the window adds its listing delay."""
    origin = f"http://127.0.0.1:{port}"
    conn = Conn(port, local, origin, f"{origin}/{channel}")
    master = f"/hls/{channel}/master.m3u8"
    seen: set[str] = set()
    try:
        while time.time() < window[1]:
            try:
                status, body, _ = await conn.get(master, 10)
                if status != 200:
                    raise HttpError(f"master playlist: {status}")
                media = _join(master, _variant(body))
                status, body, _ = await conn.get(media, 10)
                pl = parse_media(body.decode())
                seen.update(p.uri for p in pl.parts)
                while time.time() < window[1]:
                    query = f"?_HLS_msn={pl.next_msn}&_HLS_part={pl.next_part}"
                    status, body, _ = await conn.get(media + query, RELOAD_TIMEOUT)
                    t = time.time()
                    if status != 200:
                        raise HttpError(f"blocking reload: {status}")
                    probe.reloads += 1
                    pl = parse_media(body.decode())
                    new: list[Item] = [p for p in pl.parts if p.uri not in seen]
                    seen.update(p.uri for p in new)
                    if len(seen) > 4096:
                        seen = {p.uri for p in pl.parts}
                    if window[0] <= t <= window[1]:
                        for p in new:
                            if p.end:
                                probe.delays.append(t - p.end)
                                probe.last = (t, p.end)
                                probe.first = probe.first or probe.last
            except (TimeoutError, OSError, asyncio.IncompleteReadError, HttpError, ValueError):
                probe.errors += 1
                conn.close()
                await asyncio.sleep(0.2)
    finally:
        conn.close()


@dataclass
class KitchRun:
    n: int
    cpu: list[float]  # server CPU-seconds per second, one per slice
    rss_per_stream: float
    probes: list[Probe]
    window: float
    frame: float  # one frame's duration (s)
    client_cpu: float  # the probing clients' CPU, fraction of a core
    publishers_cpu: float  # the ffmpeg publishers' CPU together, fraction of a core
    load: float  # the machine's 1-minute load average at the end of the window
    native: str = ""  # how many media packets took the native path (see native_share)

    @property
    def per_stream(self) -> float:
        return statistics.fmean(self.cpu) / self.n

    @property
    def noise(self) -> float:
        return statistics.stdev(self.cpu) / self.n if len(self.cpu) > 1 else 0.0

    @property
    def delays(self) -> list[float]:
        return [d for p in self.probes for d in p.delays]

    @property
    def above_best(self) -> list[float]:
        """Each delay less its stream's smallest: what the load adds (a stream's
        PROGRAM-DATE-TIME anchor can sit a constant few ms off its publisher's pacing)."""
        return [d - min(p.delays) for p in self.probes if p.delays for d in p.delays]

    def realtime(self) -> list[float]:
        """Per stream: media listed / wall clock between its first and newest part listed in
        the window (1.0: the publisher keeps up with real time)."""
        out = []
        for p in self.probes:
            if p.first is None or p.last is None or p.last[0] - p.first[0] < 1.0:
                out.append(0.0)
            else:
                out.append((p.last[1] - p.first[1]) / (p.last[0] - p.first[0]))
        return out

    def p99(self) -> float:
        return pct(self.delays, 0.99)

    def describe(self) -> list[str]:
        d = self.delays
        rt = self.realtime()
        ms = 1000
        return [
            f"kitch, {self.n} publishers: {self.per_stream * 100:.2f} % of a core per stream "
            f"(+/- {self.noise * 100:.2f} over {len(self.cpu)} slices; server "
            f"{statistics.fmean(self.cpu) * 100:.0f} % of a core), RSS "
            f"+{self.rss_per_stream / 2**20:.1f} MiB per stream",
            f"  listing delay (listed - part end by PROGRAM-DATE-TIME), {len(d)} parts: "
            f"p50 {pct(d, 0.5) * ms:.1f} ms, p99 {pct(d, 0.99) * ms:.1f} ms, max "
            f"{(max(d) if d else float('nan')) * ms:.1f} ms; from the arrival of the part's "
            f"last frame: p50 {(pct(d, 0.5) + self.frame) * ms:.1f} ms, p99 "
            f"{(pct(d, 0.99) + self.frame) * ms:.1f} ms; above each stream's best part: p50 "
            f"{pct(self.above_best, 0.5) * ms:.1f} ms, p99 "
            f"{pct(self.above_best, 0.99) * ms:.1f} ms",
            f"  media listed / wall clock per stream: min {min(rt, default=0):.3f}, median "
            f"{statistics.median(rt) if rt else 0:.3f}; reloads "
            f"{sum(p.reloads for p in self.probes)}, client errors "
            f"{sum(p.errors for p in self.probes)}; beside the server: clients "
            f"{self.client_cpu * 100:.0f} %, the {self.n} ffmpeg publishers "
            f"{self.publishers_cpu * 100:.0f} % of a core; load average {self.load:.1f}",
            *([f"  {self.native}"] if self.native else []),
        ]


def sample_cpu(pid: int, window: float, slices: int, cpu: object) -> list[float]:
    fn = cpu  # cpu_seconds or tree_cpu_seconds
    assert callable(fn)
    per: list[float] = []
    step = window / slices
    for _ in range(slices):
        c0, t0 = fn(pid), time.monotonic()
        time.sleep(step)
        per.append((fn(pid) - c0) / (time.monotonic() - t0))
    return per


def check_alive(label: str, procs: list[subprocess.Popen[bytes]]) -> None:
    dead = [p for p in procs if p.poll() is not None]
    if dead:
        err = dead[0].stderr.read().decode(errors="replace") if dead[0].stderr else ""
        raise RuntimeError(f"{label}: {len(dead)} publisher(s) died: {err[-400:]}")


async def _probe_all(
    port: int, channels: list[str], window: tuple[float, float]
) -> tuple[list[Probe], float]:
    probes = [Probe() for _ in channels]
    tasks = [
        asyncio.create_task(probe_stream(port, c, source_address(i), window, probes[i]))
        for i, c in enumerate(channels)
    ]
    await asyncio.sleep(max(0.0, window[0] - time.time()))
    c0 = time.process_time()
    await asyncio.sleep(max(0.0, window[1] - time.time()))
    used = time.process_time() - c0
    await asyncio.sleep(0.5)  # the answers under way at the end
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return probes, used / (window[1] - window[0])


def run_probes(
    port: int, channels: list[str], window: tuple[float, float]
) -> tuple[list[Probe], float]:
    """The clients on an event loop of their own (uvloop when installed); run in a thread
    while the main thread samples the server's CPU."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_probe_all(port, channels, window))
    return uvloop.run(_probe_all(port, channels, window))


def kitch_run(media: Media, n: int, window: float, warmup: float, slices: int) -> KitchRun:
    env = {**ENV, "KITCH_HTTP_MAX_CONNECTIONS": str(n + 200)}
    with Kitch(env) as k:
        accounts = [k.server.create_account(f"pub{i}") for i in range(n)]
        time.sleep(1.0)  # let the server settle after the sign-ups
        rss0 = rss_bytes(k.pid)
        procs = [ffmpeg_publish(k.server.rtmp_url(a.stream_key), media) for a in accounts]
        try:
            for a in accounts:
                k.server.wait_for(
                    lambda a=a: k.server.channel(a.username)["live"], 30, f"{a.username} live"
                )
            # the probes join first (one playlist read each), then the window starts
            start = time.time() + warmup
            span = (start, start + window)
            result: list[tuple[list[Probe], float]] = []
            t = threading.Thread(
                target=lambda: result.append(
                    run_probes(k.server.http_port, [a.username for a in accounts], span)
                ),
                daemon=True,
            )
            t.start()
            time.sleep(max(0.0, span[0] - time.time()))
            p0 = sum(cpu_seconds(p.pid) for p in procs)
            cpu = sample_cpu(k.pid, window, slices, cpu_seconds)
            publishers = (sum(cpu_seconds(p.pid) for p in procs) - p0) / window
            load = os.getloadavg()[0]
            rss = (rss_bytes(k.pid) - rss0) / n
            t.join(60)
            check_alive(f"kitch, {n} publishers", procs)
            if not result:
                raise RuntimeError("the probing clients did not finish")
            probes, client_cpu = result[0]
            run = KitchRun(n, cpu, rss, probes, window, 1 / media.fps, client_cpu, publishers, load)
        finally:
            for p in procs:
                stop_process(p)
        run.native = native_share(k.server, n)
        return run


def nginx_run(media: Media, n: int, window: float, warmup: float, slices: int) -> list[float]:
    port = free_port()
    with Nginx(nginx_rtmp_hls_conf(port), modules=(RTMP_MODULE,)) as ng:
        ng.start(port)
        procs = [ffmpeg_publish(f"rtmp://127.0.0.1:{port}/live/pub{i}", media) for i in range(n)]
        try:
            time.sleep(2.0 + warmup)
            cpu = sample_cpu(ng.pid, window, slices, tree_cpu_seconds)
            check_alive(f"nginx-rtmp, {n} publishers", procs)
            return cpu
        finally:
            for p in procs:
                stop_process(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 tiny publishers, a short window")
    ap.add_argument("--publishers", default="50", help="comma-separated stream counts (50)")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window (20)")
    ap.add_argument("--warmup", type=float, default=6.0, help="seconds after all are live (6)")
    args = ap.parse_args()
    print(machine())
    if args.quick:
        media, counts, window, warmup, slices = media_for(True), [3], 3.0, 1.5, 3
    else:
        media = make_media(width=1280, height=720, video_kbps=2500)
        counts = [int(x) for x in args.publishers.split(",") if x.strip()]
        window, warmup, slices = args.seconds, args.warmup, 5
    print(
        f"media: {media.width}x{media.height} {media.fps} fps, {media.video_kbps} kb/s video "
        f"+ 128 kb/s AAC ({media.path.name}); window {window:g} s after {warmup:g} s"
    )
    results: list[tuple[KitchRun, list[float] | None]] = []
    for n in counts:
        k = kitch_run(media, n, window, warmup, slices)
        print("\n".join(k.describe()), flush=True)
        base: list[float] | None = None
        if nginx_rtmp_available():
            base = nginx_run(media, n, window, warmup, slices)
            print(
                f"nginx-rtmp hls, {n} publishers: {statistics.fmean(base) / n * 100:.2f} % of a "
                f"core per stream (+/- {statistics.stdev(base) / n * 100:.2f}; server "
                f"{statistics.fmean(base) * 100:.0f} % of a core); no parts or "
                "PROGRAM-DATE-TIME: no listing delay",
                flush=True,
            )
        else:
            print(f"nginx-rtmp: {NOT_INSTALLED} ({SETUP_HINT})")
        results.append((k, base))
    print("summary:")
    for k, base in results:
        p99 = k.p99()
        behind = sum(1 for r in k.realtime() if r < REAL_TIME)
        vs = "no baseline"
        if base is not None:
            ng = statistics.fmean(base) / k.n
            vs = f"nginx-rtmp {ng * 100:.2f} % = {k.per_stream / ng:.2f}x" if ng > 0 else "n/a"
        print(
            f"  {k.n} publishers: kitch {k.per_stream * 100:.2f} % of a core per stream ({vs}), "
            f"RSS +{k.rss_per_stream / 2**20:.1f} MiB per stream; p99 listing delay "
            f"{p99 * 1000:.1f} ms, aim < {AIM_P99 * 1000:.0f} ms: {verdict(p99 < AIM_P99)}; "
            f"{behind} of {k.n} streams behind real time"
        )


if __name__ == "__main__":
    main()
