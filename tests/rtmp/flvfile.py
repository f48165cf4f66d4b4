"""Read the audio/video tags of an FLV file (the captures in tests/data), for parser tests."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"


def flv_tags(path: Path) -> list[tuple[int, int, bytes]]:
    """``[(tag_type, timestamp, body), ...]`` for tag types 8 (audio) and 9 (video)."""
    data = path.read_bytes()
    assert data[:3] == b"FLV"
    out = []
    i = int.from_bytes(data[5:9], "big") + 4
    while i + 11 <= len(data):
        kind = data[i]
        size = int.from_bytes(data[i + 1 : i + 4], "big")
        ts = int.from_bytes(data[i + 4 : i + 7], "big") | (data[i + 7] << 24)
        if kind in (8, 9):
            out.append((kind, ts, data[i + 11 : i + 11 + size]))
        i += 11 + size + 4
    return out
