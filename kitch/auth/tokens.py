"""Access tokens (JWT, HS256 pinned) and opaque refresh tokens; the signing secret.

Access token claims: ``sub`` (user id as a string), ``iat``, ``exp``, ``jti``, ``ver`` (the
user's token_version: bumping it in the database invalidates every access token at once) and
``sid`` (the sign-in session: revoking the session invalidates its access tokens at once).
Refresh tokens are random strings; only their SHA-256 is stored. A refresh token's successor is
derived from it with the secret (HMAC), so exchanging one token twice gives the same successor.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "ver", "sid"]
SECRET_FILE = "secret"


class InvalidToken(Exception):
    """The token is missing, malformed, tampered with, expired or of the wrong kind."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    version: int
    session: str
    jti: str
    expires_at: int


def load_or_create_secret(data_dir: Path, configured: str | None) -> bytes:
    """The configured secret, else ``data_dir/secret`` (made once, mode 0600, in a data dir
    created owner-only). The file appears complete or not at all, so a crash while making it
    cannot leave an empty secret that refuses every later start.
    """
    if configured is not None:
        return configured.encode("utf-8")
    path = data_dir / SECRET_FILE
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        secret = secrets.token_urlsafe(48)
        partial = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, (secret + "\n").encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.link(partial, path)  # atomic, and fails if another process made one meanwhile
        except FileExistsError:
            pass
        finally:
            partial.unlink(missing_ok=True)
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < 32:
        raise RuntimeError(f"{path} holds a secret shorter than 32 characters")
    return secret.encode("ascii")


def issue_access_token(
    secret: bytes, user_id: int, version: int, session: str, ttl: int, now: int
) -> str:
    """A signed access token for ``user_id``'s ``session``, valid ``ttl`` seconds from ``now``."""
    claims = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
        "ver": version,
        "sid": session,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(secret: bytes, token: str) -> AccessClaims:
    """Verify signature (HS256 only), expiry and required claims; raise InvalidToken otherwise."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": REQUIRED_CLAIMS},
        )
        sub, ver, jti, exp = claims["sub"], claims["ver"], claims["jti"], claims["exp"]
        sid = claims["sid"]
        if (
            not isinstance(sub, str)
            or not (sub.isascii() and sub.isdigit())
            or not isinstance(ver, int)
        ):
            raise InvalidToken("malformed claims")
        if not isinstance(jti, str) or not isinstance(exp, int) or not isinstance(sid, str):
            raise InvalidToken("malformed claims")
        return AccessClaims(int(sub), ver, sid, jti, exp)
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc


def new_refresh_token() -> str:
    """An opaque refresh token (256 random bits)."""
    return "rt_" + secrets.token_urlsafe(32)


def successor_refresh_token(secret: bytes, token: str) -> str:
    """The token that replaces ``token`` when it is exchanged (the same every time)."""
    mac = hmac.new(
        secret,
        b"kitch refresh successor\0" + token.encode("utf-8", "surrogatepass"),
        hashlib.sha256,
    )
    return "rt_" + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
