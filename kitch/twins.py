"""The one place that picks the native modules or their pure-Python twins.

Each Cython module at the top of the package has a twin beside it with the same API and the
same results (``kitch/_rtmp.pyx`` and ``kitch/_rtmp_py.py``, ``kitch/_mux.pyx`` and
``kitch/_mux_py.py``, ``kitch/_ingest.pyx`` and ``kitch/_ingest_py.py``); only the hot loops are
twinned. Import them from here::

    from kitch.twins import ingest, mux, rtmp

``KITCH_PUREPYTHON`` is read once, at import: ``1``, ``true``, ``yes`` or ``on`` (any case)
selects the twins; ``0``, ``false``, ``no``, ``off``, empty or unset selects the native build,
falling back to the twins when it is not built. Any other value raises
:class:`~kitch.config.ConfigError` at import. See docs/ARCHITECTURE.md ("Native code and its
twins").
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import TYPE_CHECKING

from kitch.config import parse_bool

ENV_VAR = "KITCH_PUREPYTHON"


def pure_python_requested(value: str | None) -> bool:
    """Whether a ``KITCH_PUREPYTHON`` value asks for the twins (unset or blank: no)."""
    if value is None or not value.strip():
        return False
    return parse_bool(ENV_VAR, value)


#: The environment asked for the pure-Python twins.
PURE_PYTHON: bool = pure_python_requested(os.environ.get(ENV_VAR))


def _load(native: str, twin: str) -> ModuleType:
    if not PURE_PYTHON:
        try:
            return importlib.import_module(native)
        except ImportError:  # not built: the twin has the same API, only slower
            pass
    return importlib.import_module(twin)


if TYPE_CHECKING:
    from kitch import _ingest as ingest
    from kitch import _mux as mux
    from kitch import _rtmp as rtmp
else:
    rtmp = _load("kitch._rtmp", "kitch._rtmp_py")
    mux = _load("kitch._mux", "kitch._mux_py")
    ingest = _load("kitch._ingest", "kitch._ingest_py")

#: The native modules are in use (False with KITCH_PUREPYTHON on or without a native build).
NATIVE: bool = (
    rtmp.__name__ == "kitch._rtmp"
    and mux.__name__ == "kitch._mux"
    and ingest.__name__ == "kitch._ingest"
)

__all__ = ["ENV_VAR", "NATIVE", "PURE_PYTHON", "ingest", "mux", "pure_python_requested", "rtmp"]
