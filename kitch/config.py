"""Settings: one frozen dataclass from CLI flags > ``KITCH_*`` environment > ``.env`` > defaults.

Every field is described once, here, with its help text in the field metadata; the ``serve``
flags, the README configuration table and ``.env.example`` are generated from it
(``python3 -m kitch.config markdown`` / ``python3 -m kitch.config env``). A field ``foo_bar`` is
read from the environment variable ``KITCH_FOO_BAR`` and the flag ``--foo-bar``.
"""

# ruff: noqa: RUF009  (field defaults come from _opt, a thin wrapper of dataclasses.field)
from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
ENV_PREFIX = "KITCH_"


#: Settings where 0 makes no sense.
POSITIVE = (
    "access_token_ttl",
    "viewer_window",
    "viewer_tick",
    "refresh_token_ttl",
    "max_body_bytes",
    "login_attempts_per_account",
    "login_attempts_per_address",
    "login_window",
    "login_max_delay",
    "register_attempts_per_address",
    "password_change_attempts_per_address",
    "http_max_connections",
    "http_header_timeout",
    "http_max_header_bytes",
    "http_listen_sockets",
    "recording_cleanup_interval",
    "recording_queue_bytes",
)


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the setting."""


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


#: The default transcoding ladder (see ``--ladder``).
DEFAULT_LADDER = "720p:720:3000,480p:480:1400,360p:360:800"


@dataclass(frozen=True)
class Settings:
    """Everything Kitch can be configured with. Defaults are safe for a local try-out."""

    data_dir: Path = _opt(Path("kitch-data"), "Directory for the SQLite database and the secret.")
    database: str | None = _opt(
        None,
        "Database URL: sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/NAME (see "
        "docs/DATABASE.md); unset: sqlite:///DATA_DIR/kitch.db.",
    )
    http: str = _opt("127.0.0.1:8000", "HTTP listen address HOST:PORT (web app, API, HLS).")
    rtmp: str = _opt("127.0.0.1:1935", "RTMP ingest listen address HOST:PORT.")
    rtmps: str | None = _opt(None, "RTMPS (TLS) ingest listen address HOST:PORT; off when unset.")
    tls_cert: Path | None = _opt(None, "PEM certificate chain for RTMPS.")
    tls_key: Path | None = _opt(None, "PEM private key for RTMPS.")
    public_url: str | None = _opt(
        None, "Public base URL shown to streamers (e.g. https://tv.example.com); else request host."
    )
    allowed_hosts: str | None = _opt(
        None,
        "Comma-separated host names the Host header may carry (`*.example.com` matches "
        "subdomains, `*` any); others get 400. Unset: localhost and loopback addresses, "
        "--public-url's host, --http's host, and any IP address when --http binds 0.0.0.0 or ::.",
    )
    trusted_proxies: str | None = _opt(
        None,
        "Comma-separated addresses/CIDRs of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed; unset: those headers are ignored.",
    )
    http_max_connections: int = _opt(
        1000, "Most simultaneous HTTP connections; more are answered 503 and closed at once."
    )
    http_header_timeout: float = _opt(
        10.0,
        "Seconds a client has to send a request's headers (from connect, and from the end of "
        "the previous response); silent or trickling connections are closed.",
    )
    http_max_header_bytes: int = _opt(
        32 * KIB, "Largest request line + headers in bytes; larger requests get 431 and a close."
    )
    http_listen_sockets: int = _opt(
        32,
        "Listening sockets on the HTTP port (SO_REUSEPORT): the event loop accepts one "
        "connection per socket per turn, so more sockets let viewers in while it is busy.",
    )
    metrics_listen: str | None = _opt(
        None,
        "Serve /metrics on this separate HOST:PORT instead of the HTTP port; unset: HTTP port.",
    )
    metrics_token: str | None = _opt(
        None, "Bearer token /metrics requires (>= 16 chars); unset: no token asked."
    )
    log_format: Literal["text", "json"] = _opt("text", "Log format: text or json (JSON lines).")
    log_level: str = _opt("info", "Log level: debug, info, warning, error.")
    secret: str | None = _opt(
        None, "JWT signing secret (>= 32 chars); generated once into DATA_DIR/secret when unset."
    )
    bcrypt_cost: int = _opt(12, "bcrypt work factor for password hashes (4..31).")
    bcrypt_threads: int = _opt(
        0, "Threads that hash passwords (bcrypt); 0 = half the CPU count, at least 1."
    )
    access_token_ttl: int = _opt(900, "Access token lifetime in seconds.")
    refresh_token_ttl: int = _opt(30 * 24 * 3600, "Refresh token lifetime in seconds.")
    refresh_reuse_grace: float = _opt(
        10.0, "Seconds a used refresh token may be presented again (two tabs) before it is reuse."
    )
    max_body_bytes: int = _opt(64 * KIB, "Largest accepted JSON request body in bytes.")
    max_avatar_bytes: int = _opt(2 * MIB, "Largest accepted avatar image in bytes.")
    login_attempts_per_account: int = _opt(
        10, "Failed logins per account before each further try waits (1 s, doubling)."
    )
    login_max_delay: float = _opt(60.0, "Longest wait in seconds between logins to one account.")
    login_attempts_per_address: int = _opt(
        50, "Failed logins allowed per address (IPv6: per /64) per window."
    )
    login_window: float = _opt(900.0, "Seconds until failed logins are forgotten.")
    register_attempts_per_address: int = _opt(
        10, "Registrations allowed per address (IPv6: per /64) per hour."
    )
    password_change_attempts_per_address: int = _opt(
        10, "Password changes allowed per address (IPv6: per /64) per hour."
    )
    reconnect_grace: float = _opt(
        10.0, "Seconds a broadcast survives a publisher reconnect without going offline."
    )
    viewer_window: float = _opt(
        30.0, "Seconds a media-playlist request counts its client as a live viewer."
    )
    viewer_tick: float = _opt(
        5.0,
        "Seconds between viewer counts of a live channel (pushed to the events socket and kept "
        "with the broadcast for its analytics).",
    )
    schedule_reminder: float = _opt(
        600.0,
        "Seconds before a scheduled stream starts when its channel's followers are reminded "
        "(0: no reminder; the start itself is always announced).",
    )
    rtmp_handshake_timeout: float = _opt(10.0, "Seconds allowed for the RTMP handshake.")
    rtmp_idle_timeout: float = _opt(10.0, "Seconds an RTMP connection may stay silent.")
    rtmp_max_message_size: int = _opt(4 * MIB, "Largest RTMP message in bytes.")
    rtmp_max_chunk_streams: int = _opt(64, "Most chunk streams per RTMP connection.")
    rtmp_max_buffered_bytes: int = _opt(
        16 * MIB, "Most bytes held per RTMP connection (unparsed input + unfinished messages)."
    )
    rtmp_max_amf_depth: int = _opt(32, "Deepest AMF0 nesting accepted in RTMP commands/metadata.")
    rtmp_max_stream_key_length: int = _opt(256, "Longest accepted RTMP publish name (stream key).")
    rtmp_max_connections: int = _opt(1000, "Most simultaneous RTMP connections.")
    rtmp_max_connections_per_ip: int = _opt(16, "Most simultaneous RTMP connections per address.")
    hls_segment_count: int = _opt(
        6, "Segments listed in a media playlist: the live window each rendition holds."
    )
    hls_departed_retention: float | None = _opt(
        None,
        "Seconds a segment that left the playlist stays fetchable (and held in memory); unset: "
        "a segment plus the playlist's duration ((segment count + 1) x target duration, as the "
        "HLS specification asks).",
    )
    hls_ended_retention: float = _opt(
        60.0, "Seconds an ended broadcast's playlists (with EXT-X-ENDLIST) stay served."
    )
    hls_max_stream_memory: int = _opt(256 * MIB, "Memory cap in bytes for one stream's segments.")
    hls_format: Literal["fmp4", "ts"] = _opt(
        "fmp4", "HLS segments: fmp4 (LL-HLS with CMAF parts) or ts (MPEG-TS, plain HLS)."
    )
    hls_workers: int = _opt(
        0,
        "Processes that serve /hls to viewers on --hls-port besides the main process (each a "
        "mirror of the live streams, one per spare core is a good start); 0: /hls is served by "
        "the main process only.",
    )
    hls_port: int = _opt(8001, "Port the HLS worker processes share (with --hls-workers >= 1).")
    hls_host: str | None = _opt(
        None, "Address the HLS worker processes listen on; unset: the host of --http."
    )
    hls_public_url: str | None = _opt(
        None,
        "Public base URL of the HLS workers' /hls (e.g. https://tv.example.com behind a proxy "
        "routing /hls/ to --hls-port); unset: the page's host on --hls-port.",
    )
    ladder: str = _opt(
        DEFAULT_LADDER,
        "Transcoded renditions: NAME:HEIGHT:KBPS[:MAX_FPS[:X264_PRESET]], comma-separated; or off.",
    )
    ladder_slots: int = _opt(0, "Ladders that may run at once (0: one per two CPU cores, >= 1).")
    thumbnail_interval: float = _opt(
        45.0,
        "Seconds between a live stream's thumbnails: 30-60 in production, 0 turns thumbnails "
        "off; 1-29 are accepted for tests (the server warns).",
    )
    recordings: bool = _opt(
        True,
        "Record broadcasts (the source rendition, as VOD) of channels whose recording switch is "
        "on, as it is by default; off: record nothing.",
    )
    recordings_dir: Path | None = _opt(
        None, "Directory recordings are written to; unset: DATA_DIR/recordings."
    )
    recording_retention_days: float = _opt(
        14.0, "Days a finished recording is kept before the cleanup deletes it; 0: forever."
    )
    recording_quota_bytes: int = _opt(
        10 * GIB,
        "Disk space all recordings may take, in bytes; past it the cleanup deletes the oldest "
        "finished ones; 0: no quota.",
    )
    recording_cleanup_interval: float = _opt(
        600.0, "Seconds between two cleanups of the recordings (retention and quota)."
    )
    recording_queue_bytes: int = _opt(
        64 * MIB,
        "Most bytes of one recording waiting for the disk; a disk slower than the stream stops "
        "the recording (the live stream goes on).",
    )

    # -- cluster: several nodes sharing one database (docs/CLUSTER.md, "Nodes") --
    node_id: str | None = _opt(
        None,
        "This node's id in a cluster (letters, digits, . _ -; at most 64); unset: an id made "
        "once from the host name and kept in DATA_DIR/node-id. Nodes sharing a data dir must set "
        "distinct ids.",
    )
    node_url: str | None = _opt(
        None,
        "HTTP base URL where the other nodes and the edge reach this node (HLS redirects point "
        "there); unset: --public-url, else http:// and the address of --http.",
    )
    node_heartbeat: float = _opt(
        1.0, "Seconds between a node's heartbeats (each renews the leases of its live channels)."
    )
    node_lease: float = _opt(
        5.0,
        "Seconds a channel's lease lasts without a heartbeat: how long a killed node's "
        "channels stay unavailable to the other nodes.",
    )

    @property
    def database_url(self) -> str:
        """The database to open: ``database``, else the SQLite file DATA_DIR/kitch.db."""
        from kitch.db import default_url

        return self.database or default_url(self.data_dir)

    # -- several nodes: fan-out through Redis (docs/CLUSTER.md, "Fan-out") --
    redis: str | None = _opt(
        None,
        "Redis URL (redis://HOST:PORT/DB or rediss://) through which several Kitch nodes share "
        "chat, moderation, presence, viewer counts, notifications and channel changes; unset: "
        "one node alone.",
    )

    @property
    def recordings_root(self) -> Path:
        """Where recordings are written (``recordings_dir``, else DATA_DIR/recordings)."""
        return self.recordings_dir or self.data_dir / "recordings"

    def __post_init__(self) -> None:
        parse_ladder(self.ladder)
        if self.database is not None:
            from kitch.db import DatabaseURLError, parse_url

            try:
                parse_url(self.database)
            except DatabaseURLError as exc:
                raise ConfigError(f"database: {exc}") from None
        parse_hostport(self.http, name="http")
        parse_hostport(self.rtmp, name="rtmp")
        if self.metrics_listen is not None:
            parse_hostport(self.metrics_listen, name="metrics_listen")
        if self.metrics_token is not None and len(self.metrics_token) < 16:
            raise ConfigError("metrics_token must be at least 16 characters")
        if self.trusted_proxies is not None:
            for item in split_list(self.trusted_proxies):
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ConfigError(
                        f"trusted_proxies: {item!r} is not an address or CIDR"
                    ) from None
        if self.rtmps is not None:
            parse_hostport(self.rtmps, name="rtmps")
            if self.tls_cert is None or self.tls_key is None:
                raise ConfigError("rtmps needs both tls_cert and tls_key")
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise ConfigError("public_url must start with http:// or https://")
        if self.hls_public_url is not None and not self.hls_public_url.startswith(
            ("http://", "https://")
        ):
            raise ConfigError("hls_public_url must start with http:// or https://")
        if self.hls_workers > 64:
            raise ConfigError("hls_workers must be at most 64")
        if not 1 <= self.hls_port <= 65535:
            raise ConfigError("hls_port must be a port number 1..65535")
        if self.hls_workers and self.hls_port == parse_hostport(self.http)[1]:
            raise ConfigError("hls_port must differ from the port of --http")
        if self.node_id is not None and not valid_node_id(self.node_id):
            raise ConfigError(
                "node_id must be 1-64 characters of letters, digits, '.', '_' and '-'"
            )
        if self.node_url is not None and not self.node_url.startswith(("http://", "https://")):
            raise ConfigError("node_url must start with http:// or https://")
        if not 0 < self.node_heartbeat < self.node_lease:
            raise ConfigError("node_heartbeat must be above 0 and below node_lease")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format must be text or json, not {self.log_format!r}")
        if self.log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
            raise ConfigError(f"log_level {self.log_level!r} is not a log level")
        if self.thumbnail_interval and not 1 <= self.thumbnail_interval <= 60:
            raise ConfigError(
                "thumbnail_interval must be 0 (off) or 1-60 seconds (30-60 in production)"
            )
        if not 4 <= self.bcrypt_cost <= 31:
            raise ConfigError("bcrypt_cost must be between 4 and 31")
        if self.secret is not None and len(self.secret) < 32:
            raise ConfigError("secret must be at least 32 characters (e.g. openssl rand -hex 32)")
        if self.redis is not None:
            if not self.redis.startswith(("redis://", "rediss://", "unix://")):
                raise ConfigError("redis must be a redis://, rediss:// or unix:// URL")
            try:
                urlsplit(self.redis).port  # noqa: B018 - a port that is not a number raises
            except ValueError:
                raise ConfigError(f"redis: {self.redis!r} has a bad port") from None
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise ConfigError(f"{f.name} must not be negative")
        for name in POSITIVE:  # 0 would silently mean "unlimited" or "always expired"
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be greater than 0")


def valid_node_id(text: str) -> bool:
    """A node id: 1-64 ASCII letters, digits, ``.``, ``_`` or ``-``."""
    return 0 < len(text) <= 64 and text.isascii() and all(c.isalnum() or c in "._-" for c in text)


def split_list(value: str | None) -> list[str]:
    """A comma-separated setting as a list (blank items dropped)."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def parse_hostport(value: str, *, name: str = "address") -> tuple[str, int]:
    """Split ``HOST:PORT`` (IPv6 as ``[::1]:PORT``) into ``(host, port)``; raise ConfigError."""
    text = value.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise ConfigError(f"{name}: {value!r} is not [IPV6]:PORT")
        host, port_text = text[1:end], text[end + 2 :]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ConfigError(f"{name}: {value!r} is not HOST:PORT (e.g. 127.0.0.1:8000)")
        if ":" in host:
            raise ConfigError(f"{name}: write IPv6 addresses in brackets, e.g. [::1]:8000")
    if not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"{name}: port in {value!r} must be a number 0..65535")
    return host, int(port_text)


