"""Against a real ``python3 -m kitch serve`` process on loopback: HTTP, CLI beside it, SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import PASSWORD
from tests.support.server import KitchServer, serving

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KitchServer]:
    # The SIGKILL test registers many accounts from one address.
    with serving(
        tmp_path, "--log-format", "json", KITCH_REGISTER_ATTEMPTS_PER_ADDRESS="100000"
    ) as srv:
        yield srv


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "KITCH_BCRYPT_COST": "4"}


async def test_real_server_register_and_cli_beside_it(server: KitchServer) -> None:
    async with httpx.AsyncClient(base_url=server.base) as client:
        registered = await client.post(
            "/api/v1/auth/register",
            json={"username": "live_one", "email": "l@example.com", "password": PASSWORD},
        )
        assert registered.status_code == 201
        auth = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        api_key = (await client.get("/api/v1/me/stream-key", headers=auth)).json()["stream_key"]
        shown = subprocess.run(
            [
                sys.executable,
                "-m",
                "kitch",
                "key",
                "show",
                "live_one",
                "--data-dir",
                str(server.data_dir),
            ],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.strip() == api_key
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "kitch",
                "user",
                "create",
                "from_cli",
                "--email",
                "c@example.com",
                "--data-dir",
                str(server.data_dir),
            ],
            input="cli password\n",
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=60,
        )
        assert created.returncode == 0, created.stderr
        login = await client.post(
            "/api/v1/auth/login", json={"username": "from_cli", "password": "cli password"}
        )
        assert login.status_code == 200
        missing = await client.get("/api/v1/nothing-here")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    server.stop()
    logs = server.log()
    assert api_key not in logs


async def test_sigkill_during_writes_loses_no_committed_account(server: KitchServer) -> None:
    answered: list[str] = []
    stop = asyncio.Event()

    async def writer(client: httpx.AsyncClient, worker: int) -> None:
        i = 0
        while not stop.is_set():
            name = f"w{worker}_{i}"
            i += 1
            try:
                response = await client.post(
                    "/api/v1/auth/register",
                    json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
                )
            except httpx.TransportError:
                return
            if response.status_code == 201:
                answered.append(name)
            else:
                assert response.status_code >= 500 or response.status_code == 201

    async with httpx.AsyncClient(base_url=server.base, timeout=5) as client:
        tasks = [asyncio.create_task(writer(client, w)) for w in range(6)]
        deadline = time.monotonic() + 60  # about 1 s on an idle machine
        while len(answered) < 30:
            if time.monotonic() > deadline or all(t.done() for t in tasks):
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                pytest.fail(f"only {len(answered)} registrations answered 201 within 60 s")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        server.stop(signal.SIGKILL)
        stop.set()
        await asyncio.gather(*tasks)

    assert len(answered) >= 30
    db_path = server.data_dir / "kitch.db"
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        names = {row[0] for row in conn.execute("SELECT username FROM users")}
        # Every user row is complete: channel and stream key exist too.
        orphans = conn.execute(
            "SELECT count(*) FROM users u WHERE NOT EXISTS "
            "(SELECT 1 FROM channels c WHERE c.user_id = u.id) OR NOT EXISTS "
            "(SELECT 1 FROM stream_keys k WHERE k.user_id = u.id)"
        ).fetchone()[0]
    missing = set(answered) - names
    assert not missing, f"{len(missing)} acknowledged registrations were lost"
    assert orphans == 0


async def test_api_responses_carry_the_servers_clock_to_the_millisecond(
    server: KitchServer,
) -> None:
    """``Kitch-Time`` (the web app's clock) is read as each response starts, unlike uvicorn's
    ``Date``, which is refreshed once a second; HLS answers do not carry it."""
    async with httpx.AsyncClient(base_url=server.base) as client:
        for pause in (0.0, 0.35, 0.7):
            await asyncio.sleep(pause)
            before = time.time() * 1000
            response = await client.get("/api/v1/channels")
            after = time.time() * 1000
            stamp = int(response.headers["kitch-time"])
            print(f"request took {after - before:.1f} ms; Kitch-Time {stamp - before:+.1f} ms")
            assert before - 1 <= stamp <= after + 1
        missing = await client.get("/api/v1/nope")
        assert missing.status_code == 404 and "kitch-time" in missing.headers
        hls = await client.get("/hls/nobody/index.m3u8")
        assert "kitch-time" not in hls.headers
