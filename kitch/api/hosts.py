"""Which ``Host`` headers the server answers (the ``allowed_hosts`` setting).

The request's host appears in what Kitch sends back (Starlette's trailing-slash redirects, the
RTMP URL the dashboard shows when ``public_url`` is unset), so a request whose ``Host`` is not
one of the server's names is refused with 400 before any handler sees it (a JSON error under
``/api``). That closes DNS-rebinding and host-header poisoning: a name someone else controls
never reaches a page or a redirect.

Without ``allowed_hosts`` the server accepts: ``localhost`` and loopback addresses, the host of
``public_url``, the host of the ``http`` listen address, and, when that address is a wildcard
(``0.0.0.0`` or ``::``, so the server is reached by whatever address the LAN uses), any IP
address literal: a browser only sends an address as Host when it connected to that address.
A server reached by a DNS name needs ``public_url`` or ``allowed_hosts``. A request without a
Host header (HTTP/1.0) is let through: there is nothing of the client's to reflect.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from kitch.config import Settings, parse_hostport, split_list

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("0.0.0.0", "::", "")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_of(header: str) -> str:
    """The host name of a ``Host`` header value (port and IPv6 brackets dropped, lower case)."""
    text = header.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        return text[1:end] if end > 0 else ""
    name, _, port = text.rpartition(":")
    if name and port.isdigit() and ":" not in name:
        return name.rstrip(".")
    return text.rstrip(".") if ":" not in text else ""


class HostPolicy:
    """Allowed host names: exact names, ``*.suffix`` wildcards, ``*`` (anything), and
    optionally any IP address literal."""

    def __init__(self, names: Iterable[str], *, any_ip: bool = False) -> None:
        items = [n.strip().lower().rstrip(".") for n in names if n.strip()]
        self.anything = "*" in items
        self.exact = {n.strip("[]") for n in items if not n.startswith("*")}
        self.suffixes = tuple(n[1:] for n in items if n.startswith("*."))
        self.any_ip = any_ip

    @classmethod
    def from_settings(cls, settings: Settings) -> HostPolicy:
        if settings.allowed_hosts is not None:
            return cls(split_list(settings.allowed_hosts))
        names = list(LOOPBACK_NAMES)
        if settings.public_url:
            public = urlsplit(settings.public_url).hostname
            if public:
                names.append(public)
        bound, _ = parse_hostport(settings.http)
        if bound not in WILDCARD_BINDS:
            names.append(bound)
        return cls(names, any_ip=bound in WILDCARD_BINDS)

    def allows(self, header: str) -> bool:
        if self.anything:
            return True
        host = host_of(header)
        if not host:
            return False
        if host in self.exact or host.endswith(self.suffixes):
            return True
        return self.any_ip and _is_ip(host)


def _refusal(api: bool) -> tuple[bytes, bytes]:
    if api:
        body = json.dumps(
            {"error": {"code": "bad_host", "message": "this server does not answer that Host"}}
        ).encode()
        return b"application/json", body
    return b"text/plain; charset=utf-8", b"unknown Host\n"


class HostCheck:
    """ASGI middleware: a request (or WebSocket) whose Host ``policy`` refuses gets a 400."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.policy.anything:
            await self.app(scope, receive, send)
            return
        host = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
                break
        if host is None or self.policy.allows(host):  # no Host (HTTP/1.0): nothing to reflect
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        path: str = scope["path"]
        content_type, body = _refusal(path == "/api" or path.startswith("/api/"))
        headers = [
            (b"content-type", content_type),
            (b"content-length", b"%d" % len(body)),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def origin_allowed(policy: HostPolicy | None, origin: str | None, host: str | None) -> bool:
    """Whether a WebSocket handshake's ``Origin`` may open a socket: no Origin (not a
    browser), the same host as the request's ``Host``, or a host the policy answers. A page
    on another site cannot open a socket that carries the user's session."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    name = parts.hostname.lower().rstrip(".")
    if host is not None and name == host_of(host):
        return True
    return policy is not None and not policy.anything and policy.allows(parts.netloc)
