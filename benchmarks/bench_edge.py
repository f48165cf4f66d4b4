"""LL-HLS viewers through the caching nginx edge (deploy/nginx/kitch-edge.conf) and straight.

Run from the repository root after the Cython build (``apt-get install -y nginx``)::

    python3 benchmarks/bench_edge.py [--quick] [--viewers 1000] [--seconds 20] [--clients 4]
        [--ramp 5] [--locks 40s:40s,250ms:20ms]

One fresh ``kitch serve`` (passthrough alone) takes one publisher (``ffmpeg -re -stream_loop -1
-c copy`` of the cached 720p 2.5 Mb/s fixture of bench_viewers, 2 s GOP: 2 s segments, 0.2 s
parts). The same N simulated hls.js low-latency viewers of bench_viewers (imported from it:
blocking reload for the next part, then the part, one keep-alive connection each, browser
headers, their own 127.2.x.y addresses, spread over ``--clients`` processes) then play it:

1. straight from the origin (the baseline, in the same run);
2. through the edge, once per ``--locks`` entry ``PLAYLIST:MEDIA``: the edge's
   ``proxy_cache_lock_timeout`` for playlists (blocking reloads) and for parts. nginx's cache
   lock waiters do not get woken when the entry they wait for is stored: each re-checks on a
   timer, after min(500 ms, its lock timeout) and every 500 ms after that
   (ngx_http_file_cache.c), and a waiter whose lock timeout passed goes to the origin itself,
   uncached. So a long lock (the default, 40 s) means one origin request per part and up to
   500 ms more for the crowd; a short one bounds the wait and lets a few requests through.

The edge is a real nginx (one worker, access log off) with the rendered config, a fresh
cache on /dev/shm per run. Measured over ``--seconds`` after the viewers joined:

* origin /hls requests per new part (the origin's ``kitch_http_requests_total{area="hls"}``;
  parts from the origin's playlist at both ends of the window); each part costs a viewer one
  blocking reload and one part fetch, so 2 per part is the floor through an edge (aim: one of
  each per part, i.e. 1 per part and kind);
* origin CPU (``/proc``, with the ingest: the no-viewer CPU is printed beside it), edge CPU
  (master + worker);
* viewer delays as bench_viewers measures them: listed -> received (the reload that lists the
  part returned -> the part's last byte), fan-out (the first moment any viewer saw the part
  listed -> this viewer has it: the lock's wait on a blocking reload shows here), media end by
  PROGRAM-DATE-TIME -> received; join time; errors;
* ratios edge / direct.

``--quick`` (CI smoke): 20 viewers, 320x240 600 kb/s, 3 s windows, the default locks only.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.edge.nginx

from _common import (
    NO_BASELINE,
    NOT_INSTALLED,
    SETUP_HINT,
    Kitch,
    cpu_seconds,
    ffmpeg_publish,
    machine,
    make_media,
    media_for,
    ratio,
    stop_process,
    tree_cpu_seconds,
    verdict,
)
from bench_viewers import PASSTHROUGH_ONLY, Phase, add_run_arguments, pct, run_viewers

from tests.edge.nginx import NGINX, EdgeNginx, hls_requests

CHANNEL = "viewers"  # the simulator's Referer names this channel
AIM_PER_PART = 1.0  # origin requests per part and kind (one blocking reload, one part)


def next_part_number(base: str) -> int:
    """The number of the origin's next part (its preload hint): parts are numbered in order
    through the broadcast (``{broadcast}-p{n}.m4s``)."""
    with urllib.request.urlopen(f"{base}/hls/{CHANNEL}/source/index.m3u8", timeout=10) as resp:
        text = resp.read().decode()
    m = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="[0-9a-f]+-p(\d+)\.m4s"', text)
    if m is None:
        raise ValueError("no preload hint in the playlist")
    return int(m.group(1))


class Meter:
    """The ``cpu_of`` callable run_viewers samples at both ends of its window: it returns the
    CPU of the process it was given (the phase's server) and notes the origin's CPU, its /hls
    request count and its playlist position beside it."""

    def __init__(self, origin_base: str, origin_pid: int) -> None:
        self.base, self.origin_pid = origin_base, origin_pid
        self.samples: list[tuple[float, float, int]] = []

    def __call__(self, pid: int) -> float:
        own = tree_cpu_seconds(pid) if pid != self.origin_pid else cpu_seconds(pid)
        self.samples.append(
            (cpu_seconds(self.origin_pid), hls_requests(self.base), next_part_number(self.base))
        )
        return own

    def window(self) -> tuple[float, float, int]:
        """(origin CPU s, origin /hls requests, new parts) between the last two samples; the
        meter's own position reads (one per sample) are taken off the requests."""
        (c0, r0, p0), (c1, r1, p1) = self.samples[-2:]
        return c1 - c0, r1 - r0 - 1, p1 - p0


@dataclass
class Run:
    label: str
    phase: Phase
    origin_cpu: float  # seconds in the window
    origin_requests: float
    parts: int

    @property
    def per_part(self) -> float:
        return self.origin_requests / self.parts if self.parts else float("nan")

    def describe(self, idle: float) -> str:
        s = self.phase.seconds
        return (
            f"  origin: CPU {self.origin_cpu:.2f} s = {self.origin_cpu / s * 100:.1f} % of a core "
            f"(no viewers: {idle * 100:.1f} %); {self.origin_requests:,.0f} /hls requests for "
            f"{self.parts} new parts = {self.per_part:.2f} per part "
            f"({self.per_part / 2:.2f} per part and kind; floor 1)"
        )


def _live(base: str) -> bool:
    try:
        return next_part_number(base) >= 20
    except (OSError, ValueError):
        return False


def run(args: argparse.Namespace, media: Any, locks: list[tuple[str, str]]) -> list[Run]:
    n = args.viewers
    env = {**PASSTHROUGH_ONLY, "KITCH_HTTP_MAX_CONNECTIONS": str(n + 200)}
    runs: list[Run] = []
    with Kitch(env) as k:
        base = k.server.base
        pub = ffmpeg_publish(k.publish_url(CHANNEL), media)
        try:
            k.server.wait_for(lambda: _live(base), 40, "the live stream", 0.2)
            c0 = cpu_seconds(k.pid)
            time.sleep(args.idle)
            idle = (cpu_seconds(k.pid) - c0) / args.idle
            master = f"/hls/{CHANNEL}/master.m3u8"
            meter = Meter(base, k.pid)
            direct = run_viewers(
                "ll",
                "direct to the origin",
                k.server.http_port,
                master,
                k.pid,
                n,
                args,
                meter,
                idle,
            )
            runs.append(Run("direct", direct, *meter.window()))
            print("\n".join(direct.describe()), flush=True)
            print(runs[-1].describe(idle), flush=True)
            for playlist_lock, media_lock in locks:
                label = f"edge (lock timeouts: playlists {playlist_lock}, parts {media_lock})"
                edge = EdgeNginx(
                    origins=[f"127.0.0.1:{k.server.http_port}"],
                    access_log=False,
                    worker_connections=2 * n + 200,
                    playlist_lock_timeout=playlist_lock,
                    media_lock_timeout=media_lock,
                )
                with edge:
                    phase = run_viewers(
                        "ll", label, edge.port, master, edge.pid, n, args, meter, 0.0
                    )
                runs.append(Run(label, phase, *meter.window()))
                print("\n".join(phase.describe()), flush=True)
                print(runs[-1].describe(idle), flush=True)
            if pub.poll() is not None:
                raise RuntimeError("the publisher died during the run")
        finally:
            stop_process(pub)
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 viewers, tiny media, ~3 s (CI)")
    ap.add_argument("--viewers", type=int, default=1000, help="N (1000)")
    add_run_arguments(ap)
    ap.add_argument(
        "--locks",
        default="40s:40s,250ms:20ms",
        help="edge runs, each PLAYLIST:MEDIA proxy_cache_lock_timeout (40s:40s,250ms:20ms)",
    )
    args = ap.parse_args()
    print(machine(), flush=True)
    if NGINX is None or NO_BASELINE:
        print(f"edge: nginx {NOT_INSTALLED}, nothing to measure ({SETUP_HINT})")
        return
    locks = [tuple(x.split(":", 1)) for x in args.locks.split(",") if x.strip()]
    if args.quick:
        args.viewers, args.seconds, args.ramp, args.settle, args.idle = 20, 3.0, 1.0, 0.5, 0.5
        args.clients = 2
        if args.locks == ap.get_default("locks"):
            locks = locks[:1]
        media = media_for(True)
    else:
        media = make_media(width=1280, height=720, video_kbps=2500)
    print(
        f"media: {media.path.name} (ffmpeg -re -stream_loop -1 -c copy); {args.viewers} viewers; "
        f"window {args.seconds:g} s after a {args.ramp:g} s ramp + {args.settle:g} s; "
        f"{args.clients} client processes",
        flush=True,
    )
    runs = run(args, media, [(a, b) for a, b in locks])
    direct = runs[0]
    ms = 1000.0
    print("summary:")
    for r in runs[1:]:
        d, e = direct.phase, r.phase
        print(
            f"  {r.label}: origin requests per part {r.per_part:.2f} (direct {direct.per_part:.1f}:"
            f" {ratio(r.per_part, direct.per_part)}); origin CPU "
            f"{ratio(r.origin_cpu, direct.origin_cpu)} of direct; edge CPU {e.cores * 100:.1f} % "
            f"of a core ({ratio(e.cpu, direct.origin_cpu)} of the direct origin's); "
            f"p99 listed -> received {pct(e.delays, 0.99) * ms:.0f} ms "
            f"(direct {pct(d.delays, 0.99) * ms:.0f}), p99 fan-out {pct(e.fanout, 0.99) * ms:.0f}"
            f" ms (direct {pct(d.fanout, 0.99) * ms:.0f}: "
            f"{ratio(pct(e.fanout, 0.99), pct(d.fanout, 0.99))}), p99 from media end "
            f"{pct(e.pdt, 0.99) * ms:.0f} ms (direct {pct(d.pdt, 0.99) * ms:.0f}); join p99 "
            f"{pct(e.joins, 0.99) * ms:.0f} ms (direct {pct(d.joins, 0.99) * ms:.0f}); "
            f"{len(e.joins)} of {e.n} joined; errors "
            f"{sum(e.errors.values())} (direct {sum(d.errors.values())})"
        )
    for r in runs[1:]:
        ok = r.per_part / 2 <= AIM_PER_PART * 1.05
        print(
            f"summary: {r.label}: aim one origin request per part and kind: "
            f"{r.per_part / 2:.2f}: {verdict(ok)}"
        )


if __name__ == "__main__":
    main()
