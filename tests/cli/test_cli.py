"""The kitch command, run as a real subprocess against a real data directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kitch

ROOT = Path(__file__).parents[2]


def kitch_cli(
    *args: str, data_dir: Path, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "KITCH_BCRYPT_COST": "4", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "kitch", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        cwd=data_dir.parent,
        timeout=60,
    )


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kitch", "--version"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"kitch {kitch.__version__}"


def test_user_create_then_key_show_and_rotate(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = kitch_cli(
        "user",
        "create",
        "Streamer",
        "--email",
        "s@example.com",
        "--admin",
        data_dir=data,
        stdin="a good password\nignored second line\n",
    )
    assert created.returncode == 0, created.stderr
    assert "created admin user streamer" in created.stdout
    assert "live_" not in created.stdout + created.stderr  # only the fingerprint

    shown = kitch_cli("key", "show", "streamer", data_dir=data)
    assert shown.returncode == 0, shown.stderr
    key = shown.stdout.strip()
    assert key.startswith("live_")
    assert kitch_cli("key", "show", "STREAMER", data_dir=data).stdout.strip() == key

    rotated = kitch_cli("key", "rotate", "streamer", data_dir=data)
    new_key = rotated.stdout.strip()
    assert rotated.returncode == 0 and new_key.startswith("live_") and new_key != key
    assert kitch_cli("key", "show", "streamer", data_dir=data).stdout.strip() == new_key

    # The password is the first line of stdin, exactly.
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, sqlite3; from kitch.auth.passwords import verify_password_sync as v;"
            f"h = sqlite3.connect({str(data / 'kitch.db')!r}).execute("
            "'SELECT password_hash, is_admin FROM users').fetchone();"
            "print(v('a good password', h[0]), v('a good password\\n', h[0]), h[1])",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert check.stdout.split() == ["True", "False", "1"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("user", "create", "api", "--email", "a@example.com"), "password1\n", "reserved"),
        (("user", "create", "ok_name", "--email", "nope"), "password1\n", "email"),
        (("user", "create", "ok_name", "--email", "a@example.com"), "short\n", "at least 8"),
        (("key", "show", "ghost"), "", "no user"),
    ],
)
def test_errors(tmp_path: Path, args: tuple[str, ...], stdin: str, message: str) -> None:
    result = kitch_cli(*args, data_dir=tmp_path / "data", stdin=stdin)
    assert result.returncode != 0
    assert message in result.stderr


def test_duplicate_user_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ("user", "create", "twice", "--email", "t@example.com")
    assert kitch_cli(*args, data_dir=data, stdin="password1\n").returncode == 0
    again = kitch_cli(*args, data_dir=data, stdin="password1\n")
    assert again.returncode == 1 and "already taken" in again.stderr


def test_bad_setting_exits_2(tmp_path: Path) -> None:
    result = kitch_cli("key", "show", "x", data_dir=tmp_path, env={"KITCH_RTMP": "nonsense"})
    assert result.returncode == 2 and "rtmp" in result.stderr


def python_stderr(code: str) -> str:
    """Run ``code`` in a fresh interpreter (logging set up from scratch); its stderr."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return result.stderr


def test_json_logs_never_show_keys(tmp_path: Path) -> None:
    code = (
        "import logging; from kitch.logs import setup_logging, fingerprint;"
        "setup_logging('json', 'info');"
        "k = 'live_' + 'A' * 32;"
        "logging.getLogger('kitch.test').info('key %s rotated', k, extra={'channel': 'bob'});"
        "logging.getLogger('kitch.test').info('fp %s', fingerprint(k))"
    )
    stderr = python_stderr(code)
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert len(lines) == 2
    assert lines[0]["level"] == "info" and lines[0]["channel"] == "bob"
    assert "live_AAAA" not in stderr
    assert lines[0]["msg"] == lines[1]["msg"].replace("fp ", "key ") + " rotated"


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_keys_in_extra_fields_and_tracebacks_are_masked(log_format: str) -> None:
    code = (
        "import logging; from kitch.logs import setup_logging;"
        f"setup_logging({log_format!r}, 'info');"
        "k = 'live_' + 'B' * 32; log = logging.getLogger('kitch.test');"
        "log.info('publish', extra={'stream_key': k})\n"
        "try:\n raise ValueError('refused key ' + k)\n"
        "except ValueError:\n log.exception('refused')"
    )
    stderr = python_stderr(code)
    assert "refused key fp:" in stderr, stderr
    assert "live_BBBB" not in stderr, stderr
