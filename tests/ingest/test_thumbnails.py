"""The thumbnails sink with its real worker thread and store: when pictures are made, skips,
the offline picture written to disk at the end, and what a restart finds there."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kitch.config import ConfigError, Settings, load_settings
from kitch.hls import HlsRegistry, HlsSettings
from kitch.ingest.sinks import BroadcastInfo
from kitch.ingest.thumbnails import SIZE_NAMES, Thumbnailer, ThumbnailSink, ThumbnailStore
from kitch.media import MediaPacket
from tests.hls.packets import demux_packets
from tests.support.media import Fixture

WALL = 1_700_000_000.0


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    store: ThumbnailStore
    worker: Thumbnailer
    clock: Clock
    registry: HlsRegistry

    def sink(
        self, channel: str = "ch", channel_id: int = 7, broadcast_id: int = 1
    ) -> ThumbnailSink:
        stream = self.registry.open(channel, WALL)
        info = BroadcastInfo(channel, channel_id, broadcast_id, stream)
        return ThumbnailSink(info, self.worker, clock=self.clock)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    store = ThumbnailStore(tmp_path / "thumbnails", interval=2.0)
    worker = Thumbnailer(store, interval=2.0)
    yield Setup(store, worker, Clock(), HlsRegistry(HlsSettings()))
    await asyncio.to_thread(worker.close)


async def settled(sink: ThumbnailSink, timeout: float = 10.0) -> None:
    """Wait until the sink's job (if any) has reported back to the loop."""
    for _ in range(int(timeout / 0.01)):
        if not sink._busy:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the thumbnail job did not finish")


