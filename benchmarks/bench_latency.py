"""LL-HLS latency probe: how soon is a frame listed, and how far behind the wall clock are we?

Run from the repository root (builds nothing; needs the Cython build in place)::

    python3 benchmarks/bench_latency.py [--seconds 20] [--fps 30] [--gop 60]

It encodes a small test pattern once, feeds its packets in real time into an in-process
HlsRegistry served by a real uvicorn on loopback (the path the RTMP ingest takes after the
chunk parser), and runs a probe client that follows the stream with blocking playlist reloads
(``_HLS_msn``/``_HLS_part``), as hls.js and Safari do. It prints, over all parts seen:

* listing delay: from the moment the last frame of a part was handed to the server to the
  moment the probe received a playlist listing that part (aim: under 0.5 s);
* live lag: wall clock minus the end of the newest listed media, placed on the wall clock by
  EXT-X-PROGRAM-DATE-TIME (aim: under 0.5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import m3u8

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kitch.hls import HlsRegistry, HlsSettings
from kitch.media import MediaPacket
from tests.hls.live import live_server, shifted
from tests.hls.packets import demux_packets
from tests.support.media import make_fixture


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _probe(
    url: str, fed_at: dict[int, float], stop: threading.Event
) -> tuple[list[float], list[float]]:
    delays: list[float] = []
    lags: list[float] = []
    seen: set[str] = set()
    async with httpx.AsyncClient(timeout=10) as client:
        pl = m3u8.loads((await client.get(url)).text)
        assert pl.media_sequence == 0 and pl.segments[0].program_date_time is not None
        anchor = pl.segments[0].program_date_time.timestamp()  # media time 0 on the wall clock
        seen.update(p.uri for seg in pl.segments for p in seg.parts)  # listed before we came
        while not stop.is_set():
            last = pl.segments[-1]
            msn = pl.media_sequence + len(pl.segments) - 1
            nxt = (msn + 1, 0) if last.uri else (msn, len(last.parts))
            r = await client.get(url, params={"_HLS_msn": nxt[0], "_HLS_part": nxt[1]})
            got = time.time()
            if r.status_code != 200:
                continue
            pl = m3u8.loads(r.text)
            if pl.is_endlist:
                break
            # media time of each part = sum of durations from the first listed segment
            start = pl.segments[0].program_date_time
            assert start is not None
            t = start.timestamp()
            for seg in pl.segments:
                if seg.program_date_time is not None:
                    t = seg.program_date_time.timestamp()
                pt = t
                for part in seg.parts:
                    pt += part.duration
                    if part.uri not in seen:
                        seen.add(part.uri)
                        # the part's last frame began one frame before its end
                        key = round((pt - anchor) * 1000)
                        near = min(fed_at, key=lambda k: abs(k - key), default=None)
                        if near is not None and abs(near - key) < 40:
                            delays.append(got - fed_at[near])
                t += seg.duration if seg.uri else sum(p.duration for p in seg.parts)
            lags.append(got - t)
    return delays, lags


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--gop", type=int, default=60)
    args = ap.parse_args()
    media = Path(tempfile.gettempdir()) / "kitch-bench"
    media.mkdir(exist_ok=True)
    fx = make_fixture(media, seconds=4.0, fps=args.fps, gop=args.gop)
    loops = max(1, round(args.seconds / fx.seconds))
    packets = shifted(demux_packets(fx.path), loops, fx.seconds)
    registry = HlsRegistry(HlsSettings())
    fed_at: dict[int, float] = {}  # video media ms (from the first frame) -> wall time fed
    stop = threading.Event()
    with live_server(registry) as srv:
        stream = registry.open("bench", time.time())

        def feed() -> None:
            base: int | None = None
            start = time.monotonic()
            first: int | None = None
            for p in packets:
                if not p.is_config:
                    first = p.dts if first is None else first
                    delay = start + (p.dts - first) / 1000 - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                if p.kind == "video" and not p.is_config:
                    base = p.dts if base is None else base
                    # a part ends one frame after its last frame starts
                    fed_at[p.dts - base + round(1000 / fx.fps)] = time.time()

                def go(p: MediaPacket = p) -> None:
                    stream.feed(p, time.time())

                srv.call(go)
            srv.call_wait(lambda: stream.end(time.time()))
            stop.set()

        t = threading.Thread(target=feed, daemon=True)
        t.start()
        while stream.media_playlist("source") is None:
            time.sleep(0.02)
        delays, lags = asyncio.run(_probe(f"{srv.base}/bench/source/index.m3u8", fed_at, stop))
        t.join()
    pt = stream.stats["part_target"]
    print(
        f"stream: {fx.width}x{fx.height} {fx.fps} fps, GOP {args.gop}, "
        f"{loops * fx.seconds:.0f} s, PART-TARGET {pt}"
    )
    if delays:
        print(
            "listing delay (frame in -> part listed): "
            f"median {statistics.median(delays) * 1000:.0f} ms, "
            f"p95 {_pct(delays, 0.95) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms "
            f"over {len(delays)} parts"
        )
    if lags:
        print(
            "live lag (wall clock - newest listed media): "
            f"median {statistics.median(lags) * 1000:.0f} ms, "
            f"p95 {_pct(lags, 0.95) * 1000:.0f} ms"
        )
    ok = bool(delays) and _pct(delays, 0.95) < 0.5 and bool(lags) and _pct(lags, 0.95) < 0.5
    print("aim (< 500 ms at p95):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
