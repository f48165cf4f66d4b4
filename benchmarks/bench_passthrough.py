"""Passthrough cost per stream: real-time publishers into kitch serve, against nginx-rtmp.

Run from the repository root after the Cython build; the baseline needs
``apt-get install -y nginx libnginx-mod-rtmp``::

    python3 benchmarks/bench_passthrough.py [--quick] [--seconds 30] [--publishers 8]
        [--hostile 48] [--bframes 2] [--nginx-disk]
        [--with thumbnails [--thumbnail-interval 2]] [--recording]

Each publisher is ``ffmpeg -re -stream_loop -1 -i FILE -c copy -f flv`` of a 10 s 1080p
6 Mb/s H.264 + AAC FLV (made once with PyAV, cached in .bench-cache/). Runs, each on a fresh
server: none (the idle server, whose cost the summary splits off each figure), 1 publisher,
N publishers, N publishers beside H hostile sockets (see _hostile.py); then, where installed,
1 and N publishers into nginx-rtmp with ``live on; hls on`` (one worker, HLS fragments written
to /dev/shm). After the streams are live and a warm-up, the server
process's CPU time (/proc; for nginx master + worker) is sampled over the window in slices:
figures are server CPU-seconds per stream-second (mean, and the spread across slices as the
noise) and RSS growth per stream at the end of the window (kitch holds its HLS window in
memory; nginx keeps its fragments in files, outside its RSS).
``--bframes B`` repeats the 1 and N publisher runs (kitch and nginx) with the same feed encoded
with B B-frames (PTS != DTS, composition times in every FLV video tag); ``--nginx-disk`` adds
nginx-rtmp runs with its fragments on disk (/var/tmp) beside the /dev/shm ones; ``--hostile 0``
leaves the hostile runs out (short A/B runs).
The hostile run is followed by the same hostile sockets alone on a fresh server, so the
publishers' own cost beside them is (CPU with both - CPU of the hostile sockets alone) / N.
Aims: no more CPU per stream than nginx-rtmp; the hostile sockets move the publishers' CPU cost
by no more than noise (twice the summed slice spreads).

Kitch runs the passthrough alone here (``KITCH_LADDER=off``, ``KITCH_THUMBNAIL_INTERVAL=0``,
``KITCH_RECORDINGS=off``). Other outputs are measured against it:

* ``--with thumbnails``: after each kitch run of 1 and N publishers, the same publishers on a
  fresh server with live thumbnails every ``--thumbnail-interval`` seconds (default 2: short,
  so the pictures' cost stands out of the noise). The CPU thumbnails add per stream is the
  difference, printed as a ratio to passthrough alone; divided by the pictures made (counted
  from each channel's health) it is the CPU per picture, from which the cost at the default
  interval (45 s) follows. Aim: well under 1 % of a core per stream at the default interval.
* ``--recording``: every broadcast recorded to disk (the recorder sink's writer thread; files in
  the server's temporary data directory), right after each plain run, printing the CPU per
  stream it adds as a ratio to the passthrough alone. Aim: under 10 % more CPU per stream.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    tree_rss_bytes,
    verdict,
)
from _hostile import HostilePeers

from kitch.ingest.thumbnails import DEFAULT_INTERVAL

#: Kitch's environment for the passthrough alone (no ladder, thumbnails or recordings); each
#: option's runs add their own on top.
PASSTHROUGH_ONLY = {
    "KITCH_LADDER": "off",
    "KITCH_THUMBNAIL_INTERVAL": "0",
    "KITCH_RECORDINGS": "off",
}
#: Where ``--nginx-disk`` puts nginx-rtmp's fragments (a disk, not tmpfs).
DISK = "/var/tmp"
#: What ``--with`` may turn on beside passthrough.
WITH_CHOICES = ("thumbnails",)
#: Additive options: name -> (help, the environment that turns the output on, aim as a ratio).
OPTIONS: dict[str, tuple[str, dict[str, str], float]] = {
    "recording": (
        "also measure with every broadcast recorded to disk",
        {"KITCH_RECORDINGS": "on"},
        0.10,
    ),
}


@dataclass
class Run:
    label: str
    streams: int
    cpu: list[float]  # server CPU-seconds per second (fraction of a core), one per slice
    rss_per_stream: float

    @property
    def total(self) -> float:
        return statistics.fmean(self.cpu)

    @property
    def mean(self) -> float:
        """CPU-seconds per stream-second."""
        return self.total / max(1, self.streams)

    @property
    def noise(self) -> float:
        """Spread (stdev) of the per-stream figure across slices."""
        return statistics.stdev(self.cpu) / max(1, self.streams) if len(self.cpu) > 1 else 0.0

    def describe(self) -> str:
        if not self.streams:
            return (
                f"{self.label}: server {self.total * 100:.2f} % of a core "
                f"(+/- {statistics.stdev(self.cpu) * 100 if len(self.cpu) > 1 else 0:.2f})"
            )
        return (
            f"{self.label}: {self.mean * 100:.2f} % of a core per stream "
            f"(+/- {self.noise * 100:.2f} over {len(self.cpu)} slices), "
            f"RSS +{self.rss_per_stream / 2**20:.1f} MiB per stream"
        )


def measure(
    label: str,
    pid: int,
    procs: list[subprocess.Popen[bytes]],
    window: float,
    slices: int,
    cpu: Callable[[int], float],
    rss: Callable[[int], int],
    rss0: int,
) -> Run:
    """Sample the server's CPU over ``window`` seconds in ``slices`` parts."""
    per: list[float] = []
    step = window / slices
    for _ in range(slices):
        c0, t0 = cpu(pid), time.monotonic()
        time.sleep(step)
        per.append((cpu(pid) - c0) / (time.monotonic() - t0))
    dead = [p for p in procs if p.poll() is not None]
    if dead:
        err = dead[0].stderr.read().decode(errors="replace") if dead[0].stderr else ""
        raise RuntimeError(f"{label}: {len(dead)} publisher(s) died: {err[-400:]}")
    return Run(label, len(procs), per, (rss(pid) - rss0) / max(1, len(procs)))


