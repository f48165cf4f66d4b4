"""`kitch serve` start-up details, on a real process."""

from __future__ import annotations

import stat

import pytest

from tests.support.server import KitchServer

pytestmark = pytest.mark.slow


def test_data_dir_and_database_are_owner_only(server: KitchServer) -> None:
    mode = stat.S_IMODE(server.data_dir.stat().st_mode)
    assert mode == 0o700, oct(mode)
    db_mode = stat.S_IMODE((server.data_dir / "kitch.db").stat().st_mode)
    assert db_mode == 0o600, oct(db_mode)
