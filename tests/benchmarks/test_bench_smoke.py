"""Each benchmark script still runs end to end in its tiny ``--quick`` mode (CI smoke).

The scripts must finish and print their machine line, their measured figures and a summary.
Two shared cores are too noisy to judge the aims themselves, so each figure is held to a
generous bound instead (several times looser than its aim in benchmarks/README.md): a smoke run
still fails when something got an order of magnitude slower. Each takes well under 20 s.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run_quick(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("machine: nproc="), proc.stdout
    return proc.stdout


def numbers(pattern: str, text: str) -> list[float]:
    return [float(x) for x in re.findall(pattern, text)]


def test_bench_rtmp_quick() -> None:
    out = run_quick("bench_rtmp.py")
    native = numbers(r"native ChunkReader:\s+([\d.]+) GB/s", out)
    pure = numbers(r"pure-Python twin:\s+([\d.]+) GB/s", out)
    copy = numbers(r"chunk-size steps:\s+([\d.]+) GB/s", out)
    assert len(native) == len(pure) == len(copy) == 2, out  # chunk sizes 128 and 4096
    assert all(x > 0 for x in pure + copy), out
    assert "aim >= 1 GB/s at chunk size 128" in out
    if "parser: native build in use" in out:
        assert native[0] >= 0.1, out  # aim: 1 GB/s at chunk size 128
        assert native[1] >= copy[1] / 10, out  # aim: within 3x of a plain copy at 4096
        assert all(n > p for n, p in zip(native, pure, strict=True)), out
    assert re.search(r"server CPU per ingested GB: kitch [\d.]+", out), out


def test_bench_mux_quick() -> None:
    out = run_quick("bench_mux.py")
    for what in ("TS", "fMP4"):
        vs_ffmpeg = numbers(rf"{what}:\s+Cython / FFmpeg = ([\d.]+)x", out)
        assert len(vs_ffmpeg) == 1, out
        assert vs_ffmpeg[0] >= 1.0, out  # aim: faster than FFmpeg (measured ~10x)
        assert f"summary: {what} aim faster than FFmpeg:" in out
    cython_vs_twin = numbers(r"TS:\s+.*Cython / twin = ([\d.]+)x", out)
    assert cython_vs_twin and cython_vs_twin[0] > 1.0, out


def test_bench_passthrough_quick() -> None:
    out = run_quick("bench_passthrough.py")
    cpu = numbers(r"kitch, 2 publisher\(s\): ([\d.]+) % of a core per stream", out)
    assert cpu, out
    assert cpu[0] < 25, out  # a 600 kb/s passthrough stream (measured ~1 % at 6 Mb/s)
    assert "+ 6 hostile" in out
    # the idle server is measured too, and split off the per-stream figure
    assert re.search(r"kitch, idle: server [\d.]+ % of a core", out), out
    assert re.search(r"of which the idle server [\d.]+ % of a core", out), out
    garbage = re.search(r"hostile garbage: (\d+) connects, (\d+) closed", out)
    assert garbage and int(garbage.group(2)) >= 1, out  # the server closed garbage sockets
    if shutil.which("nginx") and Path("/usr/lib/nginx/modules/ngx_rtmp_module.so").exists():
        assert "nginx-rtmp hls, 2 publisher(s)" in out
    else:
        assert "baseline not installed" in out


def test_bench_passthrough_with_thumbnails_quick() -> None:
    out = run_quick("bench_passthrough.py", "--with", "thumbnails")
    assert "kitch + thumbnails every 1 s, 2 publisher(s)" in out, out
    per_picture = numbers(r"([\d.]+) ms of CPU per picture", out)
    encode_ms = numbers(r"encode_ms\) median ([\d.]+) ms", out)
    assert per_picture and encode_ms, out
    assert 0 < encode_ms[0] < 200, out  # a 320x240 keyframe: a few ms
    # the quick window is short: noise may make the difference zero or below it
    assert re.search(r"at the default 45 s interval: -?[\d.]+ % of a core per stream", out), out


def test_bench_passthrough_recording_quick() -> None:
    script = str(ROOT / "benchmarks" / "bench_passthrough.py")
    proc = subprocess.run(
        [sys.executable, script, "--quick", "--recording"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    cpu = numbers(r"kitch, 2 publisher\(s\) \+ recording: ([\d.]+) % of a core per stream", out)
    assert cpu and cpu[0] < 25, out
    assert re.search(r"2 publisher\(s\) \+ recording: .* % of the passthrough's CPU", out), out


def test_bench_serve_quick() -> None:
    out = run_quick("bench_serve.py")
    if shutil.which("wrk") is None:
        assert "wrk: not installed" in out
        return
    rps = numbers(r"kitch segment\s+([\d.]+) req/s", out)
    assert rps and rps[0] >= 100, out  # segments come from memory: thousands per second
    assert re.search(r"kitch playlist\s+[\d.]+ req/s", out), out
    if shutil.which("nginx"):
        vs_nginx = numbers(r"segments: kitch/nginx ([\d.]+)x", out)
        assert vs_nginx and vs_nginx[0] >= 0.2, out  # aim: as fast as nginx (>= 1x)
    else:
        assert "baseline not installed" in out


def test_bench_latency_quick() -> None:
    out = run_quick("bench_latency.py")
    for name in ("in-process", "real path"):
        median = numbers(rf"{name}: listing delay median (-?\d+) ms", out)
        assert median, out
        assert median[0] < 1500, out  # aim: p95 under 500 ms
    assert re.search(r"real / in-process: listing delay median [\d.]+x", out), out
    assert "summary: real path aim" in out


def test_bench_ladder_quick() -> None:
    out = run_quick("bench_ladder.py")
    assert re.search(r"kitch ladder, flat out: [\d.]+ CPU s", out), out
    assert re.search(r"loop lag p99 [\d.]+ ms", out), out
    if shutil.which("ffmpeg"):
        (cpu,) = numbers(r"CPU: kitch/ffmpeg ([\d.]+)x", out)
        assert 0 < cpu < 3, out  # generous: the aim (1.05x) is judged by the full run
    else:
        assert "baseline not installed" in out


def test_bench_chat_quick() -> None:
    out = run_quick("bench_chat.py")
    pattern = (
        r"{}: ([\d,]+) deliveries/s \(([\d,]+) of ([\d,]+) .*p99 ([\d.]+) ms.*"
        r"RSS per idle connection (-?[\d.]+) KiB"
    )
    for name in ("kitch", "bare websockets broadcast", "bare websockets, coalesced"):
        m = re.search(pattern.format(name), out)
        assert m, out
        rate, delivered, expected = (int(m.group(i).replace(",", "")) for i in (1, 2, 3))
        assert delivered >= expected * 0.9, out  # nothing lost at 50 messages/s to 50 sockets
        assert rate >= 1000, out  # offered: 50 messages/s x 50 receivers = 2,500 deliveries/s
        assert float(m.group(4)) < 1000, out  # aim: p99 < 100 ms (at 1,000 receivers)
    assert re.search(r"kitch / bare: deliveries/s [\d.]+x", out), out
    assert re.search(r"kitch / bare coalesced: deliveries/s [\d.]+x", out), out
    assert re.search(r"kitch: .* ([\d.]+) frames per WebSocket message", out), out
    assert "summary: aim >= 100,000 deliveries/s:" in out


def test_bench_chat_two_nodes_quick() -> None:
    """Two nodes through a real redis-server against one node, in the same invocation."""
    out = run_quick("bench_chat.py", "--nodes", "2", "--redis")
    pattern = r"{}: ([\d,]+) deliveries/s \(([\d,]+) of ([\d,]+) .*p99 ([\d.]+) ms"
    for name in ("kitch, 1 node", "kitch, 2 nodes \\+ Redis"):
        m = re.search(pattern.format(name), out)
        assert m, out
        rate, delivered, expected = (int(m.group(i).replace(",", "")) for i in (1, 2, 3))
        assert delivered >= expected * 0.9 and rate >= 1000, out
        assert float(m.group(4)) < 1000, out
    assert re.search(r"2 nodes / 1 node: deliveries/s [\d.]+x, p99 [\d.]+x", out), out
    assert "summary: every message delivered on every node:" in out


def test_bench_memory_quick() -> None:
    out = run_quick("bench_memory.py")
    line = re.search(
        r"kitch, 2 stream\(s\), ladder off: RSS \+([\d.]+) MiB per stream .*; "
        r"held ([\d.]+) MiB = listed window ([\d.]+) MiB \+ departed ([\d.]+) MiB; "
        r"RSS / \(held \+ 1 MiB\) = ([\d.]+)x",
        out,
    )
    assert line, out
    rss, held, window, departed, ratio = (float(x) for x in line.groups())
    assert rss > 0 and window > 0 and departed >= 0
    assert held == pytest.approx(window + departed, abs=0.02)
    # the health's figures are the store's: a 2-segment window of a 600 kb/s stream
    assert 0.1 < window < 2, out
    assert ratio < 5, out  # aim 1.3x (measured ~0.5x here, ~1.05x at 6 Mb/s)
    assert "summary: worst RSS / (held + 1 MiB) =" in out


def test_bench_viewers_quick() -> None:
    out = run_quick("bench_viewers.py")
    kitch = re.search(
        r"kitch LL-HLS, 20 viewers: server CPU [\d.]+ s .* per viewer ([\d.]+) % of a core.*\n"
        r"  delivered ([\d.]+) MB/s \(([\d.]+) Mb/s per viewer, .*\n"
        r"  delay listed -> received: p50 ([\d.]+) ms, p99 ([\d.]+) ms over ([\d,]+) fetches.*\n"
        r"  join .* (\d+) of 20 joined",
        out,
    )
    assert kitch, out
    per_viewer, _, mbps, p50, p99, fetches, joined = (
        float(x.replace(",", "")) for x in kitch.groups()
    )
    assert per_viewer < 5, out  # aim: 0.1 % of a core per viewer (1,000 per core)
    assert 0.2 < mbps < 3, out  # a 600 kb/s stream, parts and playlists
    assert p50 <= p99 < 2500, out  # aim: p99 < 250 ms (at 1,000 viewers)
    assert fetches >= 100, out  # 20 viewers x 4 s x 5 parts/s = 400
    assert joined == 20, out
    assert re.search(r"\n  N=20: kitch [\d.]+ % of a core per viewer", out), out
    if shutil.which("nginx"):
        base = re.search(r"nginx plain HLS, 20 viewers: .*\n  delivered ([\d.]+) MB/s", out)
        assert base and float(base.group(1)) > 0, out
        # nginx's CPU for 20 viewers may round to 0 clock ticks: then the ratio is n/a
        assert re.search(r"CPU per delivered byte (?:[\d.]+x|n/a)", out), out
    else:
        assert "baseline not installed" in out
    assert "summary: aim CPU per delivered byte <= nginx:" in out


def test_bench_viewers_quick_with_hls_workers() -> None:
    out = run_quick("bench_viewers.py", "--hls-workers", "1")
    kitch = re.search(
        r"kitch LL-HLS \(1 HLS workers\), 20 viewers: server CPU [\d.]+ s .*\n"
        r"  delivered ([\d.]+) MB/s .*\n.*\n"
        r"  join .* (\d+) of 20 joined; errors: none",
        out,
    )
    assert kitch, out
    assert float(kitch.group(1)) > 0.2 and kitch.group(2) == "20", out
    assert "WARNING" not in out, out
    assert re.search(r"\n  N=20: kitch with 1 HLS workers [\d.]+ % of a core per viewer", out), out


def test_bench_streams_quick() -> None:
    out = run_quick("bench_streams.py")
    cpu = numbers(r"kitch, 3 publishers: ([\d.]+) % of a core per stream", out)
    assert cpu and cpu[0] < 25, out  # a 600 kb/s passthrough stream (~1 % at 2.5 Mb/s)
    found = re.search(r"listing delay .*?, (\d+) parts: p50 (-?[\d.]+) ms, p99 (-?[\d.]+) ms", out)
    assert found, out
    assert int(found.group(1)) >= 10, out  # parts of 0.2 s over a 3 s window
    assert float(found.group(3)) < 1000, out  # aim: p99 < 50 ms; a smoke run here: < 1 s
    ratio = numbers(r"media listed / wall clock per stream: min ([\d.]+)", out)
    assert ratio and ratio[0] > 0.5, out  # the publishers keep up with real time (1.0)
    assert re.search(r"3 publishers: kitch [\d.]+ % of a core per stream .* p99 listing delay", out)
    if shutil.which("nginx") and Path("/usr/lib/nginx/modules/ngx_rtmp_module.so").exists():
        assert "nginx-rtmp hls, 3 publishers" in out
    else:
        assert "baseline not installed" in out


def test_bench_edge_quick() -> None:
    out = run_quick("bench_edge.py")
    if not shutil.which("nginx"):
        assert "nothing to measure" in out
        return
    direct = re.search(
        r"direct to the origin, 20 viewers: .*\n(?:  .*\n)*?  origin: .* = ([\d.]+) per part", out
    )
    edge = re.search(
        r"  edge \(lock timeouts: playlists 40s, parts 40s\): origin requests per part ([\d.]+) "
        r".* (\d+) of 20 joined; errors (\d+)",
        out,
    )
    assert direct and edge, out
    assert float(direct.group(1)) > 10, out  # 20 viewers: ~40 origin requests per part
    per_part = float(edge.group(1))
    assert 1.0 <= per_part <= 3.0, out  # aim: 2 (one blocking reload and one part fetch)
    assert edge.group(2) == "20" and edge.group(3) == "0", out
    assert re.search(r"p99 fan-out \d+ ms \(direct \d+", out), out
    assert "summary: edge (lock timeouts: playlists 40s, parts 40s): aim one origin" in out