def media_label(media: Media) -> str:
    """How a run names its feed when it is not the plain one (B-frames)."""
    return ", B-frames" if "-bf" in media.path.name else ""


def kitch_run(
    media: Media,
    n: int,
    window: float,
    warmup: float,
    slices: int,
    hostile: int = 0,
    option: str | None = None,
) -> tuple[Run, list[str]]:
    env = dict(PASSTHROUGH_ONLY)
    if option is not None:
        env.update(OPTIONS[option][1])
    with Kitch(env) as k:
        urls = [k.publish_url(f"pub{i}") for i in range(n)]
        rss0 = rss_bytes(k.pid)
        procs = [ffmpeg_publish(url, media) for url in urls]
        try:
            for i in range(n):
                k.server.wait_for(
                    lambda i=i: k.server.channel(f"pub{i}")["live"], 15, f"pub{i} live"
                )
            label = f"kitch, {n} publisher(s){media_label(media)}" + (
                f" + {hostile} hostile" if hostile else ""
            )
            if option is not None:
                label += f" + {option}"
            if not n:
                label = f"kitch, {hostile} hostile sockets alone" if hostile else "kitch, idle"
            if not hostile:
                time.sleep(warmup)
                run = measure(label, k.pid, procs, window, slices, cpu_seconds, rss_bytes, rss0)
                report = []
            else:
                with HostilePeers(k.server.rtmp_port, hostile) as peers:
                    time.sleep(warmup)
                    run = measure(label, k.pid, procs, window, slices, cpu_seconds, rss_bytes, rss0)
                report = [f"hostile {line}" for line in peers.report()]
        finally:
            for p in procs:
                stop_process(p)
        return run, report + ([native_share(k.server, n)] if n else [])


