from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kitch.db import Database, open_database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A freshly migrated database file in the test's temporary directory."""
    database = await open_database(tmp_path / "kitch.db")
    yield database
    await database.close()
