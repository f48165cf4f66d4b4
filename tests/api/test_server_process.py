"""Against a real ``python3 -m kitch serve`` process on loopback: HTTP, CLI beside it, SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import PASSWORD

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    env: dict[str, str]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    data_dir = tmp_path / "data"
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KITCH_BCRYPT_COST": "4",
        "KITCH_REGISTER_ATTEMPTS_PER_ADDRESS": "100000",  # the SIGKILL test registers many
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kitch",
            "serve",
            "--http",
            f"127.0.0.1:{port}",
            "--rtmp",
            f"127.0.0.1:{free_port()}",
            "--data-dir",
            str(data_dir),
            "--log-format",
            "json",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/api/v1/channels", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            stderr = process.stderr.read().decode() if process.stderr else ""
            pytest.fail(f"server did not start: {stderr[-2000:]}")
        time.sleep(0.1)
    try:
        yield Server(process, url, data_dir, env)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr:
            process.stderr.close()


async def test_real_server_register_and_cli_beside_it(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
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
            env=server.env,
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
            env=server.env,
            timeout=60,
        )
        assert created.returncode == 0, created.stderr
        login = await client.post(
            "/api/v1/auth/login", json={"username": "from_cli", "password": "cli password"}
        )
        assert login.status_code == 200
        missing = await client.get("/api/v1/nothing-here")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    server.process.terminate()
    server.process.wait(10)
    assert server.process.stderr is not None
    logs = server.process.stderr.read().decode()
    assert api_key not in logs


async def test_sigkill_during_writes_loses_no_committed_account(server: Server) -> None:
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

    async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
        tasks = [asyncio.create_task(writer(client, w)) for w in range(6)]
        deadline = time.monotonic() + 60  # about 1 s on an idle machine
        while len(answered) < 30:
            if time.monotonic() > deadline or all(t.done() for t in tasks):
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                pytest.fail(f"only {len(answered)} registrations answered 201 within 60 s")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
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
