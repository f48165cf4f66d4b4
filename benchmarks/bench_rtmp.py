"""RTMP ingest cost: chunk-parser throughput, and server CPU per ingested GB.

Run from the repository root after the Cython build (``python3 setup.py -q build_ext
--inplace``); the nginx baseline needs ``apt-get install -y nginx libnginx-mod-rtmp``::

    python3 benchmarks/bench_rtmp.py [--quick] [--repeat 7] [--loops 10]

Part 1, parser: the client-to-server byte stream of a publish session of a 10 s 1080p 6 Mb/s
H.264 + AAC FLV (made once with PyAV, cached in .bench-cache/) is built with Kitch's own
``ChunkWriter`` -- connect / releaseStream / FCPublish / createStream / publish commands, then
every FLV tag as an RTMP message on the chunk streams FFmpeg uses (audio 4, video 6, data 5) --
once at chunk size 128 and once after a Set Chunk Size of 4096. (The handshake bytes are not
part of the chunk stream and are left out.) The stream is fed in 64 KiB reads, as the server
reads its socket, to ``kitch._rtmp.ChunkReader`` (native) and to the pure-Python twin,
draining every message. Baselines from the same run: a plain copy of the same bytes in
chunk-size steps (one Python slice-assignment per chunk into a preallocated buffer) and a bare
memcpy of each 64 KiB read. Best of N. Aim: >= 1 GB/s at 128, within 3x of the chunk-step copy
at 4096.

Part 2, server: ``ffmpeg -stream_loop N -i FILE -c copy -f flv`` without ``-re`` pushes as fast
as it can into a real ``kitch serve`` (which parses, repackages and muxes LL-HLS in memory);
server CPU-seconds (from /proc) per GB received (kitch's own byte counter). Baseline: the same
push into nginx-rtmp with ``hls on`` (one worker, HLS to /dev/shm), as a ratio.
"""

from __future__ import annotations

import argparse
import struct
import time
from collections.abc import Callable
from functools import partial

from _common import (
    NOT_INSTALLED,
    RTMP_MODULE,
    SETUP_HINT,
    Kitch,
    Media,
    Nginx,
    best_of,
    cpu_seconds,
    ffmpeg_publish,
    flv_tags,
    free_port,
    machine,
    media_for,
    metric,
    nginx_rtmp_available,
    nginx_rtmp_hls_conf,
    ratio,
    tree_cpu_seconds,
    verdict,
)

from kitch import _rtmp_py as _pure
from kitch import twins
from kitch.rtmp.amf0 import amf0_encode
from kitch.rtmp.chunks import ChunkWriter

READ_SIZE = 64 * 1024
CSID = {8: 4, 9: 6, 18: 5}  # audio, video, data: the chunk stream ids FFmpeg's publisher uses


def build_stream(media: Media, chunk_size: int) -> tuple[bytes, int]:
    """Client->server chunk stream of a whole publish session; (bytes, message count)."""
    w = ChunkWriter()
    out = bytearray()
    msgs = 0

    def send(csid: int, msg_type: int, sid: int, ts: int, payload: bytes) -> None:
        nonlocal msgs
        out.extend(w.write(csid, msg_type, sid, ts, payload))
        msgs += 1

    tc = "rtmp://127.0.0.1:1935/live"
    send(
        3,
        20,
        0,
        0,
        amf0_encode(
            "connect",
            1.0,
            {"app": "live", "type": "nonprivate", "flashVer": "FMLE/3.0", "tcUrl": tc},
        ),
    )
    if chunk_size != w.chunk_size:
        send(2, 1, 0, 0, struct.pack(">I", chunk_size))
        w.chunk_size = chunk_size
    send(3, 20, 0, 0, amf0_encode("releaseStream", 2.0, None, "key"))
    send(3, 20, 0, 0, amf0_encode("FCPublish", 3.0, None, "key"))
    send(3, 20, 0, 0, amf0_encode("createStream", 4.0, None))
    send(8, 20, 1, 0, amf0_encode("publish", 5.0, None, "key", "live"))
    for tag_type, ts, body in flv_tags(media.path):
        if tag_type == 18:
            body = amf0_encode("@setDataFrame") + body
        send(CSID.get(tag_type, 5), tag_type, 1, ts, body)
    return bytes(out), msgs


def parse_all(reader_cls: Callable[..., object], data: bytes) -> int:
    """Feed ``data`` in 64 KiB reads and drain every message; returns the message count."""
    reader = reader_cls(max_message_size=16 << 20)
    feed = reader.feed  # type: ignore[attr-defined]
    nxt = reader.next_message  # type: ignore[attr-defined]
    mv = memoryview(data)
    n = 0
    for i in range(0, len(data), READ_SIZE):
        feed(mv[i : i + READ_SIZE])
        while nxt() is not None:
            n += 1
    return n


def copy_chunks(data: bytes, step: int) -> None:
    """Plain copy of the same bytes in chunk-size steps (one slice assignment per chunk)."""
    out = bytearray(len(data))
    mv = memoryview(data)
    for i in range(0, len(data), step):
        out[i : i + step] = mv[i : i + step]


def copy_reads(data: bytes) -> None:
    """Bare memcpy of each 64 KiB read (the floor any parser sits on)."""
    mv = memoryview(data)
    for i in range(0, len(data), READ_SIZE):
        bytes(mv[i : i + READ_SIZE])


def gbps(size: int, seconds: float) -> float:
    return size / seconds / 1e9


