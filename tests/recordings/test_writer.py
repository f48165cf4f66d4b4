"""The writer thread and the on-disk layout, on real files (a FIFO nobody reads is the slow
disk; a directory turned into a file is the failing one)."""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path

import pytest

from kitch.recordings import files
from kitch.recordings.retention import DAY, Held, plan
from kitch.recordings.writer import (
    Finished,
    Progress,
    RecordingWriter,
    Report,
    SegmentJob,
    Stopped,
)

INIT = b"\x00\x00\x00\x18ftypiso6" + b"i" * 100


def job(msn: int, *, duration: float = 2.0, init: int = 0, disc: bool = False) -> SegmentJob:
    return SegmentJob(
        msn, bytes([msn % 256]) * 1000, duration, init, disc, 1_800_000_000.0 + msn, 2
    )


class Reports:
    def __init__(self) -> None:
        self.q: queue.Queue[Report] = queue.Queue()

    def __call__(self, report: Report) -> None:
        self.q.put(report)

    def last(self, kind: type, timeout: float = 5.0) -> Report:
        while True:
            report = self.q.get(timeout=timeout)
            if isinstance(report, kind):
                return report


def test_segments_are_listed_after_their_files_and_the_end_closes_the_playlist(
    tmp_path: Path,
) -> None:
    reports = Reports()
    directory = tmp_path / "alice" / "7"
    w = RecordingWriter(directory, reports)
    w.start()
    assert w.put_init(0, INIT)
    for msn in range(3):
        assert w.put_segment(job(msn))
    assert reports.last(Progress) == Progress(1, len(INIT) + 1000, 2.0)
    reports.last(Progress)
    reports.last(Progress)
    text = (directory / "index.m3u8").read_text()
    assert text.startswith("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n")
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text and files.ENDLIST not in text
    # a codec change: a new init, a discontinuity and its own EXT-X-MAP
    assert w.put_init(1, INIT + b"2")
    assert w.put_segment(job(3, init=1, disc=True, duration=1.5))
    w.finish()
    done = reports.last(Finished)
    assert done == Finished(4, 2 * len(INIT) + 1 + 4000, 7.5)
    assert w.join(5) and not w.put_segment(job(4))
    text = (directory / "index.m3u8").read_text()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.endswith("#EXT-X-ENDLIST\n")
    entries, ts = files.parse(text)
    assert not ts and [e.uri for e in entries] == ["s0.m4s", "s1.m4s", "s2.m4s", "s3.m4s"]
    assert entries[0].map_uri == "init.mp4" and entries[3].map_uri == "init-1.mp4"
    assert entries[3].discontinuity and not any(e.discontinuity for e in entries[:3])
    assert (directory / "s2.m4s").read_bytes() == bytes([2]) * 1000
    assert sorted(p.name for p in directory.iterdir()) == [
        "index.m3u8",
        "init-1.mp4",
        "init.mp4",
        "s0.m4s",
        "s1.m4s",
        "s2.m4s",
        "s3.m4s",
    ]


def test_a_disk_that_cannot_keep_up_stops_the_recording_without_blocking(
    tmp_path: Path,
) -> None:
    reports = Reports()
    directory = tmp_path / "slow"
    directory.mkdir()
    fifo = directory / "s0.m4s"
    os.mkfifo(fifo)  # opening it for writing blocks until someone reads: a stuck disk
    w = RecordingWriter(directory, reports, max_queue_bytes=3500)
    w.start()
    assert w.put_init(0, INIT)
    assert w.put_segment(job(0))  # the thread hangs on this one
    deadline = time.monotonic() + 5
    while w.queued_bytes and time.monotonic() < deadline:
        time.sleep(0.01)
    assert w.queued_bytes == 0  # it took the segment and waits on the "disk"
    assert w.put_segment(job(1)) and w.put_segment(job(2)) and w.put_segment(job(3))
    assert not w.put_segment(job(4))  # the queue would pass 3,500 bytes: stop
    assert not w.put_segment(job(5))
    assert not w.done
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the disk comes back
    try:
        stopped = reports.last(Stopped)
    finally:
        os.close(reader)
    assert isinstance(stopped, Stopped)
    assert (
        stopped.reason == "the disk could not keep up (more than 3500 bytes waiting to be written)"
    )
    assert stopped.segments == 1  # what was written stays, closed as VOD
    assert w.join(5)
    text = (directory / "index.m3u8").read_text()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and "s1.m4s" not in text


def test_a_write_error_stops_the_recording_with_its_reason(tmp_path: Path) -> None:
    reports = Reports()
    directory = tmp_path / "bad"
    w = RecordingWriter(directory, reports)
    w.start()
    w.put_init(0, INIT)
    w.put_segment(job(0))
    reports.last(Progress)
    # the directory becomes a file: every later open fails (ENOTDIR), as for root a
    # read-only mount would
    for p in directory.iterdir():
        p.unlink()
    directory.rmdir()
    directory.write_bytes(b"")
    w.put_segment(job(1))
    stopped = reports.last(Stopped)
    assert isinstance(stopped, Stopped)
    assert stopped.reason == "cannot write the recording (Not a directory)"
    assert stopped.segments == 1 and w.join(5)
    assert not w.put_segment(job(2))