def show(run: Run, report: list[str]) -> None:
    print(run.describe())
    for line in report:
        print("  " + line, flush=True)


@dataclass
class ThumbnailsRun:
    run: Run
    interval: float
    pictures_per_second: float  # per stream, over the window
    encode_ms: list[float]  # each stream's newest picture (CPU ms, from its health)


def kitch_thumbnails_run(
    media: Media, n: int, window: float, warmup: float, slices: int, interval: float
) -> ThumbnailsRun:
    """``n`` publishers into a fresh server making thumbnails every ``interval`` seconds."""
    env = {**PASSTHROUGH_ONLY, "KITCH_THUMBNAIL_INTERVAL": f"{interval:g}"}
    with Kitch(env) as k:
        accounts = [k.server.create_account(f"pub{i}") for i in range(n)]
        rss0 = rss_bytes(k.pid)
        procs = [ffmpeg_publish(k.server.rtmp_url(a.stream_key), media) for a in accounts]

        def thumbnails(i: int) -> dict[str, Any]:
            status, health = k.server.request(
                "GET", f"/api/v1/channels/pub{i}/health", token=accounts[i].access_token
            )
            return dict(health.get("thumbnails") or {}) if status == 200 else {}

        try:
            for i in range(n):
                k.server.wait_for(
                    lambda i=i: thumbnails(i).get("made", 0) >= 1, 20, f"pub{i} thumbnail"
                )
            time.sleep(warmup)
            made0, t0 = [thumbnails(i)["made"] for i in range(n)], time.monotonic()
            run = measure(
                f"kitch + thumbnails every {interval:g} s, {n} publisher(s)",
                k.pid,
                procs,
                window,
                slices,
                cpu_seconds,
                rss_bytes,
                rss0,
            )
            after = [thumbnails(i) for i in range(n)]
            elapsed = time.monotonic() - t0
            made = sum(h["made"] for h in after) - sum(made0)
            return ThumbnailsRun(
                run, interval, made / n / elapsed, [float(h["encode_ms"]) for h in after]
            )
        finally:
            for p in procs:
                stop_process(p)


def describe_thumbnails(base: Run, t: ThumbnailsRun) -> list[str]:
    """The CPU thumbnails add per stream, against passthrough alone (``base``)."""
    added = t.run.mean - base.mean
    noise = base.noise + t.run.noise
    per_picture = added / t.pictures_per_second if t.pictures_per_second else float("nan")
    at_default = per_picture / DEFAULT_INTERVAL
    return [
        t.run.describe(),
        f"  {t.pictures_per_second * 60:.1f} pictures a minute per stream; newest picture's "
        f"CPU (health encode_ms) median {statistics.median(t.encode_ms):.1f} ms",
        f"  thumbnails add {added * 100:.2f} % of a core per stream (+/- {noise * 100:.2f}) "
        f"every {t.interval:g} s = {added / base.mean:.2f}x passthrough alone "
        f"({base.mean * 100:.2f} %); {per_picture * 1000:.1f} ms of CPU per picture",
        f"  at the default {DEFAULT_INTERVAL:g} s interval: {at_default * 100:.3f} % of a core "
        f"per stream = {at_default / base.mean:.3f}x passthrough alone; aim < 1 %: "
        f"{verdict(at_default < 0.01)}",
    ]


