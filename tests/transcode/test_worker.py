"""The ladder's worker threads: every rung from one decode, bounded queues, restarts."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av

from kitch.media import MediaPacket
from kitch.transcode.ladder import DecodedFrame, Rung, plan_ladder
from kitch.transcode.worker import LadderWorker, _FrameBuffer
from tests.hls.packets import demux_packets
from tests.support.media import make_fixture


class Collector:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.out: dict[str, list[MediaPacket]] = {}

    def __call__(self, name: str, packets: list[MediaPacket]) -> None:
        with self.lock:
            self.out.setdefault(name, []).extend(packets)


RUNGS = [Rung("240p", 240, 400), Rung("160p", 160, 200)]


def test_worker_encodes_every_rung_with_aligned_keyframes(media_dir: Path) -> None:
    fx = make_fixture(media_dir, seconds=3, width=640, height=360, gop=20, audio=True)
    packets = demux_packets(fx.path)
    got = Collector()
    # queues that hold the whole clip: fed faster than real time, nothing may be dropped
    worker = LadderWorker("alice", plan_ladder(640, 360, 30, RUNGS), got, frame_queue=1000)
    worker.start()
    for p in packets:
        worker.put(p)
    worker.close()
    source_keys = [p.dts for p in packets if p.kind == "video" and p.keyframe and not p.is_config]
    assert set(got.out) == {"240p", "160p"}  # AAC is shared as it is: nothing emitted for it
    for name in ("240p", "160p"):
        media = [p for p in got.out[name] if not p.is_config]
        assert got.out[name][0].is_config
        assert [p.dts for p in media if p.keyframe] == source_keys, name
        stats = worker.stats.rungs[name]
        assert stats.frames_out == len(media) == 90 and stats.dropped == 0, stats
        assert stats.cpu_seconds > 0


def test_a_full_input_queue_drops_and_counts_without_blocking(media_dir: Path) -> None:
    fx = make_fixture(media_dir, seconds=3, width=640, height=360, gop=20, audio=True)
    packets = demux_packets(fx.path)
    got = Collector()
    worker = LadderWorker("bob", plan_ladder(640, 360, 30, RUNGS), got)
    # not started: nothing drains the queue, so put() must drop rather than wait
    started = time.perf_counter()
    for _ in range(3):
        for p in packets:
            worker.put(p)
    took = time.perf_counter() - started
    print(
        f"{3 * len(packets)} puts in {took * 1000:.1f} ms, dropped {worker.stats.dropped_packets}"
    )
    assert took < 1.0
    assert worker.stats.dropped_packets == 3 * len(packets) - 240


def test_a_broken_decoder_restarts_alone_at_the_next_keyframe(media_dir: Path) -> None:
    fx = make_fixture(media_dir, seconds=3, width=640, height=360, gop=20, audio=False)
    packets = demux_packets(fx.path)
    got = Collector()
    ticks = iter(range(0, 10**6, 10))  # every backoff is over by the next look at the clock
    worker = LadderWorker(
        "carol",
        plan_ladder(640, 360, 30, RUNGS[:1]),
        got,
        clock=lambda: float(next(ticks)),
        frame_queue=1000,
    )
    worker.start()
    config, media = packets[0], packets[1:]
    bad = MediaPacket(
        "video", "h264", 0, 0, b"\x01\x00\x00\x00\xff\xe1\x00\x02\x00\x00", True, True
    )
    keys = [i for i, p in enumerate(media) if p.keyframe]
    cut = keys[2]
    for p in [config, *media[:cut], bad, *media[cut : keys[3]], config, *media[keys[3] :]]:
        worker.put(p)
    worker.close()
    assert worker.stats.decoder_restarts == 1
    out = [p for p in got.out["240p"] if not p.is_config]
    # the GOP under the broken configuration is lost; every other frame is there, aligned
    lost = keys[3] - cut
    assert len(out) == len(media) - lost
    assert [p.dts for p in out if p.keyframe] == [media[k].dts for k in keys if k != cut]


def test_a_rung_that_falls_behind_drops_frames_but_keeps_every_keyframe(media_dir: Path) -> None:
    fx = make_fixture(media_dir, seconds=3, width=640, height=360, gop=20, audio=False)
    packets = demux_packets(fx.path)
    got = Collector()
    # fed all at once (30x real time) into a 2-frame queue: the rung cannot keep up
    worker = LadderWorker("dave", plan_ladder(640, 360, 30, RUNGS[:1]), got, frame_queue=2)
    worker.start()
    for p in packets:
        worker.put(p)
    worker.close()
    stats = worker.stats.rungs["240p"]
    out = [p for p in got.out["240p"] if not p.is_config]
    print(f"dropped {stats.dropped} of {stats.dropped + stats.frames_out} frames")
    assert stats.dropped > 0 and stats.dropped + len(out) == 90
    assert [p.dts for p in out if p.keyframe] == [p.dts for p in packets[1:] if p.keyframe]


def test_a_buffer_full_of_keyframes_still_takes_the_next_one() -> None:
    """The encoder stalled for whole GOPs: a new keyframe goes beyond the capacity (up to
    twice it) rather than pushing out a queued one; only past that is the oldest given up."""
    frame = av.VideoFrame(16, 16, "yuv420p")
    buffer = _FrameBuffer(2)
    keys = [DecodedFrame(frame, 1000 * i, True) for i in range(5)]
    assert [buffer.put(k) for k in keys[:4]] == [0, 0, 0, 0]
    assert buffer.put(DecodedFrame(frame, 4500, False)) == 1  # a plain frame is dropped
    assert buffer.put(keys[4]) == 1  # four held: the oldest keyframe makes room
    assert [i.pts for i in buffer.items if isinstance(i, DecodedFrame)] == [1000, 2000, 3000, 4000]
