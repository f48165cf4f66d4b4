"""HLS serving speed: wrk against kitch's live segment and playlist, and nginx on the same bytes.

Run from the repository root after the Cython build; needs ``apt-get install -y nginx wrk``::

    python3 benchmarks/bench_serve.py [--quick] [--seconds 5] [--rounds 3] [--connections 16]

A real ``kitch serve`` takes one real-time publisher (``ffmpeg -re -stream_loop -1 -c copy`` of
the 10 s 1080p 6 Mb/s FLV from .bench-cache/). Each round picks the newest complete segment of
the live ``source`` rendition and the live media playlist (plain GET, no blocking reload, no
gzip since wrk sends no Accept-Encoding), copies the same bytes into a static root served by
nginx (one worker, sendfile, keep-alive unlimited, access log off), and runs
``wrk -t1 -cC -dS --latency`` on the four URLs. Kitch is one process on one event loop, so
nginx gets one worker too. Figures: each target's best round (requests/s, latency p50/p99),
and kitch over nginx as the median of the per-round ratios (each round measures both on the
same bytes at the same moment). Aims: segments at least as fast as nginx; playlists at least
half as fast. ``--hls-workers K`` starts kitch with K HLS worker processes and measures the same
URLs on their port too (``kitch worker ...``; wrk still has one thread and 16 connections).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import urllib.request
from dataclasses import dataclass

import m3u8
from _common import (
    NGINX,
    NOT_INSTALLED,
    SETUP_HINT,
    Kitch,
    Nginx,
    ffmpeg_publish,
    free_port,
    machine,
    media_for,
    stop_process,
    verdict,
)

WRK = shutil.which("wrk")
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass
class WrkResult:
    rps: float
    p50: float
    p99: float
    errors: int
    size: int

    def describe(self) -> str:
        err = f", {self.errors} non-2xx/errors" if self.errors else ""
        return (
            f"{self.rps:9.0f} req/s  p50 {self.p50 * 1000:7.2f} ms  p99 {self.p99 * 1000:7.2f} ms"
            f"  ({self.size / 1e3:.1f} kB body{err})"
        )


def _duration(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def wrk(url: str, seconds: float, connections: int, size: int) -> WrkResult:
    assert WRK is not None
    out = subprocess.run(
        [WRK, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return WrkResult(rps, _duration(pct.get("50", "")), _duration(pct.get("99", "")), errors, size)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        body: bytes = resp.read()
        return body


def newest_segment(playlist_url: str, at_least: int = 1) -> str:
    """URL of the newest complete segment listed in the live media playlist (once it lists
    ``at_least`` complete segments)."""
    pl = m3u8.loads(fetch(playlist_url).decode(), uri=playlist_url)
    full = [s for s in pl.segments if s.uri]
    if len(full) < at_least:
        raise LookupError("not enough complete segments yet")
    return str(full[-1].absolute_uri)


def nginx_conf(port: int) -> str:
    return (
        "http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;\n"
        "  types { application/vnd.apple.mpegurl m3u8; video/iso.segment m4s; }\n"
        "  server { listen 127.0.0.1:PORT; root {dir}/www; } }\n"
    ).replace("PORT", str(port))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny media, 1 s runs (CI smoke)")
    ap.add_argument("--seconds", type=float, default=5.0, help="wrk duration per URL (5)")
    ap.add_argument("--rounds", type=int, default=3, help="best of N rounds (3)")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    ap.add_argument(
        "--hls-workers",
        type=int,
        default=0,
        help="also measure the same URLs on K HLS worker processes' port (0: main port only)",
    )
    args = ap.parse_args()
    print(machine())
    if WRK is None:
        print(f"wrk: not installed, nothing to measure ({SETUP_HINT})")
        return
    media = media_for(args.quick)
    seconds, rounds = (1.0, 1) if args.quick else (args.seconds, args.rounds)
    print(
        f"media: {media.path.name}; wrk -t1 -c{args.connections} -d{seconds:g}s, best of {rounds}"
    )
    ng: Nginx | None = None
    port = free_port()
    if NGINX is not None:
        ng = Nginx(nginx_conf(port))
        (ng.dir / "www").mkdir()
    best: dict[str, WrkResult] = {}
    ratios: dict[str, list[float]] = {"segment": [], "playlist": []}
    env: dict[str, str] = {}
    hls_port = 0
    if args.hls_workers:
        hls_port = free_port()
        env = {
            "KITCH_HLS_WORKERS": str(args.hls_workers),
            "KITCH_HLS_PORT": str(hls_port),
        }
        ratios.update({"worker segment": [], "worker playlist": []})
    with Kitch(env) as k:
        url = k.publish_url("serve")
        pub = ffmpeg_publish(url, media)
        try:
            playlist = f"{k.server.base}/hls/serve/source/index.m3u8"
            # a playlist of a few segments, as viewers see it in steady state
            need = 1 if args.quick else 3
            k.server.wait_for(lambda: _ready(playlist, need), 40, "live segments", 0.2)
            if ng is not None:
                ng.start(port)
            else:
                print(f"nginx: {NOT_INSTALLED} ({SETUP_HINT})")
            for _ in range(rounds):
                seg_url = newest_segment(playlist)
                seg, pl = fetch(seg_url), fetch(playlist)
                targets = {
                    "kitch segment": (seg_url, len(seg)),
                    "kitch playlist": (playlist, len(pl)),
                }
                if hls_port:
                    on_workers = f"http://127.0.0.1:{hls_port}"
                    main_base = k.server.base
                    targets["kitch worker segment"] = (
                        seg_url.replace(main_base, on_workers),
                        len(seg),
                    )
                    targets["kitch worker playlist"] = (
                        playlist.replace(main_base, on_workers),
                        len(pl),
                    )
                if ng is not None:
                    www = ng.dir / "www"
                    (www / "seg.m4s").write_bytes(seg)
                    (www / "index.m3u8").write_bytes(pl)
                    base = f"http://127.0.0.1:{port}"
                    targets["nginx segment"] = (f"{base}/seg.m4s", len(seg))
                    targets["nginx playlist"] = (f"{base}/index.m3u8", len(pl))
                got: dict[str, WrkResult] = {}
                for name, (u, size) in targets.items():
                    r = got[name] = wrk(u, seconds, args.connections, size)
                    print(f"{name:21s} {r.describe()}", flush=True)
                    if name not in best or r.rps > best[name].rps:
                        best[name] = r
                for what, values in ratios.items():
                    kind = what.split()[-1]
                    if f"nginx {kind}" in got:
                        values.append(got[f"kitch {what}"].rps / got[f"nginx {kind}"].rps)
            if pub.poll() is not None:
                raise RuntimeError("the publisher died during the run")
        finally:
            stop_process(pub)
            if ng is not None:
                ng.stop()
    print("summary (best round):")
    for name, res in best.items():
        print(f"  {name:21s} {res.describe()}")
    aims = {
        "segment": 1.0,
        "playlist": 0.5,
        "worker segment": 1.0,
        "worker playlist": 0.5,
    }
    for what, values in ratios.items():
        aim = aims[what]
        kr, nr = best[f"kitch {what}"], best.get(f"nginx {what.split()[-1]}")
        if nr is None:
            print(f"  {what}s: kitch {kr.rps:.0f} req/s, nginx {NOT_INSTALLED}")
            continue
        mid = statistics.median(values)  # same bytes, same moment: per-round ratios
        print(
            f"  {what}s: kitch/nginx {mid:.2f}x req/s (median of {len(values)} rounds; "
            f"best rounds {kr.rps / nr.rps:.2f}x; p99 {kr.p99 * 1000:.2f} vs "
            f"{nr.p99 * 1000:.2f} ms); aim >= {aim:g}x: {verdict(mid >= aim)}"
        )


def _ready(playlist: str, at_least: int) -> bool:
    try:
        newest_segment(playlist, at_least)
    except (LookupError, OSError):
        return False
    return True


if __name__ == "__main__":
    main()
