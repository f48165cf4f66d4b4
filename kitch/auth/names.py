"""Username, email and free-text rules shared by the API and the CLI."""

from __future__ import annotations

import re
import unicodedata

USERNAME_RE = re.compile(r"[a-z0-9_]{3,25}")
EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{1,63}")
MAX_EMAIL = 254

#: Bidirectional embeddings, overrides and isolates, and the implicit direction marks: they can
#: make a title or a bio display as something other than what it says ("Trojan Source").
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
#: Invisible characters with no place in text a person types (zero-width space, word joiner,
#: byte-order mark, Mongolian vowel separator).
INVISIBLE = frozenset("\u180e\u200b\u2060\ufeff")
#: Zero-width (non-)joiner: needed inside emoji sequences and some scripts, so allowed only
#: between two visible characters.
JOINERS = frozenset("\u200c\u200d")

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
        "vod",
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
    if len(email) > MAX_EMAIL or not EMAIL_RE.fullmatch(email) or not all(map(_visible, email)):
        return None, "email is not a valid address"
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}", None


def _visible(ch: str) -> bool:
    return not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why free text (a title, bio, tag...) is refused, or None.

    Refused: control characters (but newline and tab where ``multiline``), line and paragraph
    separators, bidirectional controls, invisible characters, and a zero-width (non-)joiner that
    is not between two visible characters.
    """
    allowed = "\n\t" if multiline else ""
    for index, ch in enumerate(value):
        category = unicodedata.category(ch)
        if (category == "Cc" and ch not in allowed) or category in ("Zl", "Zp", "Cs"):
            return "must not contain control characters"
        if ch in BIDI_CONTROLS:
            return "must not contain bidirectional control characters"
        if ch in INVISIBLE:
            return "must not contain invisible characters"
        if ch in JOINERS and not (
            0 < index < len(value) - 1 and _visible(value[index - 1]) and _visible(value[index + 1])
        ):
            return "must not contain a zero-width joiner outside a character sequence"
    return None
