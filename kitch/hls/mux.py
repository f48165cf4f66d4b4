"""The one place that picks the muxer core: the Cython build (:mod:`kitch._mux`) or its
pure-Python twin (:mod:`kitch._mux_py`) when ``KITCH_PUREPYTHON=1`` or the build is missing."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kitch import _mux as mux
else:
    if os.environ.get("KITCH_PUREPYTHON") == "1":
        from kitch import _mux_py as mux
    else:
        try:
            from kitch import _mux as mux
        except ImportError:  # not built: same API, slower
            from kitch import _mux_py as mux

NATIVE: bool = mux.__name__ == "kitch._mux"

__all__ = ["NATIVE", "mux"]
