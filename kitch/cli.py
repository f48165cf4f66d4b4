"""The ``kitch`` command: ``serve``, ``user create``, ``key show``, ``key rotate``, ``category
list|add|edit|remove``, ``db migrate``, ``db copy --from URL --to URL``, ``--version``.

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
from pathlib import Path
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
    add_arguments(create, only=["data_dir", "database", "bcrypt_cost"])

    key = commands.add_parser("key", help="show or rotate a user's stream key")
    key_commands = key.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("show", "print the stream key"), ("rotate", "replace the stream key")):
        sub = key_commands.add_parser(action, help=text)
        sub.add_argument("name")
        add_arguments(sub, only=["data_dir", "database", "public_url", "rtmp"])

    category = commands.add_parser("category", help="list or change the categories")
    category_commands = category.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = category_commands.add_parser("list", help="print every category: slug, name")
    add = category_commands.add_parser("add", help="add a category")
    add.add_argument("name")
    add.add_argument("--slug", help="default: made from the name")
    add.add_argument("--hue", type=int, help="0-359, the colour of its generated art")
    edit = category_commands.add_parser("edit", help="rename a category or change its slug")
    edit.add_argument("slug", metavar="SLUG")
    edit.add_argument("--name")
    edit.add_argument("--new-slug", dest="new_slug")
    edit.add_argument("--hue", type=int)
    remove = category_commands.add_parser(
        "remove", help="remove a category (its channels are left without one)"
    )
    remove.add_argument("slug", metavar="SLUG")
    for sub in (listing, add, edit, remove):
        add_arguments(sub, only=["data_dir", "database"])

    database = commands.add_parser("db", help="migrate the database, or copy it to another")
    db_commands = database.add_subparsers(dest="action", required=True, metavar="ACTION")
    migrate = db_commands.add_parser(
        "migrate", help="apply the pending migrations to the configured database and exit"
    )
    add_arguments(migrate, only=["data_dir", "database"])
    copy = db_commands.add_parser(
        "copy",
        help="copy every row of one database into another, empty one (e.g. SQLite to "
        "PostgreSQL); both are migrated first",
    )
    copy.add_argument("--from", dest="source", required=True, metavar="URL")
    copy.add_argument("--to", dest="target", required=True, metavar="URL")
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
    db = await open_database(settings.database_url)
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

    db = await open_database(settings.database_url)
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


def _category_changes(args: argparse.Namespace) -> tuple[dict[str, Any], str | None]:
    """The name, slug and hue given on the command line, checked; or the problem."""
    from kitch.db.vocabulary import normalise_category_name, slug_problem

    changes: dict[str, Any] = {}
    if getattr(args, "name", None) is not None:
        name, problem = normalise_category_name(args.name)
        if name is None:
            return {}, f"the name {problem}"
        changes["name"] = name
    slug = getattr(args, "new_slug", None) if args.action == "edit" else args.slug
    if slug is not None:
        problem = slug_problem(slug)
        if problem is not None:
            return {}, f"the slug {problem}"
        changes["slug"] = slug
    if args.hue is not None:
        if not 0 <= args.hue <= 359:
            return {}, "the hue must be from 0 to 359"
        changes["hue"] = args.hue
    return changes, None


async def _category(settings: Settings, args: argparse.Namespace) -> int:
    from kitch.db import discovery, open_database
    from kitch.db.vocabulary import default_hue, slugify

    changes: dict[str, Any] = {}
    if args.action in ("add", "edit"):
        changes, problem = _category_changes(args)
        if problem is not None:
            print(f"kitch: {problem}", file=sys.stderr)
            return 2
    db = await open_database(settings.database_url)
    try:
        if args.action == "list":
            for found in await discovery.list_categories(db):
                print(f"{found.slug}\t{found.name}")
            return 0
        if args.action == "add":
            slug = changes.get("slug") or slugify(changes["name"])
            if not slug:
                print("kitch: the name gives no slug (no a-z or 0-9): pass --slug", file=sys.stderr)
                return 2
            hue = changes.get("hue", default_hue(slug))
            made = await discovery.create_category(db, changes["name"], slug, hue)
            print(f"added category {made.slug} ({made.name})")
            return 0
        category = await discovery.get_category(db, args.slug)
        if category is None:
            print(f"kitch: no category {args.slug!r}", file=sys.stderr)
            return 1
        if args.action == "edit":
            await discovery.update_category(db, category.id, changes)
            print(f"changed category {changes.get('slug', category.slug)}")
        else:
            channels = await discovery.delete_category(db, category.id)
            print(f"removed category {category.slug} ({len(channels)} channel(s) left without one)")
        return 0
    except discovery.CategoryConflict as exc:
        print(f"kitch: another category has that {exc.field}", file=sys.stderr)
        return 1
    except discovery.TooManyCategories:
        print(f"kitch: there are {discovery.MAX_CATEGORIES} categories already", file=sys.stderr)
        return 1
    finally:
        await db.close()


async def _db(settings: Settings, args: argparse.Namespace) -> int:
    from kitch.db import DatabaseURLError, open_database, parse_url, redact_url, schema_version
    from kitch.db.copy import CopyError, copy_database

    try:
        if args.action == "migrate":
            db = await open_database(settings.database_url)
            try:
                version = await schema_version(db)
            finally:
                await db.close()
            print(f"{db.url}: schema version {version}")
            return 0
        dialect, where = parse_url(args.source)
        if dialect == "sqlite" and not Path(where).is_file():
            print(f"kitch: no SQLite database at {where}", file=sys.stderr)
            return 1
        source = await open_database(args.source)
        try:
            target = await open_database(args.target)
            try:
                copied = await copy_database(source, target)
            finally:
                await target.close()
        finally:
            await source.close()
    except (DatabaseURLError, CopyError, ConnectionError) as exc:
        print(f"kitch: {exc}", file=sys.stderr)
        return 1
    total = sum(copied.values())
    print(f"copied {total} rows in {len(copied)} tables to {redact_url(args.target)}")
    for table, count in copied.items():
        print(f"  {table}: {count}")
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
    from kitch.db import DatabaseUnavailableError, SchemaTooNewError

    try:
        if args.command == "serve":
            return serve(settings)
        run: Any
        if args.command == "user":
            run = _user_create(settings, args.name, args.email, args.admin)
        elif args.command == "category":
            run = _category(settings, args)
        elif args.command == "db":
            run = _db(settings, args)
        else:
            run = _key(settings, args.name, args.action == "rotate")
        code: int = asyncio.run(run)
        return code
    except (SchemaTooNewError, DatabaseUnavailableError) as exc:
        print(f"kitch: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
