"""deploy/nginx/render_edge.py: the edge config it renders loads in a real nginx, and bad
values are refused with a clear message."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.edge.nginx import NGINX, RENDER

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


def render(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RENDER), *args], capture_output=True, text=True, timeout=30
    )


def test_a_multi_node_config_loads_in_nginx(tmp_path: Path) -> None:
    proc = render(
        "--listen", "127.0.0.1:8080",
        "--server-name", "tv.example.com www.tv.example.com",
        "--cache-dir", str(tmp_path / "cache"),
        "--origin", "10.0.0.2:8000",
        "--origin", "10.0.0.3:8000",
        "--hls-origin", "10.0.0.2:8001",
        "--hls-origin", "10.0.0.3:8001",
        "--node", "http://tv-2.example.net:8000=10.0.0.2:8000",
        "--playlist-lock-timeout", "200ms",
        "--media-lock-timeout", "20ms",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "@" not in text.replace("$", "")  # every placeholder filled
    assert "server_name tv.example.com www.tv.example.com;" in text
    assert "server 10.0.0.3:8001;" in text and "server 10.0.0.3:8000;" in text
    assert "proxy_cache_lock_timeout 200ms;" in text and "proxy_cache_lock_timeout 20ms;" in text
    # a 307 may name any node: the origins, the HLS origins and the extra node URL
    assert text.count("(?<kitch_node_path>/hls/.*)$") == 5
    for url in ("http://10.0.0.2:8001", "http://10.0.0.3:8000", "http://tv-2.example.net:8000"):
        assert f'"~^{re.escape(url)}(' in text, url
    (tmp_path / "edge.conf").write_text(text)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\ninclude {tmp_path}/edge.conf;\n}}\n"
    )
    assert NGINX is not None
    check = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e",
         str(tmp_path / "error.log")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "at least one --origin"),
        (["--origin", "10.0.0.2"], "is not HOST:PORT"),
        (["--origin", "10.0.0.2:99999"], "is not HOST:PORT"),
        (["--origin", "a:1", "--cache-dir", "relative/dir"], "absolute path"),
        (["--origin", "a:1", "--playlist-lock-timeout", "soon"], "is not a duration"),
        (["--origin", "a:1", "--node", "https://b:8000"], "a node URL is http://"),
        (["--origin", "a:1", "--listen", "80; include /etc/passwd"], "is not PORT"),
        (["--origin", "a:1", "--server-name", "a; include x"], "not a list of host names"),
    ],
)
def test_bad_values_are_refused(args: list[str], message: str) -> None:
    proc = render(*args)
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stdout == ""