def bench_parser(media: Media, repeat: int) -> list[str]:
    lines = []
    failures = []
    for cs in (128, 4096):
        data, msgs = build_stream(media, cs)
        native = twins.rtmp.ChunkReader if twins.NATIVE else None
        got_pure = parse_all(_pure.ChunkReader, data)
        if got_pure != msgs:
            raise SystemExit(f"pure twin parsed {got_pure} of {msgs} messages at chunk size {cs}")
        t_copy = best_of(repeat, partial(copy_chunks, data, cs))
        t_mem = best_of(repeat, partial(copy_reads, data))
        t_pure = best_of(max(1, repeat // 3), partial(parse_all, _pure.ChunkReader, data))
        size = len(data)
        print(f"chunk size {cs}: {size / 1e6:.1f} MB stream, {msgs} messages")
        print(f"  plain copy, chunk-size steps: {gbps(size, t_copy):7.3f} GB/s")
        print(f"  memcpy of 64 KiB reads:       {gbps(size, t_mem):7.3f} GB/s")
        print(f"  pure-Python twin:             {gbps(size, t_pure):7.3f} GB/s")
        if native is None:
            print("  native ChunkReader: not built (python3 setup.py -q build_ext --inplace)")
            failures.append(cs)
            continue
        if parse_all(native, data) != msgs:
            raise SystemExit(f"native reader lost messages at chunk size {cs}")
        t_nat = best_of(repeat, partial(parse_all, native, data))
        g = gbps(size, t_nat)
        print(f"  native ChunkReader:           {g:7.3f} GB/s")
        print(
            f"  native speed as a multiple of: chunk-step copy {ratio(t_copy, t_nat)}, "
            f"memcpy {ratio(t_mem, t_nat)}, pure twin {ratio(t_pure, t_nat)}"
        )
        if cs == 128:
            lines.append(f"aim >= 1 GB/s at chunk size 128: {g:.2f} GB/s, {verdict(g >= 1.0)}")
        else:
            slower = t_nat / t_copy
            lines.append(
                f"aim within 3x of plain copy at 4096: {slower:.2f}x the chunk-step copy's "
                f"time, {verdict(slower <= 3.0)} ({t_nat / t_mem:.1f}x a bare memcpy's time)"
            )
    return lines


def push(url: str, media: Media, loops: int, pid: int, cpu: Callable[[int], float]) -> float:
    """Push ``media`` (looped) as fast as possible; returns the server CPU seconds it took."""
    c0 = cpu(pid)
    proc = ffmpeg_publish(url, media, realtime=False, loops=loops)
    _, err = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg push failed: {err.decode(errors='replace')[-500:]}")
    time.sleep(0.5)  # let the server finish what it received
    return cpu(pid) - c0


def bench_server(media: Media, loops: int, repeat: int) -> list[str]:
    kitch_cpu_gb = float("inf")
    with Kitch() as k:
        for i in range(repeat):
            url = k.publish_url(f"push{i}")
            b0 = metric(k.server.base, "kitch_rtmp_received_bytes_total")
            t0 = time.monotonic()
            used = push(url, media, loops, k.pid, cpu_seconds)
            wall = time.monotonic() - t0 - 0.5
            got = metric(k.server.base, "kitch_rtmp_received_bytes_total") - b0
            print(
                f"kitch serve: {got / 1e6:.0f} MB in {wall:.1f} s ({got / wall / 1e6:.0f} MB/s), "
                f"server CPU {used:.2f} s = {used / got * 1e9:.2f} CPU-s/GB"
            )
            kitch_cpu_gb = min(kitch_cpu_gb, used / got * 1e9)
    size = media.size * (loops + 1)  # the FLV size is within a few % of the RTMP bytes
    if not nginx_rtmp_available():
        print(f"nginx-rtmp: {NOT_INSTALLED} ({SETUP_HINT})")
        return [f"server CPU per ingested GB: kitch {kitch_cpu_gb:.2f} CPU-s/GB (no baseline)"]
    nginx_cpu_gb = float("inf")
    port = free_port()
    conf = nginx_rtmp_hls_conf(port)
    with Nginx(conf, modules=(RTMP_MODULE,)) as ng:
        ng.start(port)
        for i in range(repeat):
            used = push(
                f"rtmp://127.0.0.1:{port}/live/push{i}", media, loops, ng.pid, tree_cpu_seconds
            )
            print(
                f"nginx-rtmp (hls on): ~{size / 1e6:.0f} MB, server CPU {used:.2f} s = "
                f"{used / size * 1e9:.2f} CPU-s/GB"
            )
            nginx_cpu_gb = min(nginx_cpu_gb, used / size * 1e9)
    return [
        f"server CPU per ingested GB: kitch {kitch_cpu_gb:.2f}, nginx-rtmp {nginx_cpu_gb:.2f} "
        f"CPU-s/GB; kitch/nginx {ratio(kitch_cpu_gb, nginx_cpu_gb)} (no aim set)"
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny media, 1 repeat (CI smoke)")
    ap.add_argument("--repeat", type=int, default=7, help="best of N parser runs (default 7)")
    ap.add_argument("--loops", type=int, default=39, help="extra plays of the file per push (39)")
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    loops = 0 if args.quick else args.loops
    print(machine())
    media = media_for(args.quick)
    print(f"media: {media.path.name} ({media.size / 1e6:.1f} MB)")
    print(f"parser: {'native' if twins.NATIVE else 'pure-Python'} build in use")
    summary = bench_parser(media, repeat)
    summary += bench_server(media, loops, 1 if args.quick else 3)
    print("summary:")
    for line in summary:
        print("  " + line)


if __name__ == "__main__":
    main()
