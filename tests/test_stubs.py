"""The ``.pyi`` stubs are exact: mypy's stubtest holds each native module, and its pure-Python
twin, to the stub beside the ``.pyx`` (every name, every signature, nothing more)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORES = ("_rtmp", "_mux", "_ingest")
#: What Cython adds to every extension class (pickling support), not part of the API.
CYTHON_ALLOWLIST = r"kitch\._(rtmp|mux|ingest)\.\w+\.__(reduce|setstate)_cython__"


def stubtest(modules: list[str], tmp: Path, mypypath: Path | None = None) -> str:
    allowlist = tmp / "allowlist.txt"
    allowlist.write_text(CYTHON_ALLOWLIST + "\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if mypypath is not None:
        env["MYPYPATH"] = str(mypypath)
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "--ignore-disjoint-bases",
         "--ignore-unused-allowlist", "--allowlist", str(allowlist), *modules],
        cwd=mypypath or ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_native_modules_match_their_stubs(tmp_path: Path) -> None:
    for core in CORES:
        pytest.importorskip(f"kitch.{core}")
    stubtest([f"kitch.{core}" for core in CORES], tmp_path)


def test_twins_match_the_native_stubs(tmp_path: Path) -> None:
    # The twin is checked against a copy of the native stub under the twin's name, alone on
    # the search path (run from there, so the checkout's own sources are not picked up).
    stubs = tmp_path / "stubs" / "kitch"
    stubs.mkdir(parents=True)
    (stubs / "__init__.pyi").write_text("")
    for core in CORES:
        shutil.copy(ROOT / "kitch" / f"{core}.pyi", stubs / f"{core}_py.pyi")
    stubtest([f"kitch.{core}_py" for core in CORES], tmp_path, stubs.parent)


def test_a_stub_that_drifts_is_caught(tmp_path: Path) -> None:
    stubs = tmp_path / "stubs" / "kitch"
    stubs.mkdir(parents=True)
    (stubs / "__init__.pyi").write_text("")
    text = (ROOT / "kitch" / "_rtmp.pyi").read_text()
    (stubs / "_rtmp_py.pyi").write_text(text.replace("max_chunk_streams: int = ...,", ""))
    with pytest.raises(AssertionError, match=r"ChunkReader\.__init__"):
        stubtest(["kitch._rtmp_py"], tmp_path, stubs.parent)
