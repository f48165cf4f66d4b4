"""The transcoding ladder: Kitch's PyAV ladder against the `ffmpeg` command line doing the same.

Both take the same 1080p30 H.264 + AAC input and produce the same three rungs (720p, 480p,
360p; the default ladder): decode once, scale each rung with bilinear swscale, encode each with
libx264 at the same preset, bitrate, VBV, level, no B-frames, no scene cuts, IDR frames at the
source's keyframes, one thread per codec; audio is copied. Printed as ratios from one run:

* CPU seconds and wall time of each, flat out (Kitch's threads against ffmpeg's process);
* Kitch in real time: packets paced as a publisher sends them, fed from an asyncio loop the way
  the ingest does, with the loop's lag sampled every 5 ms (p99) and the frames dropped.

Run from the repository root with the Cython build in place::

    python3 benchmarks/bench_ladder.py [--seconds 10] [--quick]

The two libx264 builds differ (PyAV's wheel bundles its own FFmpeg and x264; the command line is
Debian's), so part of any CPU difference is the encoder build, not the pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import NOT_INSTALLED, machine, make_media, ratio, verdict
from kitch.media import MediaPacket
from kitch.transcode.ladder import DEFAULT_RUNGS, Rung, RungPlan, plan_ladder, x264_params
from kitch.transcode.worker import LadderWorker
from tests.hls.packets import demux_packets

QUICK_RUNGS = (Rung("240p", 240, 400), Rung("160p", 160, 200))


def ffmpeg_ladder(path: Path, plans: list[RungPlan]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of the command line doing the same ladder to null outputs."""
    split = f"[0:v]split={len(plans)}" + "".join(f"[s{i}]" for i in range(len(plans)))
    scales = "".join(
        f";[s{i}]scale={p.width}:{p.height}:flags=bilinear,fps={p.fps:g}[v{i}]"
        for i, p in enumerate(plans)
    )
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-threads", "1"]
    cmd += ["-i", str(path), "-filter_complex", split + scales, "-filter_threads", "1"]
    for i, p in enumerate(plans):
        kbps = p.rung.video_kbps
        cmd += ["-map", f"[v{i}]", "-map", "0:a", "-c:a", "copy", "-c:v", "libx264"]
        cmd += ["-threads", "1", "-preset", p.rung.preset, "-profile:v", "main"]
        cmd += ["-b:v", f"{kbps}k", "-bf", "0", "-g", "100000", "-forced-idr", "1"]
        cmd += ["-force_key_frames", "source", "-x264-params", x264_params(p), "-f", "null", "-"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), wall


