"""A recording on disk: its directory, file names, VOD playlist, and closing one a crash left.

Blocking file work, called from threads (the writer, ``asyncio.to_thread``), never from the
event loop. One directory per recording, ``{recordings dir}/{channel}/{broadcast id}/``:

* ``init.mp4`` (fMP4: the source rendition's init segment; after a codec change
  ``init-1.mp4``, ``init-2.mp4``...);
* ``s{msn}.m4s`` (or ``s{msn}.ts`` for MPEG-TS output), each segment exactly as the live HLS
  muxer made it (never re-muxed: its ``tfdt`` times are the live stream's, which start at 0
  and continue across a reconnect, so the files form one timeline);
* ``index.m3u8``: ``#EXT-X-PLAYLIST-TYPE:EVENT`` while the broadcast goes on (each segment's
  entry is appended after its file is complete, so a killed process leaves a playlist that
  only names whole files), rewritten once as ``VOD`` with ``#EXT-X-ENDLIST`` when it ends
  (:func:`finish`, also what start-up runs on a recording a dead process left open).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PLAYLIST = "index.m3u8"
#: Names a recording directory may hold and the HTTP side may serve.
FILE_NAME = re.compile(r"^(?:index\.m3u8|init(?:-\d{1,6})?\.mp4|s\d{1,12}\.(?:m4s|ts))$")
#: fMP4 with EXT-X-MAP needs version 6; MPEG-TS playlists are version 3.
FMP4_VERSION = 6
TS_VERSION = 3
ENDLIST = "#EXT-X-ENDLIST"


def init_name(number: int) -> str:
    return "init.mp4" if number == 0 else f"init-{number}.mp4"


def segment_name(msn: int, ts: bool) -> str:
    return f"s{msn}.{'ts' if ts else 'm4s'}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One segment of the playlist and the tags in front of it."""

    uri: str
    duration: float
    discontinuity: bool = False
    map_uri: str | None = None  # a new EXT-X-MAP starts here (fMP4)
    program_date_time: float | None = None  # wall clock of its first frame (Unix seconds)


@dataclass(frozen=True, slots=True)
class Summary:
    """What a finished recording holds."""

    segments: int
    bytes: int
    duration: float


def _pdt(when: float) -> str:
    return (
        datetime.fromtimestamp(when, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def header(target_duration: int, *, ts: bool, ended: bool) -> str:
    return (
        "#EXTM3U\n"
        f"#EXT-X-VERSION:{TS_VERSION if ts else FMP4_VERSION}\n"
        f"#EXT-X-TARGETDURATION:{target_duration}\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXT-X-PLAYLIST-TYPE:{'VOD' if ended else 'EVENT'}\n"
    )


def render_entry(entry: Entry) -> str:
    lines = []
    if entry.discontinuity:
        lines.append("#EXT-X-DISCONTINUITY")
    if entry.map_uri is not None:
        lines.append(f'#EXT-X-MAP:URI="{entry.map_uri}"')
    if entry.program_date_time is not None:
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_pdt(entry.program_date_time)}")
    lines.append(f"#EXTINF:{entry.duration:.5f},")
    lines.append(entry.uri)
    return "\n".join(lines) + "\n"


def target_duration(entries: Iterable[Entry], at_least: int = 1) -> int:
    """TARGETDURATION: every EXTINF rounded to the nearest second is at most it."""
    longest = max((e.duration for e in entries), default=0.0)
    return max(at_least, math.floor(longest + 0.5), 1)


def render(entries: list[Entry], *, ts: bool, ended: bool, at_least: int = 1) -> str:
    """A whole playlist (the writer appends entries one by one instead while it records)."""
    text = header(target_duration(entries, at_least), ts=ts, ended=ended)
    text += "".join(render_entry(e) for e in entries)
    return text + (ENDLIST + "\n" if ended else "")


def parse(text: str) -> tuple[list[Entry], bool]:
    """The entries of a playlist this module wrote, and whether it is ts. Tolerant of a cut
    tail: tags after the last URI, or a last line without its newline, are left out."""
    entries: list[Entry] = []
    ts = False
    complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
    discontinuity, map_uri, pdt, duration = False, None, None, None
    for line in complete.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#EXT-X-VERSION:"):
            ts = line.endswith(f":{TS_VERSION}")
        elif line == "#EXT-X-DISCONTINUITY":
            discontinuity = True
        elif line.startswith("#EXT-X-MAP:URI="):
            map_uri = line.removeprefix("#EXT-X-MAP:URI=").strip('"')
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            try:
                pdt = datetime.fromisoformat(line.split(":", 1)[1]).timestamp()
            except ValueError:
                pdt = None
        elif line.startswith("#EXTINF:"):
            try:
                duration = float(line.removeprefix("#EXTINF:").split(",")[0])
            except ValueError:
                duration = None
        elif not line.startswith("#"):
            if duration is not None and FILE_NAME.match(line):
                entries.append(Entry(line, duration, discontinuity, map_uri, pdt))
            discontinuity, map_uri, pdt, duration = False, None, None, None
    return entries, ts


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file renamed over it)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def finish(directory: Path) -> Summary:
    """Close a recording: the playlist becomes VOD with EXT-X-ENDLIST, naming only segments
    whose files exist (an entry whose file is gone is dropped, and a MAP it carried moves to
    the next entry); files the playlist does not name (a segment cut short by a crash) go.
    Returns what is left. Safe to run again on a finished recording."""
    playlist = directory / PLAYLIST
    try:
        text = playlist.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    entries, ts = parse(text)
    kept: list[Entry] = []
    size = 0
    carried_map: str | None = None
    carried_discontinuity = False
    for e in entries:
        try:
            n = (directory / e.uri).stat().st_size
        except OSError:
            n = 0
        if n == 0:
            carried_map = e.map_uri or carried_map
            carried_discontinuity = carried_discontinuity or e.discontinuity
            continue
        if carried_map is not None and e.map_uri is None:
            e = Entry(e.uri, e.duration, e.discontinuity, carried_map, e.program_date_time)
        if carried_discontinuity and kept:
            e = Entry(e.uri, e.duration, True, e.map_uri, e.program_date_time)
        carried_map, carried_discontinuity = None, False
        kept.append(e)
        size += n
    named = {PLAYLIST} | {e.uri for e in kept} | {e.map_uri for e in kept if e.map_uri}
    for path in directory.iterdir() if directory.is_dir() else ():
        if path.name not in named:
            path.unlink(missing_ok=True)
    if kept:
        size += sum((directory / m).stat().st_size for m in {e.map_uri for e in kept if e.map_uri})
        replace_text(playlist, render(kept, ts=ts, ended=True))
    else:
        playlist.unlink(missing_ok=True)
    return Summary(len(kept), size, round(sum(e.duration for e in kept), 3))


