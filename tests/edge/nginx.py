"""A real nginx (from apt) running the rendered edge config on loopback, in a temporary prefix.

Used by the edge tests and by benchmarks/bench_edge.py. The config is
deploy/nginx/kitch-edge.conf rendered by deploy/nginx/render_edge.py, included in a small
nginx.conf of our own (foreground, one worker by default, an access log that names the origin
requests each client request made).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RENDER = ROOT / "deploy" / "nginx" / "render_edge.py"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
LOG_FORMAT = (
    "log_format kitch_edge '$msec|$status|$upstream_cache_status|$upstream_addr|"
    "$upstream_status|$request_time|$request_uri';\n"
)


def render_module() -> ModuleType:
    """deploy/nginx/render_edge.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("kitch_render_edge", RENDER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LogLine:
    """One client request as the edge's access log tells it."""

    t: float
    status: int
    cache: str  # $upstream_cache_status: MISS, HIT, ... or "-"
    upstreams: list[str]  # the origin addresses contacted, in order (a 307 followed: two)
    uri: str

    @property
    def origin_requests(self) -> int:
        return len(self.upstreams)


class EdgeNginx:
    """nginx with the rendered edge config, listening on 127.0.0.1:``port``.

    ``render`` takes the keyword arguments of ``render_edge.render`` (``origins`` ...);
    ``extra_http`` is placed in the ``http`` block beside it (e.g. another server).
    """

    def __init__(
        self,
        *,
        workers: int = 1,
        worker_connections: int = 1024,
        access_log: bool = True,
        extra_http: str = "",
        **render: Any,
    ) -> None:
        if NGINX is None:
            raise RuntimeError("nginx is not installed (apt-get install -y nginx)")
        shm = Path("/dev/shm")
        self._tmp = tempfile.TemporaryDirectory(
            prefix="kitch-edge-", dir=shm if shm.is_dir() else None
        )
        self.dir = Path(self._tmp.name)
        self.port = free_port()
        render.setdefault("cache_dir", str(self.dir / "cache"))
        text = render_module().render(listen=f"127.0.0.1:{self.port}", **render)
        (self.dir / "kitch-edge.conf").write_text(text)
        self.log_path = self.dir / "access.log"
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers write the cache dir
        files = f"worker_rlimit_nofile {worker_connections * 2 + 64};\n"
        log = f"access_log {self.log_path} kitch_edge;\n" if access_log else "access_log off;\n"
        # the packaged nginx's temporary paths are under /var/lib/nginx: keep them in the prefix
        temp = "".join(
            f"{kind}_temp_path {self.dir}/{kind}_temp;\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(
            f"daemon off;\nmaster_process on;\nworker_processes {workers};\n{user}{files}"
            f"pid {self.dir}/nginx.pid;\nerror_log {self.dir}/error.log info;\n"
            f"events {{ worker_connections {worker_connections}; }}\n"
            f"http {{\n{LOG_FORMAT}{log}{temp}{extra_http}\n"
            f"include {self.dir}/kitch-edge.conf;\n}}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 10.0) -> EdgeNginx:
        assert NGINX is not None
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.dir), "-c", str(self.conf), "-e", str(self.dir / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"nginx did not start:\n{self.error_log()}") from None
                time.sleep(0.05)

    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log(self) -> list[LogLine]:
        """Every logged client request so far."""
        if not self.log_path.exists():
            return []
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            t, status, cache, addrs, _, _, uri = raw.split("|", 6)
            upstreams = [] if addrs == "-" else re.split(r", | : ", addrs)
            lines.append(LogLine(float(t), int(status), cache, upstreams, uri))
        return lines

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown: the master stops its workers
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._tmp.cleanup()

    def __enter__(self) -> EdgeNginx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def hls_requests(base: str) -> float:
    """The origin's count of answered /hls requests, every status (its own and, reported
    once a second, its HLS workers')."""
    with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("kitch_http_requests_total{") and 'area="hls"' in line
    )
