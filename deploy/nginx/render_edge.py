#!/usr/bin/env python3
"""Render deploy/nginx/kitch-edge.conf: fill its @NAME@ placeholders and print the result.

    python3 deploy/nginx/render_edge.py --listen 80 --cache-dir /var/cache/kitch-edge \\
        --origin 10.0.0.2:8000 --origin 10.0.0.3:8000 > /etc/nginx/conf.d/kitch-edge.conf

``--origin HOST:PORT`` (repeatable) names each Kitch node's ``--http`` address: the web app,
``/api`` and the WebSockets go there, and ``/hls`` too unless ``--hls-origin`` (repeatable)
names the HLS workers' ports instead. The edge follows a node's 307 only to the nodes it
knows: by default ``http://HOST:PORT`` of every origin and HLS origin; ``--node URL=HOST:PORT``
adds a node whose announced URL (``--node-url``) differs from the address the edge reaches
it at. The output goes inside nginx's ``http { }`` block. Standard library only.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

TEMPLATE = Path(__file__).with_name("kitch-edge.conf")
_HOSTPORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")
_DURATION = re.compile(r"^\d+(ms|s|m)?$")
_SIZE = re.compile(r"^\d+[kKmMgG]?$")


def _hostport(value: str) -> str:
    m = _HOSTPORT.match(value)
    if m is None or not 1 <= int(m.group(2)) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return value


def _node(value: str) -> tuple[str, str]:
    """``URL`` or ``URL=HOST:PORT`` -> (URL prefix without a trailing slash, HOST:PORT)."""
    url, _, address = value.partition("=")
    m = re.match(r"^http://([^/?#]+)/?$", url)
    if m is None:
        raise ValueError(f"{url!r}: a node URL is http://HOST[:PORT] (no path)")
    host = m.group(1)
    if not address:
        address = host if ":" in host.rsplit("]", 1)[-1] else host + ":80"
    return url.rstrip("/"), _hostport(address)


def render(
    *,
    listen: str,
    cache_dir: str,
    server_name: str = "_",
    origins: Sequence[str],
    hls_origins: Sequence[str] = (),
    nodes: Sequence[str] = (),
    cache_max_size: str = "1g",
    playlist_lock_timeout: str = "40s",
    media_lock_timeout: str = "40s",
    hold_timeout: str = "40s",
    template: str | None = None,
) -> str:
    """The rendered configuration text (raises ValueError on a bad value)."""
    if not origins:
        raise ValueError("at least one --origin is needed")
    if not re.match(r"^(\[[0-9a-fA-F:.]+\]:|[A-Za-z0-9.*-]+:)?\d{1,5}$", listen):
        raise ValueError(f"--listen {listen!r} is not PORT or HOST:PORT")
    if not re.match(r"^[A-Za-z0-9._*~^$-]+( [A-Za-z0-9._*~^$-]+)*$", server_name):
        raise ValueError(f"--server-name {server_name!r} is not a list of host names")
    if not cache_dir.startswith("/") or any(c in cache_dir for c in " ;{}'\"\n"):
        raise ValueError(f"--cache-dir {cache_dir!r} must be an absolute path without spaces")
    if not _SIZE.match(cache_max_size):
        raise ValueError(f"--cache-max-size {cache_max_size!r} is not a size like 1g")
    for name, value in (
        ("playlist-lock-timeout", playlist_lock_timeout),
        ("media-lock-timeout", media_lock_timeout),
        ("hold-timeout", hold_timeout),
    ):
        if not _DURATION.match(value):
            raise ValueError(f"--{name} {value!r} is not a duration like 250ms or 40s")
    app = [_hostport(o) for o in origins]
    hls = [_hostport(o) for o in hls_origins] or app
    known: dict[str, str] = {}
    for address in [*hls, *app]:
        known.setdefault(f"http://{address}", address)
    for value in nodes:
        url, address = _node(value)
        known[url] = address
    upstreams, lines = [], []
    for i, (url, address) in enumerate(known.items()):
        upstreams.append(
            f"upstream kitch_node_{i} {{\n    server {address};\n    keepalive 16;\n"
            "    keepalive_requests 100000;\n    keepalive_timeout 8s;\n}"
        )
        pattern = re.escape(url).replace('"', r"\"")
        lines.append(f'    "~^{pattern}(?<kitch_node_path>/hls/.*)$" kitch_node_{i};')
    values = {
        "LISTEN": listen,
        "SERVER_NAME": server_name,
        "CACHE_DIR": cache_dir,
        "CACHE_MAX_SIZE": cache_max_size,
        "APP_SERVERS": "\n".join(f"    server {a};" for a in app),
        "HLS_SERVERS": "\n".join(f"    server {a};" for a in hls),
        "NODE_UPSTREAMS": "\n".join(upstreams),
        "NODE_MAP": "\n".join(lines),
        "PLAYLIST_LOCK_TIMEOUT": playlist_lock_timeout,
        "MEDIA_LOCK_TIMEOUT": media_lock_timeout,
        "HOLD_TIMEOUT": hold_timeout,
    }
    text = template if template is not None else TEMPLATE.read_text()
    # the header comment names every placeholder: fill only the lines after it
    _head, sep, body = text.partition("\nproxy_cache_path")
    body = sep + body
    for name, value in values.items():
        body = body.replace(f"@{name}@", value)
    left = re.findall(r"@[A-Z_]+@", body)
    if left:
        raise ValueError(f"placeholders left unfilled: {sorted(set(left))}")
    comment = "# Rendered by deploy/nginx/render_edge.py from kitch-edge.conf.\n"
    return comment + body.lstrip("\n")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--listen", default="80", help="PORT or HOST:PORT to listen on (80)")
    ap.add_argument(
        "--server-name", default="_", help="the site's host names, space-separated (_: any)"
    )
    ap.add_argument(
        "--cache-dir", default="/var/cache/kitch-edge", help="cache directory (tmpfs is best)"
    )
    ap.add_argument("--cache-max-size", default="1g", help="cache size cap (1g)")
    ap.add_argument(
        "--origin", action="append", default=[], help="a node's --http HOST:PORT (repeatable)"
    )
    ap.add_argument(
        "--hls-origin",
        action="append",
        default=[],
        help="HOST:PORT /hls is fetched from (repeatable; default: the --origin addresses)",
    )
    ap.add_argument(
        "--node",
        action="append",
        default=[],
        help="URL[=HOST:PORT] of a node a 307 may point at, beyond the origins (repeatable)",
    )
    ap.add_argument(
        "--playlist-lock-timeout",
        default="40s",
        help="proxy_cache_lock_timeout of playlists (40s; see docs/EDGE.md)",
    )
    ap.add_argument(
        "--media-lock-timeout",
        default="40s",
        help="proxy_cache_lock_timeout of parts and segments (40s; see docs/EDGE.md)",
    )
    ap.add_argument(
        "--hold-timeout",
        default="40s",
        help="lock age and read timeout: longer than the origin's longest blocking hold (40s)",
    )
    args = ap.parse_args(argv)
    try:
        text = render(
            listen=args.listen,
            server_name=args.server_name,
            cache_dir=args.cache_dir,
            origins=args.origin,
            hls_origins=args.hls_origin,
            nodes=args.node,
            cache_max_size=args.cache_max_size,
            playlist_lock_timeout=args.playlist_lock_timeout,
            media_lock_timeout=args.media_lock_timeout,
            hold_timeout=args.hold_timeout,
        )
    except ValueError as exc:
        print(f"render_edge: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
