"""Settings precedence, parsing and the generated documentation staying in sync."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kitch.config import (
    ConfigError,
    Settings,
    add_arguments,
    env_example,
    load_settings,
    markdown_table,
    parse_hostport,
)

ROOT = Path(__file__).parents[2]


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(env={}, dotenv=tmp_path / "missing.env")
    assert settings == Settings()
    assert settings.data_dir == Path("kitch-data")
    assert settings.http == "127.0.0.1:8000" and settings.rtmp == "127.0.0.1:1935"
    assert settings.rtmps is None and settings.bcrypt_cost == 12


def test_precedence_cli_env_dotenv_default(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment\nexport KITCH_HTTP=0.0.0.0:1\nKITCH_RTMP='0.0.0.0:2'\n"
        'KITCH_LOG_LEVEL="debug"\nKITCH_BCRYPT_COST=5\nOTHER=1\n'
    )
    env = {"KITCH_RTMP": "0.0.0.0:3", "KITCH_BCRYPT_COST": "6", "KITCH_PUREPYTHON": "1"}
    settings = load_settings({"bcrypt_cost": "7", "http": None}, env=env, dotenv=dotenv)
    assert settings.http == "0.0.0.0:1"  # .env (CLI None = not given)
    assert settings.rtmp == "0.0.0.0:3"  # env beats .env
    assert settings.bcrypt_cost == 7  # CLI beats env
    assert settings.log_level == "debug"
    assert settings.hls_segment_count == 6  # default


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KITCH_BCRYPT_COST": "many"}, "bcrypt_cost must be a int"),
        ({"KITCH_BCRYPT_COST": "3"}, "between 4 and 31"),
        ({"KITCH_HTTP": "8000"}, "HOST:PORT"),
        ({"KITCH_LOG_FORMAT": "xml"}, "text, json"),
        ({"KITCH_SECRET": "short"}, "at least 32"),
        ({"KITCH_RTMPS": "0.0.0.0:1936"}, "tls_cert"),
        ({"KITCH_RECONNECT_GRACE": "-1"}, "negative"),
        ({"KITCH_PUBLIC_URL": "tv.example.com"}, "http"),
        # The limiter took a limit of 0 as no limit at all.
        ({"KITCH_LOGIN_ATTEMPTS_PER_ACCOUNT": "0"}, "login_attempts_per_account .*than 0"),
        ({"KITCH_ACCESS_TOKEN_TTL": "0"}, "greater than 0"),
    ],
)
def test_bad_values_name_the_setting(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env=env, dotenv=None)


def test_unknown_cli_setting_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings({"no_such": 1}, env={}, dotenv=None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:1935", ("::1", 1935)),
        ("localhost:65535", ("localhost", 65535)),
    ],
)
def test_parse_hostport(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text) == expected


@pytest.mark.parametrize(
    "text", ["8000", ":8000", "::1:8000", "[::1]8000", "h:99999", "h:x", "h:", "h:\u00b2"]
)
def test_parse_hostport_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_hostport(text)


def test_every_field_is_a_flag() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--data-dir", "/tmp/x", "--hls-segment-count", "4"])
    assert vars(args) == {"data_dir": "/tmp/x", "hls_segment_count": "4"}
    settings = load_settings(vars(args), env={}, dotenv=None)
    assert settings.data_dir == Path("/tmp/x") and settings.hls_segment_count == 4


def test_readme_table_and_env_example_are_current() -> None:
    """Regenerate with: python3 -m kitch.config markdown / python3 -m kitch.config env."""
    assert markdown_table() in (ROOT / "README.md").read_text()
    assert (ROOT / ".env.example").read_text() == env_example()


def test_hls_window_and_retention_settings(tmp_path: Path) -> None:
    from kitch.server.main import hls_settings_from

    missing = tmp_path / "missing.env"
    hls = hls_settings_from(load_settings(env={}, dotenv=missing))
    # defaults: a 6-segment window, departed segments kept a segment plus a playlist duration, ended
    # broadcasts served for a minute
    assert (hls.segment_count, hls.departed_retention, hls.ended_retention) == (6, None, 60.0)
    env = {
        "KITCH_HLS_SEGMENT_COUNT": "3",
        "KITCH_HLS_DEPARTED_RETENTION": "2.5",
        "KITCH_HLS_ENDED_RETENTION": "10",
    }
    hls = hls_settings_from(load_settings(env=env, dotenv=missing))
    assert (hls.segment_count, hls.departed_retention, hls.ended_retention) == (3, 2.5, 10.0)
    env = {"KITCH_HLS_DEPARTED_RETENTION": ""}  # empty: back to the default
    assert load_settings(env=env, dotenv=missing).hls_departed_retention is None
    with pytest.raises(ConfigError, match="negative"):
        load_settings(env={"KITCH_HLS_DEPARTED_RETENTION": "-1"}, dotenv=missing)
