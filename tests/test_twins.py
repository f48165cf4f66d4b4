"""kitch.twins: one reading of KITCH_PUREPYTHON picks both native modules or both twins.

Each value is tried in a fresh interpreter, since the variable is read once, at import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kitch import twins
from kitch.config import ConfigError

pytestmark = pytest.mark.native  # CI runs it again with KITCH_PUREPYTHON=1

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "from kitch import twins; "
    "print(twins.rtmp.__name__, twins.mux.__name__, twins.PURE_PYTHON, twins.NATIVE)"
)
PURE = ("1", "true", "TRUE", "True", "yes", "YES", "on", "On", " 1 ", "true\n")
NOT_PURE = (None, "", " ", "0", "false", "FALSE", "no", "No", "off", "OFF", " 0 ")
BAD = ("2", "-1", "maybe", "pure", "y", "t", "1.0", "native")


def _run(values: tuple[str | None, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Start one interpreter per value (all at once), wait for them all."""
    procs = []
    for value in values:
        env = {k: v for k, v in os.environ.items() if k != twins.ENV_VAR}
        if value is not None:
            env[twins.ENV_VAR] = value
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", PROBE],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def test_pure_values_select_both_twins() -> None:
    for value, proc in zip(PURE, _run(PURE), strict=True):
        assert proc.returncode == 0, (value, proc.stderr)
        assert proc.stdout.split() == ["kitch._rtmp_py", "kitch._mux_py", "True", "False"], value


def test_other_values_select_both_native_modules() -> None:
    pytest.importorskip("kitch._rtmp")
    pytest.importorskip("kitch._mux")
    for value, proc in zip(NOT_PURE, _run(NOT_PURE), strict=True):
        assert proc.returncode == 0, (value, proc.stderr)
        assert proc.stdout.split() == ["kitch._rtmp", "kitch._mux", "False", "True"], value


def test_unknown_value_is_a_clear_error_at_import() -> None:
    for value, proc in zip(BAD, _run(BAD), strict=True):
        assert proc.returncode != 0, value
        last = proc.stderr.strip().splitlines()[-1]
        assert (
            last
            == f"kitch.config.ConfigError: KITCH_PUREPYTHON must be true or false, not {value!r}"
        )


def test_parser_in_process() -> None:
    assert twins.pure_python_requested(None) is False
    assert twins.pure_python_requested("") is False
    assert twins.pure_python_requested(" Yes ") is True
    assert twins.pure_python_requested("off") is False
    with pytest.raises(ConfigError, match="KITCH_PUREPYTHON"):
        twins.pure_python_requested("enabled")


def test_this_process_uses_one_kind_for_both() -> None:
    kinds = {twins.rtmp.__name__.endswith("_py"), twins.mux.__name__.endswith("_py")}
    assert len(kinds) == 1
    assert twins.NATIVE is not (True in kinds)


def test_missing_native_build_falls_back_to_both_twins() -> None:
    # An import hook hides the compiled modules, as on a machine where they were never built.
    probe = (
        "import importlib.abc, sys\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name in ('kitch._rtmp', 'kitch._mux'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Hide())\n" + PROBE.replace("; ", "\n")
    )
    env = {k: v for k, v in os.environ.items() if k != twins.ENV_VAR}
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["kitch._rtmp_py", "kitch._mux_py", "False", "False"]


def test_the_command_line_reports_a_bad_value_like_any_setting(tmp_path: Path) -> None:
    env = dict(os.environ, KITCH_PUREPYTHON="maybe")
    proc = subprocess.run(
        [sys.executable, "-m", "kitch", "key", "show", "nobody", "--data-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == "kitch: KITCH_PUREPYTHON must be true or false, not 'maybe'\n"
