"""The company row follows the configured identity, even when several workers start at once."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import migrate
from portal.company.models import Company
from portal.company.service import sync_company
from portal.db import make_engine, make_session_factory, transaction
from portal.settings import Settings
from tests.conftest import backends, fresh_database_url


def test_sync_creates_then_updates_the_row(db: Session, settings: Settings) -> None:
    first = sync_company(db, settings.company)
    renamed = sync_company(db, replace(settings.company, name="Renamed SAS"))
    assert renamed.id == first.id
    assert renamed.name == "Renamed SAS"
    assert db.scalar(select(func.count()).select_from(Company)) == 1


@pytest.mark.parametrize("backend", backends())
def test_workers_starting_together_on_a_new_database_share_one_row(
    backend: str, settings: Settings, tmp_path: Path
) -> None:
    url, drop = fresh_database_url(backend, tmp_path)
    engine = make_engine(url)
    try:
        migrate.upgrade(url, engine=engine)
        factory = make_session_factory(engine)
        start = threading.Barrier(4)
        ids: list[int] = []
        errors: list[BaseException] = []

        def start_worker() -> None:
            try:
                start.wait()
                with transaction(factory) as db:
                    ids.append(sync_company(db, settings.company).id)
            except BaseException as error:  # reported below, with the others
                errors.append(error)

        threads = [threading.Thread(target=start_worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        assert len(ids) == 4
        assert len(set(ids)) == 1
        with factory() as db:
            assert db.scalar(select(func.count()).select_from(Company)) == 1
    finally:
        engine.dispose()
        drop()
