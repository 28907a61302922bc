"""Migrations are the only way the schema is made; they must match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect

from portal import migrate
from portal.db import make_engine
from portal.schema_check import schema_differences
from tests.conftest import backends, fresh_database_url


def test_migrated_schema_matches_the_models(database: tuple[str, Engine]) -> None:
    _url, engine = database
    assert schema_differences(engine) == []


@pytest.mark.parametrize("backend", backends())
def test_downgrade_to_base_and_upgrade_again(backend: str, tmp_path: Path) -> None:
    url, drop = fresh_database_url(backend, tmp_path)
    engine = make_engine(url)
    try:
        migrate.upgrade(url, engine=engine)
        assert "invoices" in inspect(engine).get_table_names()
        migrate.downgrade(url, "base", engine=engine)
        assert "invoices" not in inspect(engine).get_table_names()
        migrate.upgrade(url, engine=engine)
        assert schema_differences(engine) == []
    finally:
        engine.dispose()
        drop()
