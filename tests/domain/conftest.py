"""Fixtures for domain tests that commit for real (workers in other processes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from portal import migrate
from portal.db import make_engine
from tests.conftest import backends, fresh_database_url


@pytest.fixture(params=backends())
def real_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A freshly migrated database of its own (not the shared one): for tests whose workers
    commit from other processes."""
    url, drop = fresh_database_url(request.param, tmp_path)
    engine = make_engine(url)
    migrate.upgrade(url, engine=engine)
    yield url, engine
    engine.dispose()
    drop()