def env_name(field_name: str) -> str:
    """``data_dir`` -> ``KITCH_DATA_DIR``."""
    return ENV_PREFIX + field_name.upper()


def flag_name(field_name: str) -> str:
    """``data_dir`` -> ``--data-dir``."""
    return "--" + field_name.replace("_", "-")


#: Spellings of a boolean setting, compared case-insensitively after stripping blanks.
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def parse_bool(name: str, text: str) -> bool:
    """``text`` as a boolean (:data:`TRUE_WORDS` / :data:`FALSE_WORDS`); ConfigError naming
    ``name`` for anything else."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name} must be true or false, not {text!r}")


def _hints() -> dict[str, Any]:
    return typing.get_type_hints(Settings)


def _base_type(hint: Any) -> tuple[Any, bool]:
    """Return (type, optional) with ``X | None`` unwrapped."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        rest = [a for a in args if a is not type(None)]
        return rest[0], len(rest) != len(args)
    return hint, False


X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
)  # fmt: skip


def parse_ladder(spec: str) -> list[tuple[str, int, int, float, str]]:
    """``--ladder`` as (name, height, kbps, max fps, x264 preset) rungs; ConfigError if bad."""
    if spec.strip().lower() in ("", "off", "none"):
        return []
    rungs = []
    for item in spec.split(","):
        fields = item.strip().split(":")
        try:
            if not 3 <= len(fields) <= 5:
                raise ValueError
            name, height, kbps = fields[0], int(fields[1]), int(fields[2])
            fps = float(fields[3]) if len(fields) > 3 and fields[3] else 30.0
            preset = fields[4] if len(fields) > 4 else "veryfast"
            if not (
                name.isascii() and name.replace("_", "").isalnum() and len(name) <= 16
                and 16 <= height <= 4320 and 50 <= kbps <= 100_000 and 1 <= fps <= 240
                and preset in X264_PRESETS and name != "source"
            ):  # fmt: skip
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"ladder: bad rung {item.strip()!r}; want NAME:HEIGHT:KBPS[:MAX_FPS[:PRESET]]"
                " (e.g. 720p:720:3000:30:veryfast) or off"
            ) from None
        rungs.append((name, height, kbps, fps, preset))
    if len({r[0] for r in rungs}) != len(rungs):
        raise ConfigError("ladder: rung names must differ")
    return rungs


