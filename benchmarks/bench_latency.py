"""LL-HLS latency probe: how soon is a frame listed, and how far behind the wall clock are we?

Run from the repository root (needs the Cython build in place)::

    python3 benchmarks/bench_latency.py [--seconds 20] [--fps 30] [--gop 60] [--quick]
    python3 benchmarks/bench_latency.py --in-process     # only the in-process baseline

Default mode, the real product path: a real ``kitch serve`` on free loopback ports (bcrypt
cost 4), an account whose stream key the publisher uses, and a 320x240 H.264 + AAC FLV test
pattern published over RTMP with PyAV (FFmpeg's RTMP client), its packets copied and paced in
real time. The publisher records the wall-clock time at which each video packet was written to
the socket; on loopback that is when the frame reaches the server (FFmpeg's interleaver holds a
video packet until the next audio packet with a DTS at or after it is muxed, so a packet's time
is taken when that ``mux()`` call returns; each ``mux()`` writes through to the socket). A
probe client follows ``/hls/CHANNEL/source/index.m3u8`` with blocking reloads
(``_HLS_msn``/``_HLS_part``), as hls.js and Safari do. Parts are mapped to frames by media
time: the segmenter's timeline starts at 0 at the first keyframe (the first video packet of
the fixture), and PROGRAM-DATE-TIME is that timeline placed on the wall clock, so a part's end
is (its segment's PDT - the PDT of segment 0) + the durations of the parts before it, in
milliseconds after the first keyframe's DTS.

The baseline, in the same run: the same packets fed straight into an in-process HlsRegistry
behind a real uvicorn (the path after the RTMP chunk parser), probed the same way. The ratio
real / in-process is what the RTMP ingest (FFmpeg's muxer, the socket, parser, hub) adds.

Printed, over all parts seen (defaults: 20 s of 30 fps, 2 s GOP, HlsSettings defaults):

* listing delay: from the moment the last frame of a part reached the server to the moment
  the probe received a playlist listing that part (aim: p95 under 0.5 s);
* live lag: wall clock minus the end of the newest listed media, placed on the wall clock by
  EXT-X-PROGRAM-DATE-TIME (the arrival of the first keyframe; aim: p95 under 0.5 s).

``--quick``: a 4 s clip with a 1 s GOP, each mode (CI smoke, ~15 s). No playlist
exists before the second keyframe (TARGETDURATION is decided there), so the parts of the first
GOP are listed before the probe can wait for them and are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import av
import httpx
import m3u8
from _common import machine, ratio, verdict

from kitch.hls import HlsRegistry, HlsSettings
from kitch.media import MediaPacket
from tests.hls.live import live_server
from tests.hls.packets import demux_packets
from tests.support.media import Fixture, make_fixture
from tests.support.server import KitchServer

AIM_S = 0.5
TAIL_S = 0.6  # after the publisher stops, how long the probe may still pick up the last parts


@dataclass
class Result:
    delays: list[float]
    lags: list[float]
    parts: int  # parts listed in the run (matched or not)

    def p95(self, values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0

    def line(self, name: str) -> str:
        if not self.delays or not self.lags:
            return f"{name}: nothing measured ({self.parts} parts listed)"
        d, lg = self.delays, self.lags
        return (
            f"{name}: listing delay median {statistics.median(d) * 1000:.0f} ms, "
            f"p95 {self.p95(d) * 1000:.0f} ms, max {max(d) * 1000:.0f} ms over {len(d)} parts; "
            f"live lag median {statistics.median(lg) * 1000:.0f} ms, "
            f"p95 {self.p95(lg) * 1000:.0f} ms"
        )

    def met(self) -> bool:
        return (
            bool(self.delays and self.lags)
            and max(self.p95(self.delays), self.p95(self.lags)) < AIM_S
        )


def _first_pdt(playlist: str) -> float:
    """The first EXT-X-PROGRAM-DATE-TIME as Unix seconds (the m3u8 package leaves it off a
    segment that has only parts so far)."""
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            stamp = line.split(":", 1)[1].replace("Z", "+00:00")
            return datetime.datetime.fromisoformat(stamp).timestamp()
    raise ValueError("no EXT-X-PROGRAM-DATE-TIME in the playlist")


async def _follow(url: str, fed_at: dict[int, float], frame_ms: int, out: Result) -> None:
    """Follow the media playlist with blocking reloads, appending to ``out`` as parts appear."""
    async with httpx.AsyncClient(timeout=15) as client:
        while True:  # the playlist exists once the first part is out
            r = await client.get(url)
            if r.status_code == 200:
                break
            await asyncio.sleep(0.02)
        pl = m3u8.loads(r.text)
        assert pl.media_sequence == 0, "the probe came too late to see segment 0"
        anchor = _first_pdt(r.text)  # media time 0 (the first keyframe) on the wall clock
        seen = {p.uri for seg in pl.segments for p in seg.parts}  # listed before we came
        while True:
            last = pl.segments[-1]
            msn = pl.media_sequence + len(pl.segments) - 1
            nxt = (msn + 1, 0) if last.uri else (msn, len(last.parts))
            r = await client.get(url, params={"_HLS_msn": nxt[0], "_HLS_part": nxt[1]})
            got = time.time()
            if r.status_code != 200:
                continue
            pl = m3u8.loads(r.text)
            t = _first_pdt(r.text)
            for seg in pl.segments:
                if seg.program_date_time is not None:
                    t = seg.program_date_time.timestamp()
                pt = t
                for part in seg.parts:
                    pt += part.duration
                    if part.uri in seen:
                        continue
                    seen.add(part.uri)
                    out.parts += 1
                    key = round((pt - anchor) * 1000)  # part end, ms after the first keyframe
                    near = min(fed_at, key=lambda k: abs(k - key), default=None)
                    if near is not None and abs(near - key) <= frame_ms // 2:
                        out.delays.append(got - fed_at[near])
                t += seg.duration if seg.uri else sum(p.duration for p in seg.parts)
            if pl.is_endlist:
                return
            out.lags.append(got - t)


def _probe(url: str, fed_at: dict[int, float], frame_ms: int, done: threading.Event) -> Result:
    """Run the probe until ``done`` is set (plus TAIL_S for the last parts)."""
    out = Result([], [], 0)

    async def run() -> None:
        task = asyncio.create_task(_follow(url, fed_at, frame_ms, out))
        while not done.is_set() and not task.done():
            await asyncio.sleep(0.05)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), TAIL_S)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]

    asyncio.run(run())
    return out


def _publish(url: str, fx: Fixture, fed_at: dict[int, float], done: threading.Event) -> None:
    """Copy the fixture's packets to ``url`` over RTMP in real time (tests.support.media's
    publish_pyav pacing loop), recording when each video packet goes out: ``fed_at[part end
    ms after the first video DTS] = wall time``."""
    frame_ms = round(1000 / fx.fps)
    try:
        with av.open(str(fx.path)) as inp:
            out = av.open(url, "w", format="flv")
            try:
                mapping = {
                    s.index: out.add_stream_from_template(s, opaque=True)
                    for s in inp.streams
                    if s.type in ("video", "audio")
                }
                has_audio = any(s.type == "audio" for s in inp.streams)
                out.start_encoding()  # connect and publish first, so pacing starts after
                start = time.monotonic()
                first: int | None = None
                pending: list[tuple[int, int]] = []  # (dts, key) held by the interleaver
                for pkt in inp.demux():
                    if pkt.dts is None or pkt.size == 0 or pkt.stream.index not in mapping:
                        continue
                    tb = pkt.time_base
                    dts = pkt.dts
                    ms = round(dts * tb * 1000)
                    delay = start + float(dts * tb) - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    kind = pkt.stream.type
                    pkt.stream = mapping[pkt.stream.index]
                    if kind == "video":
                        first = ms if first is None else first
                        pending.append((ms, ms - first + frame_ms))
                    out.mux(pkt)
                    now = time.time()
                    if kind == "audio" or not has_audio:
                        while pending and (pending[0][0] <= ms or not has_audio):
                            fed_at[pending.pop(0)[1]] = now
            finally:
                out.close()
                now = time.time()
                for _, key in pending:  # flushed by close()
                    fed_at[key] = now
    finally:
        done.set()


def run_real(fx: Fixture, workdir: Path) -> tuple[Result, str]:
    """Publish over RTMP into a real ``kitch serve`` and probe its LL-HLS playlist."""
    server = KitchServer(workdir / "data", workdir / "serve.log", env={"KITCH_BCRYPT_COST": "4"})
    (workdir / "data").mkdir(exist_ok=True)
    server.start()
    try:
        account = server.create_account("bench")
        fed_at: dict[int, float] = {}
        done = threading.Event()
        pub = threading.Thread(
            target=_publish,
            args=(server.rtmp_url(account.stream_key), fx, fed_at, done),
            daemon=True,
        )
        pub.start()
        url = f"{server.base}/hls/{account.username}/source/index.m3u8"
        result = _probe(url, fed_at, round(1000 / fx.fps), done)
        pub.join(10)
        pt = _part_target(server.get(f"/hls/{account.username}/source/index.m3u8").decode())
    finally:
        server.stop()
    return result, pt


def _part_target(playlist: str) -> str:
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-PART-INF:PART-TARGET="):
            return line.split("=", 1)[1]
    return "?"


def run_in_process(fx: Fixture) -> tuple[Result, str]:
    """Feed the demuxed packets straight into an in-process HlsRegistry behind uvicorn."""
    packets = demux_packets(fx.path)
    frame_ms = round(1000 / fx.fps)
    registry = HlsRegistry(HlsSettings())
    fed_at: dict[int, float] = {}  # part end (ms after the first video DTS) -> wall time fed
    done = threading.Event()
    with live_server(registry) as srv:
        stream = registry.open("bench", time.time())

        def feed() -> None:
            base: int | None = None
            start = time.monotonic()
            first: int | None = None
            try:
                for p in packets:
                    if not p.is_config:
                        first = p.dts if first is None else first
                        delay = start + (p.dts - first) / 1000 - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                    if p.kind == "video" and not p.is_config:
                        base = p.dts if base is None else base
                        fed_at[p.dts - base + frame_ms] = time.time()

                    def go(p: MediaPacket = p) -> None:
                        stream.feed(p, time.time())

                    srv.call(go)
                srv.call_wait(lambda: stream.end(time.time()))
            finally:
                done.set()

        t = threading.Thread(target=feed, daemon=True)
        t.start()
        result = _probe(f"{srv.base}/bench/source/index.m3u8", fed_at, frame_ms, done)
        t.join()
    return result, str(stream.stats["part_target"])


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="media published (default 20)")
    ap.add_argument("--fps", type=int, default=30, help="frame rate (default 30)")
    ap.add_argument("--gop", type=int, default=60, help="keyframe interval, frames (default 60)")
    ap.add_argument("--in-process", action="store_true", help="only the in-process baseline")
    ap.add_argument("--quick", action="store_true", help="4 s of media per mode (CI smoke)")
    args = ap.parse_args()
    print(machine(), flush=True)
    media = Path(tempfile.gettempdir()) / "kitch-bench"
    media.mkdir(exist_ok=True)
    # One clip as long as the run: a looped clip overlaps its own timestamps at every loop
    # boundary (AAC frames run a little past the video), the segmenter repairs them forward and
    # the probe's frame matching drifts with them (measured: +25 ms per loop).
    seconds = 4.0 if args.quick else args.seconds
    gop = 30 if args.quick else args.gop
    fx = make_fixture(media, seconds=seconds, fps=args.fps, gop=gop)
    print(f"stream: {fx.width}x{fx.height} {fx.fps} fps, GOP {gop}, {fx.seconds:.0f} s")
    base, pt = run_in_process(fx)
    print(f"in-process HlsRegistry (baseline), PART-TARGET {pt}")
    print(base.line("  in-process"), flush=True)
    if args.in_process:
        print(f"summary: in-process aim (< {AIM_S * 1000:.0f} ms at p95): {verdict(base.met())}")
        return
    with tempfile.TemporaryDirectory(prefix="kitch-bench-latency-") as tmp:
        real, pt = run_real(fx, Path(tmp))
    print(f"kitch serve, RTMP publish (PyAV), PART-TARGET {pt}")
    print(real.line("  real path"))
    if real.delays and base.delays:
        rd, bd = statistics.median(real.delays), statistics.median(base.delays)
        print(
            f"real / in-process: listing delay median {ratio(rd, bd)} "
            f"(+{(rd - bd) * 1000:.0f} ms for the RTMP path), p95 "
            f"{ratio(real.p95(real.delays), base.p95(base.delays))}; live lag median "
            f"{ratio(statistics.median(real.lags), statistics.median(base.lags))}"
        )
    print(f"summary: real path aim (< {AIM_S * 1000:.0f} ms at p95): {verdict(real.met())}")


if __name__ == "__main__":
    main()