async def saved(store: ThumbnailStore, name: str, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if name in store.saved:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the offline picture was not saved")


def video(fixture: Fixture) -> list[MediaPacket]:
    return [p for p in demux_packets(fixture.path) if p.kind == "video"]


async def feed_all(s: Setup, sink: ThumbnailSink, packets: list[MediaPacket]) -> None:
    """Feed in media time (the clock follows the stamps), letting each job finish."""
    for p in packets:
        s.clock.now = p.dts / 1000
        sink.packet(p, WALL + p.dts / 1000)
        if sink._busy:
            await settled(sink)


async def test_a_picture_at_the_first_keyframe_then_one_per_interval(
    setup: Setup, av_fixture: Fixture
) -> None:
    sink = setup.sink()
    assert sink.health()["thumbnails"]["state"] == "waiting"
    assert setup.store.version("ch", 7) is None
    # 4 s at 30 fps, keyframes at 0.023, 1.023, 2.023 and 3.023 s; the interval is 2 s:
    # pictures of the first and the third
    await feed_all(setup, sink, video(av_fixture))
    h = sink.health()["thumbnails"]
    assert (h["state"], h["made"], h["skips"], h["failures"]) == ("running", 2, 0, 0)
    assert h["last_at"] == "2023-11-14T22:13:22.023Z" and h["interval"] == 2.0
    assert 0 < h["encode_ms"] < 2000
    live = setup.store.live_picture("ch")
    assert live is not None and live.taken_at == WALL + 2.023
    assert setup.store.version("ch", 7) == int((WALL + 2.023) * 1000)
    assert set(live.images) == set(SIZE_NAMES)
    assert all(data[:3] == b"\xff\xd8\xff" for data in live.images.values())


async def test_a_busy_worker_makes_the_sink_skip_until_the_next_keyframe(
    setup: Setup, av_fixture: Fixture
) -> None:
    sink = setup.sink()
    release = threading.Event()
    setup.worker.submit(lambda: release.wait(10))  # another broadcast's long job
    packets = video(av_fixture)
    keyframes = [i for i, p in enumerate(packets) if p.keyframe and not p.is_config]
    for p in packets[: keyframes[2]]:  # the first two keyframes: one job queued, then a skip
        setup.clock.now = p.dts / 1000 + (10 if p is packets[keyframes[1]] else 0)
        sink.packet(p, WALL + p.dts / 1000)
    assert sink._busy and sink.made == 0 and sink.skips == 1
    release.set()
    await settled(sink)
    assert sink.made == 1 and sink.health()["thumbnails"]["skips"] == 1
    # the next keyframe past the interval starts the next picture
    setup.clock.now = 100.0
    sink.packet(packets[keyframes[2]], WALL + 2.0)
    assert sink._busy
    await settled(sink)
    assert sink.made == 2 and sink.skips == 1
    live = setup.store.live_picture("ch")
    assert live is not None and live.taken_at == WALL + 2.0


async def test_the_last_picture_is_saved_at_the_end_and_found_after_a_restart(
    setup: Setup, av_fixture: Fixture
) -> None:
    sink = setup.sink()
    await feed_all(setup, sink, video(av_fixture))
    last = setup.store.live_picture("ch")
    assert last is not None
    sink.end(WALL + 4)
    await saved(setup.store, "ch")
    assert setup.store.live_picture("ch") is None  # served from the disk from now on
    assert setup.store.version("ch", 7) == last.version
    folder = setup.store.directory / "7-ch"
    for size in SIZE_NAMES:
        path = folder / f"{size}.jpg"
        assert path.read_bytes() == last.images[size]
        assert path.stat().st_mtime == pytest.approx(last.taken_at, abs=0.01)
        assert setup.store.read_saved("ch", 7, size) == last.images[size]
    assert sorted(os.listdir(folder)) == ["320x180.jpg", "640x360.jpg"]  # no temporary left
    # a restart: a new store learns the picture from the files
    again = ThumbnailStore(setup.store.directory)
    await again.load()
    assert again.version("ch", 7) == last.version
    # another channel id under the same name (an account deleted and registered again)
    assert again.version("ch", 8) is None and again.saved_picture("ch", 8) is None


async def test_a_broadcast_that_ends_before_its_first_picture_still_saves_one(
    setup: Setup, av_fixture: Fixture
) -> None:
    sink = setup.sink(channel="short", channel_id=3)
    release = threading.Event()
    setup.worker.submit(lambda: release.wait(10))
    packets = video(av_fixture)
    for p in packets[:5]:  # config + the first keyframe and a few frames: a job is queued
        sink.packet(p, WALL)
    assert sink._busy and sink.made == 0
    sink.end(WALL + 0.2)
    release.set()
    await saved(setup.store, "short")
    assert setup.store.version("short", 3) == int(WALL * 1000)
    assert setup.store.live_picture("short") is None


async def test_close_waits_for_the_queued_saves(setup: Setup, av_fixture: Fixture) -> None:
    sink = setup.sink()
    await feed_all(setup, sink, video(av_fixture)[:40])
    sink.end(WALL + 1)
    await asyncio.to_thread(setup.worker.close)  # what the server does at shutdown
    assert (setup.store.directory / "7-ch" / "640x360.jpg").exists()
    assert not setup.worker.submit(lambda: None)


async def test_a_new_broadcast_keeps_its_own_live_picture(
    setup: Setup, av_fixture: Fixture
) -> None:
    first = setup.sink(broadcast_id=1)
    packets = video(av_fixture)
    await feed_all(setup, first, packets[:40])
    first.end(WALL + 1)
    second = setup.sink(broadcast_id=2)
    setup.clock.now = 0.0
    await feed_all(setup, second, packets[:40])
    await saved(setup.store, "ch")
    # the first broadcast's save does not take the second one's live picture away
    entry = setup.store.live.get("ch")
    assert entry is not None and entry[0] == 2


async def test_a_codec_without_a_decoder_is_reported_and_skipped(setup: Setup) -> None:
    sink = setup.sink()
    sink.packet(MediaPacket("video", "theora", 0, 0, b"\x80theora", True, True), WALL)
    sink.packet(MediaPacket("video", "theora", 0, 0, b"\x00" * 64, True), WALL)
    h = sink.health()["thumbnails"]
    assert h["state"] == "unavailable" and "theora" in h["reason"]
    assert not sink._busy and h["made"] == 0
    sink.end(WALL)
    await asyncio.to_thread(setup.worker.close)
    assert "ch" not in setup.store.saved and not setup.store.directory.exists()


async def test_a_keyframe_that_fails_to_decode_is_counted(
    setup: Setup, av_fixture: Fixture
) -> None:
    sink = setup.sink()
    config = video(av_fixture)[0]
    assert config.is_config
    sink.packet(config, WALL)
    sink.packet(MediaPacket("video", "h264", 0, 0, b"\x00\x00\x00\x02\x65\x88", True), WALL)
    await settled(sink)
    h = sink.health()["thumbnails"]
    assert h["failures"] == 1 and h["made"] == 0 and h["error"]
    assert setup.store.live_picture("ch") is None


@pytest.mark.parametrize("value", ["-1", "0.5", "61", "nan", "inf"])
def test_the_interval_setting_is_0_or_1_to_60_seconds(value: str) -> None:
    with pytest.raises(ConfigError, match="thumbnail_interval"):
        load_settings(env={"KITCH_THUMBNAIL_INTERVAL": value}, dotenv=None)


def test_the_interval_setting_defaults_to_45_seconds() -> None:
    assert Settings().thumbnail_interval == 45.0
    for value in ("0", "1", "30", "60"):
        settings = load_settings(env={"KITCH_THUMBNAIL_INTERVAL": value}, dotenv=None)
        assert settings.thumbnail_interval == float(value)