def test_the_writer_thread_is_not_the_callers(tmp_path: Path) -> None:
    seen: list[str] = []
    w = RecordingWriter(tmp_path / "t", lambda r: seen.append(threading.current_thread().name))
    w.start()
    w.put_init(0, INIT)
    w.put_segment(job(0))
    w.finish()
    assert w.join(5)
    assert seen and all(name.startswith("rec-") for name in seen)


def test_finish_closes_what_a_killed_writer_left(tmp_path: Path) -> None:
    directory = tmp_path / "crash"
    directory.mkdir()
    (directory / "init.mp4").write_bytes(INIT)
    for msn in range(3):
        (directory / f"s{msn}.m4s").write_bytes(b"x" * 100)
    (directory / "s3.m4s").write_bytes(b"half a segm")  # written, never listed
    (directory / "index.m3u8.tmp").write_text("junk")
    entries = [files.Entry("s0.m4s", 2.0, map_uri="init.mp4", program_date_time=1.8e9)]
    entries += [files.Entry(f"s{n}.m4s", 2.0) for n in (1, 2)]
    text = files.header(2, ts=False, ended=False) + "".join(map(files.render_entry, entries))
    (directory / "index.m3u8").write_text(text + "#EXTINF:2.00000,\ns3.m")  # cut mid-entry
    summary = files.finish(directory)
    assert summary == files.Summary(3, len(INIT) + 300, 6.0)
    closed = (directory / "index.m3u8").read_text()
    assert closed == files.render(entries, ts=False, ended=True)
    assert sorted(p.name for p in directory.iterdir()) == [
        "index.m3u8",
        "init.mp4",
        "s0.m4s",
        "s1.m4s",
        "s2.m4s",
    ]
    assert files.finish(directory) == summary  # again: nothing changes
    # a first segment whose file is gone hands its EXT-X-MAP to the next one
    (directory / "s0.m4s").unlink()
    summary = files.finish(directory)
    assert summary.segments == 2
    parsed, _ = files.parse((directory / "index.m3u8").read_text())
    assert parsed[0].uri == "s1.m4s" and parsed[0].map_uri == "init.mp4"
    # nothing written at all: no playlist, a failed recording
    empty = tmp_path / "empty"
    empty.mkdir()
    assert files.finish(empty) == files.Summary(0, 0, 0.0)


def test_readers_get_whole_entries_only() -> None:
    entries = [files.Entry("s0.m4s", 2.0, map_uri="init.mp4"), files.Entry("s1.m4s", 1.5)]
    event = files.header(2, ts=False, ended=False) + "".join(map(files.render_entry, entries))
    assert files.live_text(event) == event
    assert files.live_text(event + "#EXTINF:2.00000,\ns2.m") == event
    assert files.live_text(event + "#EXT-X-DISCONTINUITY\n") == event
    assert files.live_text(files.header(2, ts=False, ended=False)) == ""
    vod = files.as_vod(event + "#EXTINF:2.0")
    assert vod == files.render(entries, ts=False, ended=True)
    assert files.as_vod(vod) == vod


@pytest.mark.parametrize(
    "name",
    ["index.m3u8", "init.mp4", "init-3.mp4", "s0.m4s", "s123.ts"],
)
def test_file_names_served(name: str) -> None:
    assert files.FILE_NAME.match(name)


@pytest.mark.parametrize(
    "name",
    ["../x", "index.m3u8.tmp", "s1.mp4", "init-.mp4", "s.m4s", ".m4s", "kitch.db", "s1.m4s/"],
)
def test_file_names_refused(name: str) -> None:
    assert not files.FILE_NAME.match(name)


def test_the_retention_plan() -> None:
    now = 100 * DAY
    held = [
        Held(1, now - 20 * DAY, 500),
        Held(2, now - 10 * DAY, 300),
        Held(3, now - 5 * DAY, 200),
        Held(4, now - 1, 100),
    ]
    assert plan(held, now=now, retention_days=14, quota_bytes=0) == [1]
    assert plan(held, now=now, retention_days=0, quota_bytes=0) == []
    # over the quota: the oldest go first until it fits (live recordings count too)
    assert plan(held, now=now, retention_days=0, quota_bytes=600) == [1]
    assert plan(held, now=now, retention_days=0, quota_bytes=599) == [1, 2]
    assert plan(held, now=now, retention_days=14, quota_bytes=600) == [1]
    assert plan(held, now=now, retention_days=14, quota_bytes=600, live_bytes=250) == [1, 2]
    assert plan(held, now=now, retention_days=0, quota_bytes=1) == [1, 2, 3, 4]