def _convert(name: str, raw: object) -> object:
    """Turn a string (or an already typed value) into the field's type."""
    kind, optional = _base_type(_hints()[name])
    if raw is None or (optional and isinstance(raw, str) and raw.strip() == ""):
        if optional:
            return None
        raise ConfigError(f"{name} needs a value")
    if typing.get_origin(kind) is Literal:
        choices = typing.get_args(kind)
        if raw not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}, not {raw!r}")
        return raw
    if kind is bool:
        return raw if isinstance(raw, bool) else parse_bool(name, str(raw))
    try:
        if kind is int:
            if isinstance(raw, bool):
                raise ValueError
            return raw if isinstance(raw, int) else int(str(raw).strip().replace("_", ""))
        if kind is float:
            return float(raw) if isinstance(raw, int | float) else float(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{name} must be a {kind.__name__}, not {raw!r}") from None
    if kind is Path:
        return raw if isinstance(raw, Path) else Path(str(raw))
    return str(raw)


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file: ``KEY=VALUE`` lines, ``#`` comments, ``export``, quotes."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        text = text.removeprefix("export ").strip()
        key, sep, value = text.partition("=")
        if not sep:
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_settings(
    cli: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    dotenv: Path | None = Path(".env"),
) -> Settings:
    """Build Settings with precedence CLI > environment > ``.env`` > defaults.

    ``cli`` maps field names to values (None/missing = not given); ``env`` defaults to
    ``os.environ``; ``dotenv`` is skipped when None or missing. ``KITCH_*`` variables that name no
    setting are ignored (other parts use some, e.g. ``KITCH_PUREPYTHON``, which must still be a
    boolean word: see :mod:`kitch.twins`).
    """
    environ = os.environ if env is None else env
    # kitch.twins reads KITCH_PUREPYTHON at import; a bad value is reported here as well, with
    # the other settings, before anything imports the native modules.
    if environ.get("KITCH_PUREPYTHON", "").strip():
        parse_bool("KITCH_PUREPYTHON", environ["KITCH_PUREPYTHON"])
    layers: list[Mapping[str, str]] = []
    if dotenv is not None and dotenv.is_file():
        layers.append(read_dotenv(dotenv))
    layers.append(environ)
    names = {f.name for f in dataclasses.fields(Settings)}
    values: dict[str, object] = {}
    for layer in layers:
        for key, raw in layer.items():
            if not key.startswith(ENV_PREFIX):
                continue
            name = key[len(ENV_PREFIX) :].lower()
            if name in names:
                values[name] = _convert(name, raw)
    for name, value in (cli or {}).items():
        if name not in names:
            raise ConfigError(f"unknown setting {name}")
        if value is not None:
            values[name] = _convert(name, value)
    return Settings(**values)  # type: ignore[arg-type]


def add_arguments(
    parser: argparse.ArgumentParser, only: typing.Iterable[str] | None = None
) -> None:
    """Add one ``--flag`` per Settings field (all, or those in ``only``); unset = absent."""
    wanted = set(only) if only is not None else None
    for f in dataclasses.fields(Settings):
        if wanted is not None and f.name not in wanted:
            continue
        default = _default_text(f)
        parser.add_argument(
            flag_name(f.name),
            dest=f.name,
            default=argparse.SUPPRESS,
            metavar=f.name.upper(),
            help=f"{f.metadata['help']} (env {env_name(f.name)}; default {default})",
        )


def _default_text(f: dataclasses.Field[Any]) -> str:
    return "unset" if f.default is None else str(f.default)


def markdown_table() -> str:
    """The README configuration table."""
    rows = ["| Flag | Environment | Default | Meaning |", "| --- | --- | --- | --- |"]
    for f in dataclasses.fields(Settings):
        rows.append(
            f"| `{flag_name(f.name)}` | `{env_name(f.name)}` | `{_default_text(f)}` "
            f"| {f.metadata['help']} |"
        )
    return "\n".join(rows) + "\n"


def env_example() -> str:
    """The text of ``.env.example``: every setting commented out at its default."""
    lines = [
        "# Kitch settings. Copy to .env and uncomment what you change.",
        "# Precedence: command-line flag > environment variable > .env > default.",
        "# Generated by: python3 -m kitch.config env",
    ]
    for f in dataclasses.fields(Settings):
        default = "" if f.default is None else str(f.default)
        lines += ["", f"# {f.metadata['help']}", f"# {env_name(f.name)}={default}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - maintenance helper
    what = sys.argv[1] if len(sys.argv) > 1 else "markdown"
    sys.stdout.write(markdown_table() if what == "markdown" else env_example())
