"""Logging set-up: readable text by default, JSON lines on request; secrets never logged.

Log a stream key or token as ``fingerprint(value)``, never the value itself. As a second line of
defence anything shaped like a stream key is masked: in the message by a filter (so every handler
gets it), and in the whole formatted line -- ``extra`` fields and tracebacks too -- by the
formatter.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import time

_KEY_PATTERN = re.compile(r"live_[A-Za-z0-9_-]{16,}")
_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def fingerprint(secret: str | bytes) -> str:
    """A short, stable, non-reversible label for a secret: ``fp:`` + 10 hex digits of SHA-256."""
    data = secret.encode() if isinstance(secret, str) else secret
    return "fp:" + hashlib.sha256(data).hexdigest()[:10]


def redact(text: str) -> str:
    """Replace anything that looks like a stream key with its fingerprint."""
    return _KEY_PATTERN.sub(lambda m: fingerprint(m.group(0)), text)


class RedactingFilter(logging.Filter):
    """Masks stream-key-shaped text in the formatted message (args included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class RedactingFormatter(logging.Formatter):
    """Wraps a formatter and masks stream-key-shaped text in its whole output: the message,
    ``extra`` fields (JSON) and exception tracebacks, which the filter does not see.
    """

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, plus ``exc`` and any ``extra`` fields."""

    _STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(format: str = "text", level: str = "info") -> None:
    """Configure the root logger (stderr) once; uvicorn's loggers propagate to it.

    ``format`` is ``"text"`` (default, human-readable) or ``"json"`` (one object per line);
    ``level`` is a level name (default ``"info"``). Calling it again replaces the handler.
    """
    handler = logging.StreamHandler(sys.stderr)
    inner = JsonFormatter() if format == "json" else logging.Formatter(_TEXT_FORMAT)
    handler.setFormatter(RedactingFormatter(inner))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_kitch", False):
            root.removeHandler(old)
    handler._kitch = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
