"""Shared helpers for the benchmark scripts: media, servers, baselines, CPU accounting.

Everything here talks to loopback only. Generated media is cached in ``.bench-cache/`` at the
repository root (override with ``KITCH_BENCH_CACHE``); delete it to regenerate.
"""

from __future__ import annotations

import fractions
import math
import os
import platform
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.support.server import KitchServer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CACHE = Path(os.environ.get("KITCH_BENCH_CACHE", ROOT / ".bench-cache"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
NOT_INSTALLED = "baseline not installed"


# -- the machine and /proc ----------------------------------------------------------------------


def machine() -> str:
    """One line naming the machine: core count, CPU model, kernel, Python."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"machine: nproc={os.cpu_count()} cpu={model!r} kernel={platform.release()} "
        f"python={platform.python_version()} date={time.strftime('%Y-%m-%d')}"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (0 when unknown)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/PID/task/*/children)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its direct children (nginx: master + workers)."""
    total = cpu_seconds(pid)
    for child in children(pid):
        try:
            total += cpu_seconds(child)
        except OSError:
            continue
    return total


def tree_rss_bytes(pid: int) -> int:
    """RSS of ``pid`` plus its direct children."""
    total = rss_bytes(pid)
    for child in children(pid):
        try:
            total += rss_bytes(child)
        except OSError:
            continue
    return total


def best_of(n: int, fn: Callable[[], object]) -> float:
    """Fastest wall time of ``n`` calls of ``fn()`` (the least disturbed by a noisy machine)."""
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    """Wait until something listens on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def ratio(a: float, b: float) -> str:
    """``a / b`` formatted, or "n/a" when ``b`` is zero."""
    return f"{a / b:.2f}x" if b else "n/a"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


# -- media --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Media:
    path: Path
    seconds: float
    width: int
    height: int
    fps: int
    video_kbps: int

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def make_media(
    *,
    seconds: float = 10.0,
    width: int = 1920,
    height: int = 1080,
    fps: int = 30,
    gop: int = 60,
    video_kbps: int = 6000,
    bframes: int = 0,
) -> Media:
    """Encode (once, cached in CACHE) an H.264 + AAC FLV of a noisy moving pattern.

    Defaults: 10 s of 1920x1080 at 30 fps, 2 s GOP, 6000 kb/s video (x264 ultrafast with a
    VBV cap; the noise makes the encoder spend the whole rate), 128 kb/s stereo AAC; no
    B-frames unless ``bframes`` (then PTS != DTS and the FLV carries composition times).
    """
    import av
    import numpy as np

    CACHE.mkdir(parents=True, exist_ok=True)
    bf = f"-bf{bframes}" if bframes else ""
    name = f"bench-{width}x{height}-{fps}fps-g{gop}{bf}-{video_kbps}k-{seconds:g}s.flv"
    path = CACHE / name
    media = Media(path, seconds, width, height, fps, video_kbps)
    if path.exists():
        return media
    tmp = path.with_suffix(".part")
    rng = np.random.default_rng(1)
    with av.open(str(tmp), "w", format="flv") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        rate = str(video_kbps * 1000)
        vs.bit_rate = video_kbps * 1000
        opts: dict[str, str] = {
            "preset": "ultrafast",
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "bf": str(bframes),
            "maxrate": rate,
            "bufsize": str(video_kbps * 1000 * 2),
        }
        vs.options = dict(opts)
        vs.codec_context.options = opts
        as_ = out.add_stream("aac", rate=44100)
        as_.bit_rate = 128000
        as_.layout = "stereo"
        plane = height * 3 // 2
        base = np.tile(np.arange(width, dtype=np.uint8), (plane, 1))
        noise = rng.integers(0, 24, size=(plane + 64, width + 64), dtype=np.uint8)
        for i in range(int(seconds * fps)):
            dx, dy = (i * 5) % 64, (i * 3) % 64
            img = base + noise[dy : dy + plane, dx : dx + width]
            x = (i * 9) % (width - 64)
            img[:height, x : x + 64] = 235
            frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
            frame.pts = i
            frame.time_base = fractions.Fraction(1, fps)
            for p in vs.encode(frame):
                out.mux(p)
        total, t, spf = int(seconds * 44100), 0, 1024
        while t < total:
            n = min(spf, total - t)
            ts = (np.arange(t, t + n) / 44100).astype(np.float32)
            tone = (0.2 * np.sin(2 * math.pi * 440 * ts)).astype(np.float32)
            aframe = av.AudioFrame.from_ndarray(
                np.stack([tone, tone]).reshape(1, -1), format="flt", layout="stereo"
            )
            aframe.sample_rate, aframe.pts = 44100, t
            aframe.time_base = fractions.Fraction(1, 44100)
            for p in as_.encode(aframe):
                out.mux(p)
            t += n
        for s in (vs, as_):
            for p in s.encode(None):
                out.mux(p)
    tmp.rename(path)
    return media


def media_for(quick: bool) -> Media:
    """The benchmark feed: 10 s 1080p 6 Mb/s, or (``--quick``) 2 s 320x240 at 600 kb/s."""
    if quick:
        return make_media(seconds=2.0, width=320, height=240, video_kbps=600)
    return make_media()


def flv_tags(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """(tag type, timestamp ms, body) of every tag of an FLV file: the RTMP message payloads."""
    data = path.read_bytes()
    if data[:3] != b"FLV":
        raise ValueError(f"{path} is not FLV")
    pos = struct.unpack(">I", data[5:9])[0] + 4
    while pos + 11 <= len(data):
        tag_type = data[pos] & 0x1F
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | (data[pos + 7] << 24)
        body = data[pos + 11 : pos + 11 + size]
        if len(body) < size:
            break
        yield tag_type, ts, body
        pos += 11 + size + 4


# -- processes ----------------------------------------------------------------------------------


def ffmpeg_publish(
    url: str, media: Media, *, realtime: bool = True, loops: int = -1
) -> subprocess.Popen[bytes]:
    """Start `ffmpeg [-re] -stream_loop LOOPS -i FILE -c copy -f flv URL` (quiet)."""
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"]
    if realtime:
        cmd.append("-re")
    cmd += ["-stream_loop", str(loops), "-i", str(media.path), "-c", "copy", "-f", "flv", url]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM ``proc`` (started by us), then SIGKILL it if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def metric(base_url: str, name: str) -> float:
    """Sum of the samples of Prometheus metric ``name`` at ``base_url``/metrics."""
    with urllib.request.urlopen(base_url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Kitch:
    """A real ``kitch serve`` (tests/support/server.py) in a temporary data directory."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        from tests.support.server import KitchServer

        self._tmp = tempfile.TemporaryDirectory(prefix="kitch-bench-")
        tmp = Path(self._tmp.name)
        self.server = KitchServer(tmp / "data", tmp / "server.log", env=dict(extra_env or {}))

    def __enter__(self) -> Kitch:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.server.stop()
        finally:
            self._tmp.cleanup()

    @property
    def pid(self) -> int:
        assert self.server.proc is not None
        return self.server.proc.pid

    def publish_url(self, username: str) -> str:
        """Register ``username`` and return its RTMP publish URL (with its stream key)."""
        return self.server.rtmp_url(self.server.create_account(username).stream_key)


# -- nginx --------------------------------------------------------------------------------------

#: ``KITCH_BENCH_NO_BASELINE=1`` pretends nginx is missing (to try the scripts' fallback).
NO_BASELINE = os.environ.get("KITCH_BENCH_NO_BASELINE", "") not in ("", "0")
NGINX = (
    None
    if NO_BASELINE
    else shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
)
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
SETUP_HINT = "apt-get install -y nginx libnginx-mod-rtmp wrk"


def nginx_rtmp_hls_conf(port: int, hls_dir: str = "{dir}/hls") -> str:
    """nginx-rtmp accepting publishes on ``port`` with HLS on (2 s fragments): the baseline feed
    of bench_rtmp and bench_passthrough. ``{dir}`` is filled in by :class:`Nginx` (on
    /dev/shm); ``hls_dir`` elsewhere puts the fragments there (e.g. on disk)."""
    return (
        (
            "rtmp { server { listen 127.0.0.1:PORT; chunk_size 4096;\n"
            "  application live { live on; hls on; hls_path HLS; hls_fragment 2s; } } }\n"
        )
        .replace("PORT", str(port))
        .replace("HLS", hls_dir)
    )


def nginx_rtmp_available() -> bool:
    return NGINX is not None and RTMP_MODULE.exists()


class Nginx:
    """nginx in the foreground with a temporary config and prefix (one worker, loopback only).

    ``body`` is the text placed after the ``events`` block (``http {...}`` / ``rtmp {...}``);
    ``{dir}`` in it is replaced by the temporary directory. ``worker_connections`` above 1024
    raises the worker's open-files limit with it.
    """

    def __init__(
        self, body: str, *, modules: tuple[Path, ...] = (), worker_connections: int = 1024
    ) -> None:
        if NGINX is None:
            raise RuntimeError(NOT_INSTALLED)
        shm = Path("/dev/shm")
        self._tmp = tempfile.TemporaryDirectory(
            prefix="kitch-bench-nginx-", dir=shm if shm.is_dir() else None
        )
        self.dir = Path(self._tmp.name)
        loads = "".join(f"load_module {m};\n" for m in modules)
        if worker_connections > 1024:
            loads += f"worker_rlimit_nofile {worker_connections * 2 + 64};\n"
        conf = (
            f"{loads}daemon off;\nmaster_process on;\nworker_processes 1;\nuser root;\n"
            f"pid {self.dir}/nginx.pid;\nerror_log {self.dir}/error.log warn;\n"
            f"events {{ worker_connections {worker_connections}; }}\n"
            + body.replace("{dir}", str(self.dir))
        )
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(conf)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, port: int) -> Nginx:
        assert NGINX is not None
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.dir), "-c", str(self.conf), "-e", str(self.dir / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(port)
        except OSError:
            self.stop()
            log = (self.dir / "error.log").read_text(errors="replace")
            raise RuntimeError(f"nginx did not start:\n{log}") from None
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: master stops its workers
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(5)
        self._tmp.cleanup()

    def __enter__(self) -> Nginx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


NATIVE_LINE = re.compile(r"(\d+) of (\d+) media packets took the native path")


def native_share(server: KitchServer, publishers: int) -> str:
    """How many of ``publishers``' media packets took the native path (call it once they
    stopped), from the line each connection logs as it closes; the rest went through the Python
    hub. It shows whether a run's CPU figure is the native path's, however long the run."""
    deadline = time.monotonic() + 5
    while True:
        found = [m for m in NATIVE_LINE.findall(server.log()) if int(m[1])]
        if len(found) >= publishers or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    taken, total = sum(int(a) for a, _ in found), sum(int(b) for _, b in found)
    share = f"{taken / total * 100:.1f} %" if total else "n/a"
    return f"native path: {taken} of {total} media packets ({share}), {len(found)} publish(es)"
