from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kitch.db import Database, open_database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A freshly migrated database: an SQLite file in the test's directory, or a new
    PostgreSQL database (every test here runs on both)."""
    database = await open_database(database_url)
    yield database
    await database.close()
