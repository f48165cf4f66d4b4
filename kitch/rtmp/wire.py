"""The one place that picks the RTMP wire implementation.

The native module :mod:`kitch._rtmp` is used by default. ``KITCH_PUREPYTHON=1`` in the
environment selects the pure-Python twin :mod:`kitch._rtmp_py` (same API, same results), which
is also the fallback when the native build is missing. ``NATIVE`` says which one is in use.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

PURE_PYTHON: bool = os.environ.get("KITCH_PUREPYTHON", "") not in ("", "0")


def _load() -> tuple[object, bool]:
    if not PURE_PYTHON:
        try:
            return importlib.import_module("kitch._rtmp"), True
        except ImportError:  # pragma: no cover - only without a native build
            pass
    return importlib.import_module("kitch._rtmp_py"), False


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_DEPTH",
    "FMS_KEY",
    "FP_KEY",
    "HANDSHAKE_SIZE",
    "MAX_CHUNK_SIZE",
    "NATIVE",
    "PURE_PYTHON",
    "ChunkReader",
    "ChunkWriter",
    "RtmpError",
    "amf0_decode_all",
    "amf0_encode",
    "digest_offset",
    "handshake_reply",
]

if TYPE_CHECKING:
    from kitch._rtmp import (
        DEFAULT_CHUNK_SIZE,
        DEFAULT_MAX_DEPTH,
        FMS_KEY,
        FP_KEY,
        HANDSHAKE_SIZE,
        MAX_CHUNK_SIZE,
        ChunkReader,
        ChunkWriter,
        RtmpError,
        amf0_decode_all,
        amf0_encode,
        digest_offset,
        handshake_reply,
    )

    NATIVE: bool
else:
    _module, NATIVE = _load()
    _FLAGS = ("NATIVE", "PURE_PYTHON")
    globals().update({n: getattr(_module, n) for n in __all__ if n not in _FLAGS})
