"""Memory per live stream: the server's RSS growth against the bytes the stream's window holds.

Run from the repository root after the Cython build::

    python3 benchmarks/bench_memory.py [--quick] [--publishers 1,8] [--ladder]
        [--media 1080p|720p] [--fill 30] [--samples 5]

Each run is a fresh ``kitch serve`` (passthrough alone: no ladder, thumbnails or recordings;
``--ladder`` adds runs with the default ladder on) into which N publishers send
``ffmpeg -re -stream_loop -1 -c copy -f flv`` of a cached fixture (``1080p``: 6 Mb/s H.264 +
AAC, ``720p``: 2.5 Mb/s). RSS is read before publishing; once every channel is live the script
waits ``--fill`` seconds (default: the window plus its retention, 2 x segment count x 2 s, plus
6 s) so the window and the departed segments have reached their steady size, then takes
``--samples`` samples one second apart of the server's RSS (with its children) and each
stream's health (``window_bytes``: listed segments and parts plus the init, summed over the
stream's renditions; ``bytes_held``: that plus the departed segments kept for the retention).

Figures per stream, means over the samples: RSS growth ((RSS - RSS before publishing) / N)
printed beside the bytes held, split into the listed window and the departed segments, and the
aim's figure RSS growth / (bytes held + 1 MiB) <= 1.3x: the bytes held are what the window and
its retention settings oblige the stream to keep (HLS requires a segment that left the playlist
to stay fetchable about one playlist duration, so with the default retention the departed
segments weigh as much as the listed window). The same run's baseline is the store's own byte
count: RSS is the truth, the health figures only say what the store believes it holds. RSS /
(listed window + 1 MiB) is printed too; ``--retention`` shortens the retention to see it fall.

``--quick`` (CI smoke): 320x240 600 kb/s, 2 publishers, a 2-segment window kept 2 s after it
departs (``KITCH_HLS_SEGMENT_COUNT`` / ``KITCH_HLS_DEPARTED_RETENTION``), a few seconds only.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from _common import (
    Kitch,
    Media,
    ffmpeg_publish,
    machine,
    make_media,
    media_for,
    stop_process,
    tree_rss_bytes,
    verdict,
)

MIB = 1024 * 1024
AIM = 1.3
#: The passthrough alone; ``--ladder`` runs turn the default ladder on over it.
PASSTHROUGH_ONLY = {
    "KITCH_LADDER": "off",
    "KITCH_THUMBNAIL_INTERVAL": "0",
    "KITCH_RECORDINGS": "off",
    "KITCH_RTMP_MAX_CONNECTIONS_PER_IP": "1000",  # every publisher comes from 127.0.0.1
}
LADDER_ON = {"KITCH_LADDER": "720p:720:3000,480p:480:1400,360p:360:800"}


@dataclass
class Run:
    label: str
    streams: int
    rss_growth: list[float]  # per stream, one per sample
    window: list[float]  # mean window bytes per stream, one per sample
    held: list[float]  # mean bytes held per stream, one per sample

    @property
    def rss(self) -> float:
        return statistics.fmean(self.rss_growth)

    @property
    def window_bytes(self) -> float:
        return statistics.fmean(self.window)

    @property
    def held_bytes(self) -> float:
        return statistics.fmean(self.held)

    @property
    def ratio(self) -> float:
        """RSS growth / (what the window and its retention hold + 1 MiB): the aim's figure."""
        return self.rss / (self.held_bytes + MIB)

    @property
    def listed_ratio(self) -> float:
        """RSS growth / (the listed window alone + 1 MiB)."""
        return self.rss / (self.window_bytes + MIB)

    def describe(self) -> str:
        spread = statistics.stdev(self.rss_growth) if len(self.rss_growth) > 1 else 0.0
        return (
            f"{self.label}: RSS +{self.rss / MIB:.2f} MiB per stream (+/- {spread / MIB:.2f}); "
            f"held {self.held_bytes / MIB:.2f} MiB = listed window {self.window_bytes / MIB:.2f}"
            f" MiB + departed {(self.held_bytes - self.window_bytes) / MIB:.2f} MiB; "
            f"RSS / (held + 1 MiB) = {self.ratio:.2f}x (aim <= {AIM}x: "
            f"{verdict(self.ratio <= AIM)}); RSS / (listed window + 1 MiB) = "
            f"{self.listed_ratio:.2f}x"
        )