def nginx_run(
    media: Media, n: int, window: float, warmup: float, slices: int, disk: bool = False
) -> Run:
    """``n`` publishers into nginx-rtmp, its HLS fragments on /dev/shm (``disk``: in a
    temporary directory on the disk, under /var/tmp)."""
    port = free_port()
    with contextlib.ExitStack() as stack:
        hls = "{dir}/hls"
        if disk:
            hls = stack.enter_context(tempfile.TemporaryDirectory(prefix="kitch-bench-", dir=DISK))
        ng = stack.enter_context(Nginx(nginx_rtmp_hls_conf(port, hls), modules=(RTMP_MODULE,)))
        where = " on disk" if disk else ""
        ng.start(port)
        time.sleep(0.3)
        rss0 = tree_rss_bytes(ng.pid)
        procs = [ffmpeg_publish(f"rtmp://127.0.0.1:{port}/live/pub{i}", media) for i in range(n)]
        try:
            time.sleep(1.0 + warmup)
            return measure(
                f"nginx-rtmp hls{where}, {n} publisher(s){media_label(media)}",
                ng.pid,
                procs,
                window,
                slices,
                tree_cpu_seconds,
                tree_rss_bytes,
                rss0,
            )
        finally:
            for p in procs:
                stop_process(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny media, short runs (CI smoke)")
    ap.add_argument("--seconds", type=float, default=30.0, help="measured window (30)")
    ap.add_argument("--publishers", type=int, default=8, help="publishers of the big run (8)")
    ap.add_argument("--hostile", type=int, default=48, help="hostile sockets (48; 0: no runs)")
    ap.add_argument(
        "--bframes",
        type=int,
        default=0,
        help="also the 1 and N publisher runs (kitch and nginx) with a feed of this many "
        "B-frames (x264 -bf; PTS != DTS)",
    )
    ap.add_argument(
        "--nginx-disk",
        action="store_true",
        help=f"also nginx-rtmp with its HLS fragments on disk ({DISK}), beside /dev/shm",
    )
    ap.add_argument(
        "--with",
        dest="outputs",
        action="append",
        default=[],
        choices=WITH_CHOICES,
        help="also measure what this output adds to passthrough (repeatable)",
    )
    ap.add_argument(
        "--thumbnail-interval",
        type=float,
        default=2.0,
        help="seconds between thumbnails in the --with thumbnails runs (2)",
    )
    for name, (text, _, _) in OPTIONS.items():
        ap.add_argument(f"--{name}", action="store_true", help=text)
    args = ap.parse_args()
    options = [name for name in OPTIONS if getattr(args, name)]
    print(machine())
    media = media_for(args.quick)
    n, hostile = (2, 6) if args.quick else (args.publishers, args.hostile)
    window, warmup = (1.5, 0.5) if args.quick else (args.seconds, 5.0)
    slices = 3 if args.quick else 6
    print(f"media: {media.path.name}, window {window:g} s after {warmup:g} s warm-up")
    counts = (n,) if args.quick else (1, n)
    runs: dict[tuple[str, int], Run] = {}
    # the server with no publisher: what every figure below carries whatever the streams
    idle, _ = kitch_run(media, 0, window, warmup, slices)
    print(idle.describe(), flush=True)
    thumbnail_runs: dict[int, ThumbnailsRun] = {}
    for c in counts:
        run, report = kitch_run(media, c, window, warmup, slices)
        runs["kitch", c] = run
        show(run, report)
        if "thumbnails" in args.outputs:
            interval = 1.0 if args.quick else args.thumbnail_interval
            thumbnail_runs[c] = kitch_thumbnails_run(media, c, window, warmup, slices, interval)
            for line in describe_thumbnails(run, thumbnail_runs[c]):
                print(line, flush=True)
        for option in options:
            run, report = kitch_run(media, c, window, warmup, slices, option=option)
            runs[option, c] = run
            show(run, report)
    # B-frame variants: (kitch run, nginx runs by where) per count
    bruns: dict[tuple[str, int], Run] = {}
    bmedia = make_media(bframes=args.bframes) if args.bframes and not args.quick else None
    if bmedia is not None:
        for c in counts:
            bruns["kitch", c], report = kitch_run(bmedia, c, window, warmup, slices)
            show(bruns["kitch", c], report)
    hostile_run = alone = None
    if hostile:
        hostile_run, report = kitch_run(media, n, window, warmup, slices, hostile)
        show(hostile_run, report)
        alone, report = kitch_run(media, 0, window, warmup, slices, hostile)
        show(alone, report)
    if nginx_rtmp_available():
        for c in counts:
            for disk in (False, True) if args.nginx_disk else (False,):
                key = "nginx-disk" if disk else "nginx"
                runs[key, c] = nginx_run(media, c, window, warmup, slices, disk)
                print(runs[key, c].describe(), flush=True)
                if bmedia is not None:
                    bruns[key, c] = nginx_run(bmedia, c, window, warmup, slices, disk)
                    print(bruns[key, c].describe(), flush=True)
    else:
        print(f"nginx-rtmp: {NOT_INSTALLED} ({SETUP_HINT})")
    print("summary:")
    for table, feed in ((runs, ""), (bruns, f", {args.bframes} B-frames")):
        for c in counts:
            k = table.get(("kitch", c))
            if k is None:
                continue
            ng = table.get(("nginx", c))
            marginal = (k.total - idle.total) / c
            split = (
                f"    of which the idle server {idle.total * 100:.2f} % of a core; each stream "
                f"adds {marginal * 100:.2f} %"
            )
            if ng is None:
                print(
                    f"  {c} publisher(s){feed}: kitch {k.mean * 100:.2f} % core/stream "
                    "(no baseline)"
                )
                print(split)
                continue
            # A --quick window can be too short for the clock-tick CPU counters to see nginx.
            vs = f"{k.mean / ng.mean:.2f}x" if ng.mean > 0 else "n/a (baseline below one tick)"
            nd = table.get(("nginx-disk", c))
            on_disk = (
                f"; nginx-rtmp on disk {nd.mean * 100:.2f} % = {k.mean / nd.mean:.2f}x"
                if nd is not None and nd.mean > 0
                else ""
            )
            print(
                f"  {c} publisher(s){feed}: kitch {k.mean * 100:.2f} vs nginx-rtmp "
                f"{ng.mean * 100:.2f} % of a core per stream = {vs}{on_disk}; aim <= 1x: "
                f"{verdict(k.mean <= ng.mean + max(k.noise, ng.noise))}"
            )
            print(split + (f" (vs nginx-rtmp: {marginal / ng.mean:.2f}x)" if ng.mean > 0 else ""))
    for c, t in thumbnail_runs.items():
        print(f"  {c} publisher(s) with thumbnails:")
        for line in describe_thumbnails(runs["kitch", c], t)[2:]:
            print("  " + line)
    for option in options:
        aim = OPTIONS[option][2]
        for c in counts:
            alone, more = runs["kitch", c], runs[option, c]
            added = more.mean - alone.mean
            noise = more.noise + alone.noise
            ratio = added / alone.mean if alone.mean > 0 else float("nan")
            print(
                f"  {c} publisher(s) + {option}: {more.mean * 100:.2f} vs passthrough alone "
                f"{alone.mean * 100:.2f} % of a core per stream: adds {added * 100:+.2f} "
                f"(+/- {noise * 100:.2f}) = {ratio * 100:+.1f} % of the passthrough's CPU; "
                f"aim < {aim * 100:.0f} %: {verdict(added <= aim * alone.mean + noise)}"
            )
    if hostile_run is None or alone is None:
        return
    base = runs["kitch", n]
    # The publishers' share beside the hostile sockets: the server's CPU less what the same
    # hostile sockets cost it with no publisher at all, per stream.
    beside = hostile_run.mean - alone.total / n
    moved = beside - base.mean
    noise = 2 * (base.noise + hostile_run.noise + alone.noise / n)
    print(
        f"  {n} publishers alone {base.mean * 100:.2f} % of a core per stream; beside {hostile} "
        f"hostile sockets {hostile_run.mean * 100:.2f} % including their handling, "
        f"{beside * 100:.2f} % without it (the hostile sockets alone cost "
        f"{alone.total * 100:.2f} % of a core): moved {moved * 100:+.2f} (noise +/- "
        f"{noise * 100:.2f}); aim within noise: {verdict(abs(moved) <= noise)}"
    )


if __name__ == "__main__":
    main()
