"""A real PostgreSQL for the tests: one throw-away cluster per test session.

The session fixture ``postgres`` runs ``initdb`` into a temporary directory and starts the
server on 127.0.0.1 (a free port; its Unix socket in the same directory), with fsync off, and
stops it at the end. PostgreSQL refuses to run as root, so under root (as in CI) the cluster
belongs to the ``postgres`` system user the package creates and its programs run through
``runuser``. A database migrated to the current schema is kept as a template, so a test's fresh
database is one ``CREATE DATABASE ... TEMPLATE``.

``database_url`` is parametrized over both engines: the URL of a fresh, empty-of-data database
(an SQLite file in the test's directory, or a new PostgreSQL database). ``new_database_url``
makes more of the same engine, migrated or (``empty=True``) not.

Without PostgreSQL installed the PostgreSQL cases are skipped on a developer's machine and fail
in CI (``CI`` set), where ``make test-deps`` installs it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from kitch.db import open_database

TEMPLATE = "kitch_template"
ENGINES = ("sqlite", "postgresql")


def postgres_bin() -> Path | None:
    """The directory holding initdb and pg_ctl (the newest installed), or None."""
    explicit = os.environ.get("KITCH_TEST_PG_BIN")
    if explicit:
        return Path(explicit)
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresCluster:
    """A running throw-away cluster; superuser ``kitch`` with trust authentication on loopback."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="kitch-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user: str | None = None
        self._names = itertools.count(1)
        if os.geteuid() == 0:
            self.user = "postgres"
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}{tail}"
            )

    def start(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "kitch", "--auth=trust", "--encoding=UTF8",
            "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} "
            f"-c unix_socket_directories={self.root} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"),
            "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql://kitch@127.0.0.1:{self.port}/{database}"

    async def create_database(self, *, empty: bool = False) -> str:
        """A new database: a copy of the migrated template, or (``empty``) of template0."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        conn = await asyncpg.connect(self.url("postgres"))
        try:
            template = "template0" if empty else TEMPLATE
            await conn.execute(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
        finally:
            await conn.close()
        return name

    async def drop_database(self, name: str) -> None:
        conn = await asyncpg.connect(self.url("postgres"))
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()

    def make_template(self) -> None:
        async def migrate() -> None:
            conn = await asyncpg.connect(self.url("postgres"))
            try:
                await conn.execute(f"CREATE DATABASE {TEMPLATE}")
            finally:
                await conn.close()
            db = await open_database(self.url(TEMPLATE))
            await db.close()

        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # outside any test's loop
            pool.submit(asyncio.run, migrate()).result()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """The session's PostgreSQL cluster (started on first use)."""
    bindir = postgres_bin()
    if bindir is None or not (bindir / "initdb").exists():
        message = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    cluster = PostgresCluster(bindir)
    try:
        cluster.start()
        cluster.make_template()
        yield cluster
    finally:
        cluster.stop()


NewDatabaseURL = Callable[..., Awaitable[str]]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """``"sqlite"`` or ``"postgresql"``: the test runs once on each."""
    name: str = request.param
    return name


@pytest.fixture
async def new_database_url(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[NewDatabaseURL]:
    """``await new_database_url(empty=False)``: the URL of a new database of the test's engine,
    migrated to the current schema (its tables empty but for the seeded rows) or not at all."""
    made: list[str] = []
    cluster: PostgresCluster | None = None
    if engine == "postgresql":
        cluster = request.getfixturevalue("postgres")
    counter = itertools.count(1)

    async def make(*, empty: bool = False) -> str:
        if cluster is None:
            return f"sqlite:///{tmp_path / f'kitch-{next(counter)}.db'}"
        name = await cluster.create_database(empty=empty)
        made.append(name)
        return cluster.url(name)

    yield make
    if cluster is not None:
        for name in made:
            await cluster.drop_database(name)


@pytest.fixture
async def database_url(new_database_url: NewDatabaseURL) -> str:
    """The URL of a fresh database of the test's engine (see :func:`new_database_url`)."""
    return await new_database_url()