def health(k: Kitch, name: str, token: str) -> dict[str, Any]:
    answer: dict[str, Any] = k.server.get(f"/api/v1/channels/{name}/health", token=token)
    return answer


def stream_bytes(document: dict[str, Any]) -> tuple[int, int]:
    """(window bytes, bytes held) of one stream, summed over its renditions."""
    renditions = document.get("renditions") or []
    window = sum(int(r.get("window_bytes") or 0) for r in renditions)
    held = sum(int(r.get("bytes_held") or 0) for r in renditions)
    return window, held


def run(media: Media, n: int, fill: float, samples: int, env: dict[str, str], label: str) -> Run:
    with Kitch(env) as k:
        accounts = [k.server.create_account(f"pub{i}") for i in range(n)]
        time.sleep(1.0)  # let the server settle after the sign-ups
        rss0 = tree_rss_bytes(k.pid)
        procs: list[subprocess.Popen[bytes]] = [
            ffmpeg_publish(k.server.rtmp_url(a.stream_key), media) for a in accounts
        ]
        try:
            for a in accounts:
                k.server.wait_for(
                    lambda a=a: k.server.channel(a.username)["live"], 20, f"{a.username} live"
                )
            time.sleep(fill)
            growth: list[float] = []
            window: list[float] = []
            held: list[float] = []
            for i in range(samples):
                if i:
                    time.sleep(1.0)
                figures = [stream_bytes(health(k, a.username, a.access_token)) for a in accounts]
                growth.append((tree_rss_bytes(k.pid) - rss0) / n)
                window.append(statistics.fmean(w for w, _ in figures))
                held.append(statistics.fmean(h for _, h in figures))
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                err = dead[0].stderr.read().decode(errors="replace") if dead[0].stderr else ""
                raise RuntimeError(f"{label}: {len(dead)} publisher(s) died: {err[-400:]}")
            return Run(label, n, growth, window, held)
        finally:
            for p in procs:
                stop_process(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny CI smoke run")
    ap.add_argument("--publishers", default="1,8", help="comma-separated stream counts")
    ap.add_argument("--ladder", action="store_true", help="also run with the ladder on")
    ap.add_argument("--media", choices=("1080p", "720p"), default="1080p")
    ap.add_argument("--fill", type=float, default=None, help="seconds after going live")
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument(
        "--retention",
        type=float,
        default=None,
        help="KITCH_HLS_DEPARTED_RETENTION in seconds (default: the server's, one playlist)",
    )
    args = ap.parse_args()

    env = dict(PASSTHROUGH_ONLY)
    if args.retention is not None:
        env["KITCH_HLS_DEPARTED_RETENTION"] = f"{args.retention:g}"
    if args.quick:
        media = media_for(True)
        counts = [2]
        env.update({"KITCH_HLS_SEGMENT_COUNT": "2", "KITCH_HLS_DEPARTED_RETENTION": "2"})
        fill = 6.0 if args.fill is None else args.fill
        samples = min(args.samples, 2)
    else:
        media = (
            make_media()
            if args.media == "1080p"
            else make_media(width=1280, height=720, video_kbps=2500)
        )
        counts = [int(x) for x in args.publishers.split(",") if x.strip()]
        fill = 2 * 6 * 2.0 + 6.0 if args.fill is None else args.fill
        samples = args.samples
    print(machine())
    print(
        f"media: {media.width}x{media.height} {media.fps} fps, {media.video_kbps} kb/s video "
        f"+ 128 kb/s AAC ({media.path.name}); fill {fill:g} s, {samples} sample(s)"
    )
    runs: list[Run] = []
    for n in counts:
        r = run(media, n, fill, samples, env, f"kitch, {n} stream(s), ladder off")
        print(r.describe(), flush=True)
        runs.append(r)
    if args.ladder and not args.quick:
        r = run(media, 1, fill, samples, {**env, **LADDER_ON}, "kitch, 1 stream(s), ladder on")
        print(r.describe(), flush=True)
        runs.append(r)
    worst = max(runs, key=lambda r: r.ratio)
    print(
        f"summary: worst RSS / (held + 1 MiB) = {worst.ratio:.2f}x ({worst.label}); "
        f"aim <= {AIM}x: {verdict(worst.ratio <= AIM)}"
    )


if __name__ == "__main__":
    main()
