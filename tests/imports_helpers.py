"""Running imports in tests the way the app does: store, analyse, confirm, apply."""

from __future__ import annotations

import io

from sqlalchemy.orm import Session, sessionmaker

from portal.imports import service
from portal.imports.mapping import Kind
from portal.imports.models import Import
from portal.settings import Settings

CLI = service.Uploader(None, "command line")


def preview(
    factory: sessionmaker[Session],
    settings: Settings,
    company_id: int,
    data: bytes,
    *,
    filename: str = "export.csv",
    kind: Kind | None = None,
    settle_missing: bool = False,
) -> Import:
    with factory() as db, db.begin():
        record = service.store_file(
            db,
            settings,
            company_id,
            filename,
            io.BytesIO(data),
            CLI,
            kind=kind,
            settle_missing=settle_missing,
        )
        import_id = record.id
    service.analyse(factory, settings, import_id)
    return reload(factory, import_id)


def confirm_and_apply(factory: sessionmaker[Session], settings: Settings, import_id: int) -> Import:
    with factory() as db, db.begin():
        service.confirm(db, db.get_one(Import, import_id), None)
    assert service.apply_import(factory, settings, import_id)
    return reload(factory, import_id)


def run_import(
    factory: sessionmaker[Session], settings: Settings, company_id: int, data: bytes, **kw: object
) -> Import:
    record = preview(factory, settings, company_id, data, **kw)  # type: ignore[arg-type]
    return confirm_and_apply(factory, settings, record.id)


def reload(factory: sessionmaker[Session], import_id: int) -> Import:
    with factory() as db:
        return db.get_one(Import, import_id)
