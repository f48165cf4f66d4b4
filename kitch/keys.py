"""Stream keys: 192 random bits from ``secrets``, prefixed ``live_`` so they are easy to spot."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "live_"
KEY_BYTES = 24  # 192 bits


def generate_stream_key() -> str:
    """A new stream key, e.g. ``live_Xk3...`` (``live_`` + 32 URL-safe characters)."""
    return PREFIX + secrets.token_urlsafe(KEY_BYTES)


def hash_stream_key(key: str) -> str:
    """The SHA-256 hex digest stored and looked up for a key."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_stream_key(key: str) -> bool:
    """Cheap shape check before touching the database (any length up to 128 characters)."""
    return 0 < len(key) <= 128
