"""The import rules docs/ARCHITECTURE.md states, checked on the source so the page cannot drift.

Every import counts: module level, inside functions and under ``TYPE_CHECKING``. Cython files
are read line by line (``import``, ``from ... import``, ``cimport``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KITCH = ROOT / "kitch"
DOC = ROOT / "docs" / "ARCHITECTURE.md"

#: What the sans-IO core may never import: event loops, sockets, TLS, threads, HTTP, media
#: libraries, the database driver and metrics.
IO_MODULES = {
    "asyncio", "socket", "ssl", "selectors", "threading", "concurrent", "subprocess",
    "starlette", "uvicorn", "httptools", "av", "aiosqlite", "asyncpg", "sqlite3",
    "prometheus_client",
}  # fmt: skip
#: The sans-IO core and the Kitch modules each part of it may import.
SANS_IO = {
    "kitch/rtmp": {"kitch.rtmp", "kitch.media", "kitch.twins"},
    "kitch/hls": {"kitch.hls", "kitch.media", "kitch.twins"},
    # the hub and its passthrough output; sinks that run threads (the ladder) sit beside them
    **{
        f"kitch/ingest/{name}.py": {"kitch.ingest", "kitch.hls", "kitch.media"}
        for name in ("__init__", "sinks", "passthrough", "stats")
    },
    # the hub also builds the native frame lane (kitch.twins.ingest)
    "kitch/ingest/hub.py": {"kitch.ingest", "kitch.hls", "kitch.media", "kitch.twins"},
    "kitch/chat": {"kitch.chat"},
    "kitch/schedule": {"kitch.schedule"},
    "kitch/media.py": set(),
    "kitch/twins.py": {"kitch._rtmp", "kitch._mux", "kitch._ingest", "kitch.config"},
    "kitch/_rtmp.pyx": set(),
    "kitch/_rtmp_py.py": set(),
    "kitch/_mux.pyx": set(),
    "kitch/_mux_py.py": set(),
    "kitch/_ingest.pyx": set(),
    "kitch/_ingest_py.py": set(),
}
#: Packages below the HTTP and server layers never import them.
LOWER = (
    "kitch/chat",
    "kitch/schedule",
    "kitch/rtmp",
    "kitch/hls",
    "kitch/ingest",
    "kitch/auth",
    "kitch/db",
    "kitch/recordings",
    "kitch/media.py",
    "kitch/keys.py",
    "kitch/cluster/fanout.py",
)
UPPER = {"kitch.api", "kitch.server", "kitch.cli"}

_PYX_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+c?import|c?import\s+([\w.]+))", re.M)


def _files(part: str) -> list[Path]:
    path = ROOT / part
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in (".py", ".pyx"))


def imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    text = path.read_text()
    if path.suffix == ".pyx":
        return {a or b for a, b in _PYX_IMPORT.findall(text)}
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module == "kitch":  # ``from kitch import twins`` imports kitch.twins
                found.update(f"kitch.{alias.name}" for alias in node.names)
            else:
                found.add(module)
    return found


def _under(name: str, roots: set[str]) -> bool:
    return any(name == r or name.startswith(r + ".") for r in roots)


def test_the_page_exists_and_states_these_rules() -> None:
    text = DOC.read_text()
    for words in ("sans-IO", "KITCH_PUREPYTHON", "kitch/twins.py", "tests/test_architecture.py"):
        assert words in text, words
    for module in sorted(IO_MODULES - {"concurrent", "httptools", "sqlite3"}):
        assert f"`{module}`" in text, module


@pytest.mark.parametrize("part", sorted(SANS_IO))
def test_sans_io_core_imports_no_io_and_only_its_neighbours(part: str) -> None:
    allowed = SANS_IO[part]
    files = _files(part)
    assert files, part
    for path in files:
        for name in imports(path):
            where = f"{path.relative_to(ROOT)} imports {name}"
            assert name.split(".")[0] not in IO_MODULES, where
            if name == "kitch" or name.startswith("kitch."):
                assert _under(name, allowed), where


def test_native_modules_and_twins_import_nothing_from_kitch() -> None:
    parts = ("_rtmp.pyx", "_rtmp_py.py", "_mux.pyx", "_mux_py.py", "_ingest.pyx", "_ingest_py.py")
    for part in (f"kitch/{p}" for p in parts):
        names = imports(ROOT / part)
        # the parser found their imports at all (the native lane has none: it is handed all)
        assert names or part == "kitch/_ingest.pyx", part
        assert not [n for n in names if n.split(".")[0] == "kitch"], part


@pytest.mark.parametrize("part", LOWER)
def test_lower_layers_never_import_http_or_server(part: str) -> None:
    for path in _files(part):
        for name in imports(path):
            assert not _under(name, UPPER), f"{path.relative_to(ROOT)} imports {name}"
            assert name.split(".")[0] not in ("starlette", "uvicorn"), (path, name)


def test_recordings_files_import_only_themselves() -> None:
    """The writer thread and the file layout know nothing of the database, HLS or ingest."""
    for path in _files("kitch/recordings"):
        for name in imports(path):
            if name.split(".")[0] == "kitch":
                assert _under(name, {"kitch.recordings"}), f"{path.relative_to(ROOT)}: {name}"


def test_only_the_transcoder_imports_av() -> None:
    for path in _files("kitch"):
        if "transcode" in path.relative_to(KITCH).parts:
            continue
        assert "av" not in {n.split(".")[0] for n in imports(path)}, path


def test_only_the_server_opens_sockets() -> None:
    for path in _files("kitch"):
        if path.relative_to(KITCH).parts[0] == "server":
            continue
        names = {n.split(".")[0] for n in imports(path)}
        assert not names & {"socket", "ssl", "selectors"}, path


def test_the_checker_sees_what_it_must_refuse(tmp_path: Path) -> None:
    (tmp_path / "kitch" / "hls").mkdir(parents=True)
    bad = tmp_path / "kitch" / "hls" / "bad.py"
    bad.write_text(
        "import asyncio\nfrom ..server import rtmp\nfrom . import store\n"
        "def f():\n    from starlette.requests import Request\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        got = imports(bad)
    finally:
        ROOT = saved
    assert got == {"asyncio", "kitch.server", "kitch.hls", "starlette.requests"}
    pyx = tmp_path / "m.pyx"
    pyx.write_text("from libc.stdint cimport uint8_t\nimport struct\ncimport cython\n")
    assert imports(pyx) == {"libc.stdint", "struct", "cython"}
