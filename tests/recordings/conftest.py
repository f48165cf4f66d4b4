"""Fixtures of the recording tests: real `kitch serve` processes (ladder off: the recorder only
copies the source rendition) and helpers to read a recording back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.server.conftest import server_factory  # noqa: F401 - a fixture
from tests.support.server import KitchServer

ServerFactory = Callable[..., KitchServer]


@pytest.fixture
def server(server_factory: ServerFactory) -> KitchServer:  # noqa: F811
    return server_factory("--reconnect-grace", "3", "--ladder", "off")


def recordings(server: KitchServer, name: str, token: str | None = None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = server.get(f"/api/v1/channels/{name}/recordings", token=token)[
        "recordings"
    ]
    return found


def only_recording(server: KitchServer, name: str, token: str | None = None) -> dict[str, Any]:
    found = recordings(server, name, token)
    assert len(found) == 1, found
    return found[0]


def playlist_entries(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]
