"""The ``kitch`` command: ``serve``, ``user create``, ``key show``, ``key rotate``, ``--version``.

Every setting is a ``serve`` flag (generated from :class:`kitch.config.Settings`); the account
commands take ``--data-dir`` and otherwise read the same environment and ``.env``. They work
while the server runs on the same data directory (SQLite waits for the server's writes).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Sequence
from typing import Any

import kitch
from kitch.config import ConfigError, Settings, add_arguments, load_settings, parse_hostport
from kitch.logs import fingerprint, setup_logging

log = logging.getLogger("kitch.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kitch", description="Kitch live streaming server.")
    parser.add_argument("--version", action="version", version=f"kitch {kitch.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server (RTMP ingest, HLS, web app, API)")
    add_arguments(serve)

    user = commands.add_parser("user", help="manage accounts")
    user_commands = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = user_commands.add_parser(
        "create", help="create an account; the password is read from the first line of stdin"
    )
    create.add_argument("name")
    create.add_argument("--email", required=True)
    create.add_argument("--admin", action="store_true", help="make the account an administrator")
    add_arguments(create, only=["data_dir", "bcrypt_cost"])

    key = commands.add_parser("key", help="show or rotate a user's stream key")
    key_commands = key.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("show", "print the stream key"), ("rotate", "replace the stream key")):
        sub = key_commands.add_parser(action, help=text)
        sub.add_argument("name")
        add_arguments(sub, only=["data_dir", "public_url", "rtmp"])
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    names = set(Settings.__dataclass_fields__)
    return load_settings({k: v for k, v in vars(args).items() if k in names})


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != first:
            raise SystemExit("kitch: passwords do not match")
        return first
    return sys.stdin.readline().rstrip("\r\n")


async def _user_create(settings: Settings, name: str, email: str, admin: bool) -> int:
    from kitch.auth.names import normalise_email, normalise_username
    from kitch.auth.passwords import hash_password, password_problem
    from kitch.db import open_database
    from kitch.db.users import Conflict, create_user

    username, problem = normalise_username(name)
    if username is None:
        print(f"kitch: {problem}", file=sys.stderr)
        return 2
    address, problem = normalise_email(email)
    if address is None:
        print(f"kitch: {problem}", file=sys.stderr)
        return 2
    password = _read_password()
    problem = password_problem(password)
    if problem is not None:
        print(f"kitch: {problem}", file=sys.stderr)
        return 2
    password_hash = await hash_password(password, settings.bcrypt_cost)
    db = await open_database(settings.data_dir / "kitch.db")
    try:
        user, key = await create_user(db, username, address, password_hash, is_admin=admin)
    except Conflict as exc:
        print(f"kitch: that {exc.field} is already taken", file=sys.stderr)
        return 1
    finally:
        await db.close()
    role = "admin " if admin else ""
    print(f"created {role}user {user.username} (id {user.id}); stream key {fingerprint(key)}")
    print(f"show the key with: kitch key show {user.username}")
    return 0


def _server_url(settings: Settings) -> str:
    from urllib.parse import urlsplit

    host, port = parse_hostport(settings.rtmp)
    if settings.public_url:
        host = urlsplit(settings.public_url).hostname or host
    if host in ("0.0.0.0", "::", ""):
        host = "YOUR-SERVER"
    if ":" in host:
        host = f"[{host}]"
    return f"rtmp://{host}:{port}/live"


async def _key(settings: Settings, name: str, rotate: bool) -> int:
    from kitch.db import open_database
    from kitch.db.users import get_stream_key, get_user_by_name, rotate_stream_key

    db = await open_database(settings.data_dir / "kitch.db")
    try:
        user = await get_user_by_name(db, name)
        if user is None:
            print(f"kitch: no user {name!r}", file=sys.stderr)
            return 1
        key = await get_stream_key(db, user.id)
        if rotate or key is None:
            key = await rotate_stream_key(db, user.id)
    finally:
        await db.close()
    if sys.stdout.isatty():
        print(f"Server:     {_server_url(settings)}")
        print(f"Stream key: {key}")
    else:
        print(key)
    return 0


def serve(settings: Settings) -> int:
    """Run the full server (RTMP ingest, HLS, web app, API)."""
    from kitch.server.main import run

    return run(settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kitch`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"kitch: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_format, settings.log_level)
    from kitch.db import SchemaTooNewError

    try:
        if args.command == "serve":
            return serve(settings)
        run: Any
        if args.command == "user":
            run = _user_create(settings, args.name, args.email, args.admin)
        else:
            run = _key(settings, args.name, args.action == "rotate")
        code: int = asyncio.run(run)
        return code
    except SchemaTooNewError as exc:
        print(f"kitch: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