def as_vod(text: str) -> str:
    """The playlist text a reader may get: up to its last whole entry and, for a recording
    that is no longer being written, VOD with EXT-X-ENDLIST even if its writer could not
    finish the file (a full disk)."""
    if ENDLIST in text:
        return text
    entries, ts = parse(text)
    return render(entries, ts=ts, ended=True)


def live_text(text: str) -> str:
    """An EVENT playlist being appended to, cut after its last whole entry ("" before any)."""
    if ENDLIST in text:
        return text
    lines = text.splitlines(keepends=True)
    keep = 0
    for i, line in enumerate(lines):
        if line.endswith("\n") and line.strip() and not line.startswith("#"):
            keep = i + 1
    return "".join(lines[:keep])


def remove(directory: Path) -> None:
    """Delete a recording's directory (nothing if it is gone already)."""
    shutil.rmtree(directory, ignore_errors=True)
    parent = directory.parent
    with contextlib.suppress(OSError):  # the channel's directory, once its last recording went
        parent.rmdir()


def disk_usage(directory: Path) -> int:
    """Bytes of the files in ``directory`` (0 when it is missing)."""
    total = 0
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
    except OSError:
        return total
    return total


def looks_like_recording(directory: str) -> bool:
    """Whether a directory holds nothing but what a recording holds (so a cleanup never
    deletes something else that happens to sit under a shared recordings directory)."""
    try:
        with os.scandir(directory) as entries:
            return all(
                entry.is_file(follow_symlinks=False)
                and (FILE_NAME.match(entry.name) is not None or entry.name == PLAYLIST + ".tmp")
                for entry in entries
            )
    except OSError:
        return False


def directories(root: Path) -> list[str]:
    """``channel/broadcast`` of every recording directory under ``root`` (directories named
    like one and holding only recording files)."""
    found: list[str] = []
    try:
        with os.scandir(root) as entries:
            channels = list(entries)
    except OSError:
        return found
    for channel in channels:
        if not channel.is_dir(follow_symlinks=False):
            continue
        try:
            with os.scandir(channel.path) as entries:
                items = list(entries)
        except OSError:
            continue
        for item in items:
            if (
                item.is_dir(follow_symlinks=False)
                and item.name.isdigit()
                and looks_like_recording(item.path)
            ):
                found.append(f"{channel.name}/{item.name}")
    return found