def kitch_flat_out(packets: list[MediaPacket], plans: list[RungPlan]) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, frames out) of the ladder fed as fast as it takes them."""
    frames = [0]
    lock = threading.Lock()

    def emit(name: str, out: list[MediaPacket]) -> None:
        with lock:
            frames[0] += sum(1 for p in out if not p.is_config)

    worker = LadderWorker("bench", plans, emit, input_queue=len(packets) + 1, frame_queue=10**6)
    cpu0, started = time.process_time(), time.perf_counter()
    worker.start()
    for p in packets:
        worker.put(p)
    worker.close(timeout=600)
    return time.process_time() - cpu0, time.perf_counter() - started, frames[0]


async def kitch_real_time(
    packets: list[MediaPacket], plans: list[RungPlan]
) -> tuple[list[float], LadderWorker, float, list[float]]:
    """Feed the ladder paced in real time from the event loop, sampling the loop's lag."""
    loop = asyncio.get_running_loop()
    sent: dict[int, float] = {}  # source video pts -> when it was handed to the ladder
    delays: list[float] = []

    def emitted(name: str, out: list[MediaPacket]) -> None:
        now = time.monotonic()
        delays.extend(now - sent[p.pts] for p in out if not p.is_config and p.pts in sent)

    worker = LadderWorker("bench", plans, emitted)
    worker.start()
    lags: list[float] = []

    async def sample() -> None:
        while True:
            t = loop.time()
            await asyncio.sleep(0.005)
            lags.append(max(0.0, loop.time() - t - 0.005))

    sampler = asyncio.create_task(sample())
    started = loop.time()
    first = packets[0].dts
    cpu0 = time.process_time()
    for p in packets:
        delay = started + (p.dts - first) / 1000 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if p.kind == "video" and not p.is_config:
            sent[p.pts] = time.monotonic()
        worker.put(p)
    await asyncio.to_thread(worker.close, 60)
    cpu = time.process_time() - cpu0
    sampler.cancel()
    return lags, worker, cpu, delays


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--quick", action="store_true", help="2 s at 640x360 (a CI smoke run)")
    args = ap.parse_args()
    print(machine())
    if args.quick:
        media = make_media(seconds=2.0, width=640, height=360, video_kbps=1000)
    else:
        media = make_media(seconds=args.seconds)
    rungs = QUICK_RUNGS if args.quick else DEFAULT_RUNGS
    plans = plan_ladder(media.width, media.height, media.fps, rungs)
    names = ", ".join(
        f"{p.name} {p.width}x{p.height}@{p.fps:g} {p.rung.video_kbps}k" for p in plans
    )
    print(f"input: {media.width}x{media.height}@{media.fps} {media.seconds:g} s; rungs: {names}")
    packets = demux_packets(media.path)

    cpu, wall, frames = kitch_flat_out(packets, plans)
    speed = media.seconds / wall
    print(f"kitch ladder, flat out: {cpu:.2f} CPU s, {wall:.2f} s wall ({speed:.2f}x real time)")
    if shutil.which("ffmpeg"):
        f_cpu, f_wall = ffmpeg_ladder(media.path, plans)
        f_speed = media.seconds / f_wall
        print(f"ffmpeg command line: {f_cpu:.2f} CPU s, {f_wall:.2f} s wall ({f_speed:.2f}x)")
        print(
            f"CPU: kitch/ffmpeg {ratio(cpu, f_cpu)} (aim <= 1.05x: {verdict(cpu <= 1.05 * f_cpu)});"
            f" speed: kitch/ffmpeg {ratio(speed, f_speed)} (aim >= 1x: "
            f"{verdict(speed >= f_speed)})"
        )
    else:
        print(f"ffmpeg command line: {NOT_INSTALLED}")

    lags, worker, rt_cpu, delays = asyncio.run(kitch_real_time(packets, plans))
    p99 = statistics.quantiles(lags, n=100)[98] * 1000 if len(lags) > 10 else 0.0
    dropped = sum(r.dropped for r in worker.stats.rungs.values())
    total = sum(r.frames_in + r.dropped for r in worker.stats.rungs.values())
    print(
        f"kitch ladder, real time: {rt_cpu / media.seconds * 100:.0f} % of a core, "
        f"loop lag p99 {p99:.1f} ms (aim < 20 ms: {verdict(p99 < 20)}), "
        f"dropped {dropped} of {total} rung frames "
        f"(real time {verdict(dropped == 0 and worker.stats.dropped_packets == 0)})"
    )
    if delays:
        q95 = statistics.quantiles(delays, n=20)[18] if len(delays) > 20 else max(delays)
        print(
            f"encoder delay (frame in -> its rung packet out): median "
            f"{statistics.median(delays) * 1000:.0f} ms, p95 {q95 * 1000:.0f} ms "
            f"(aim < 500 ms: {verdict(q95 < 0.5)})"
        )
    print(
        f"summary: {frames} frames encoded flat out; per-rung CPU in real time: "
        + ", ".join(f"{n} {r.cpu_seconds:.2f} s" for n, r in worker.stats.rungs.items())
        + f", decode {worker.stats.decode_cpu_seconds:.2f} s"
    )


if __name__ == "__main__":
    main()
