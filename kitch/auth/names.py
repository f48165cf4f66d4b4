"""Username and email rules shared by the API and the CLI."""

from __future__ import annotations

import re

USERNAME_RE = re.compile(r"[a-z0-9_]{3,25}")
EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{1,63}")
MAX_EMAIL = 254

#: Names that collide with routes of the web app, API or ingest, or that would mislead viewers.
RESERVED_USERNAMES = frozenset(
    [
        "admin",
        "administrator",
        "api",
        "app",
        "assets",
        "auth",
        "browse",
        "channel",
        "channels",
        "chat",
        "dashboard",
        "directory",
        "docs",
        "download",
        "embed",
        "explore",
        "favicon",
        "following",
        "health",
        "help",
        "hls",
        "home",
        "index",
        "kitch",
        "live",
        "login",
        "logout",
        "me",
        "metrics",
        "moderator",
        "mod",
        "new",
        "null",
        "openapi",
        "player",
        "popout",
        "privacy",
        "register",
        "root",
        "rtmp",
        "rtmps",
        "search",
        "security",
        "settings",
        "signup",
        "static",
        "stream",
        "streams",
        "support",
        "system",
        "terms",
        "undefined",
        "user",
        "users",
        "video",
        "videos",
        "well_known",
        "ws",
        "www",
    ]
)


def normalise_username(raw: str) -> tuple[str | None, str | None]:
    """Return ``(username, None)`` or ``(None, reason)``.

    The name must be ASCII first (so look-alikes such as the Kelvin sign, which ``str.lower``
    maps to ``k``, are refused, not folded), then lower-cased and matched against 3-25 of
    ``[a-z0-9_]``; reserved names are refused.
    """
    if not raw.isascii():
        return None, "username may only use the letters a-z, digits and underscore"
    name = raw.lower()
    if not USERNAME_RE.fullmatch(name):
        return None, "username must be 3-25 characters of a-z, 0-9 and _"
    if name in RESERVED_USERNAMES:
        return None, f"the username {name!r} is reserved"
    return name, None


def normalise_email(raw: str) -> tuple[str | None, str | None]:
    """Return ``(email, None)`` (trimmed, domain lower-cased) or ``(None, reason)``."""
    email = raw.strip()
    if len(email) > MAX_EMAIL or not EMAIL_RE.fullmatch(email):
        return None, "email is not a valid address"
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}", None
