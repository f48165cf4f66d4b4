"""The Host policy: which Host header values a server with given settings answers."""

from __future__ import annotations

import pytest

from kitch.api.hosts import HostPolicy, host_of
from kitch.config import Settings


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("example.com", "example.com"),
        ("Example.COM:8000", "example.com"),
        ("example.com.", "example.com"),
        ("example.com.:80", "example.com"),
        ("[::1]:8000", "::1"),
        ("[::1]", "::1"),
        ("::1", ""),  # IPv6 without brackets is not a valid Host
        ("", ""),
        ("[::1", ""),
    ],
)
def test_host_of(header: str, host: str) -> None:
    assert host_of(header) == host


@pytest.mark.parametrize(
    ("settings", "allowed", "refused"),
    [
        (
            {},
            ["localhost", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"],
            ["example.com", "10.0.0.5", "127.0.0.2", "localhost.evil.example", ""],
        ),
        (
            {"public_url": "https://tv.example.com", "http": "10.0.0.5:8000"},
            ["tv.example.com", "tv.example.com:443", "10.0.0.5:8000", "localhost"],
            ["example.com", "10.0.0.6", "sub.tv.example.com"],
        ),
        (
            {"http": "0.0.0.0:8000"},
            ["192.168.1.50:8000", "[fe80::1]", "10.1.2.3", "localhost"],
            ["lan-box", "example.com", "192.168.1.50.evil.example"],
        ),
        (
            {"allowed_hosts": "*.example.net, tv.example.com"},
            ["a.example.net", "b.a.example.net:8000", "tv.example.com"],
            ["example.net", "localhost", "127.0.0.1", "evil-example.net"],
        ),
        ({"allowed_hosts": "*"}, ["anything.example", "1.2.3.4"], []),
    ],
)
def test_policy_from_settings(
    settings: dict[str, str], allowed: list[str], refused: list[str]
) -> None:
    policy = HostPolicy.from_settings(Settings(**settings))  # type: ignore[arg-type]
    for header in allowed:
        assert policy.allows(header), header
    for header in refused:
        assert not policy.allows(header), header
