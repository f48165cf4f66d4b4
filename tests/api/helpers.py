"""Shared constants and assertions for the API tests."""

from __future__ import annotations

from typing import Any

import httpx

TEST_SECRET = "test-secret-0123456789abcdef0123456789"
PASSWORD = "correct horse battery"
Register = Any  # the ``register`` fixture: async (name="alice", password=PASSWORD) -> dict


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
