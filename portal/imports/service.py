"""An import's life: the file is stored with an ``imports`` row (nothing else written), read
and compared for the preview, mapped if needed, confirmed, applied in batches, kept for
audit until the retention period ends. Each step is a function over a session factory, so
the web app's background task, the worker and the command line run the same code."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.db import transaction
from portal.i18n import N_
from portal.imports import apply, documents, mapping
from portal.imports.errors import ImportFileError
from portal.imports.mapping import Kind
from portal.imports.models import Import, ImportMapping, ImportStatus
from portal.imports.readers import Table, file_format, open_table
from portal.settings import Settings
from portal.timeline.models import Actor

log = logging.getLogger(__name__)
COPY_CHUNK = 1024 * 1024
EXTENSIONS = {"csv": ".csv", "xlsx": ".xlsx", "pdf": ".pdf", "xml": ".xml"}


class ImportNotAllowed(Exception):
    """The import is not in a state that allows this step (already confirmed, running...)."""


@dataclass(frozen=True)
class Uploader:
    user_id: int | None
    label: str  # shown in the history: an email address or "command line"

    @property
    def actor(self) -> tuple[Actor, str | None]:
        if self.user_id is None:
            return Actor.SYSTEM, "import"
        return Actor.USER, str(self.user_id)


def store_file(
    db: Session,
    settings: Settings,
    company_id: int,
    filename: str,
    source: IO[bytes],
    uploader: Uploader,
    *,
    kind: Kind | None = None,
    settle_missing: bool = False,
) -> Import:
    """Copy ``source`` into the imports directory (refusing it past the configured size)
    and add its ``imports`` row. Nothing else is read or written."""
    directory = settings.imports_dir / str(company_id)
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    head = source.read(8192)
    suffix = ".zip" if filename.lower().endswith(".zip") else EXTENSIONS[file_format(head)]
    stored = directory / f"{uuid.uuid4().hex}{suffix}"
    size = 0
    try:
        with stored.open("wb") as out:
            chunk = head
            while chunk:
                size += len(chunk)
                if size > settings.import_max_bytes:
                    raise ImportFileError(
                        N_("The file is larger than %(size)d MB, the most an import takes."),
                        size=settings.import_max_bytes // (1024 * 1024),
                    )
                digest.update(chunk)
                out.write(chunk)
                chunk = source.read(COPY_CHUNK)
    except BaseException:
        stored.unlink(missing_ok=True)
        raise
    detected = file_format(head)
    if detected in ("pdf", "xml") or (detected == "xlsx" and filename.lower().endswith(".zip")):
        kind = Kind.EINVOICES  # Factur-X PDFs, UBL or CII XML, or a zip of them
    record = Import(
        company_id=company_id,
        kind=kind.value if kind else None,
        status=ImportStatus.ANALYSING,
        filename=Path(filename).name[:255] or "import",
        stored_path=str(stored.relative_to(settings.imports_dir)),
        file_size=size,
        file_sha256=digest.hexdigest(),
        file_format=file_format(head),
        settle_missing=settle_missing,
        created_by_user_id=uploader.user_id,
        created_by=uploader.label[:254],
        created_at=clock.now(),
        counts={},
        sample=[],
        rejections=[],
        warnings=[],
        columns={},
    )
    db.add(record)
    db.flush()
    return record


def stored_file(settings: Settings, record: Import) -> Path | None:
    if record.stored_path is None:
        return None
    path = settings.imports_dir / record.stored_path
    return path if path.is_file() else None


# --- analysis (the preview) -------------------------------------------------------------------


# Told after each batch: rows handled so far, and the fraction done when it is known.
Listener = Callable[[int, float | None], None]


def _progress(
    import_id: int, listener: Listener | None, fraction: Callable[[int], float | None]
) -> Callable[[Session, apply.Outcome], None]:
    def on_batch(db: Session, outcome: apply.Outcome) -> None:
        db.execute(update(Import).where(Import.id == import_id).values(processed_rows=outcome.rows))
        if listener is not None:
            listener(outcome.rows, fraction(outcome.rows))

    return on_batch


def _columns(record: Import) -> dict[int, str]:
    return {int(index): name for index, name in record.columns.items()}


def analyse(
    factory: sessionmaker[Session],
    settings: Settings,
    import_id: int,
    listener: Listener | None = None,
    *,
    preview: bool = True,
) -> None:
    """Read the file and compare it with what is stored: the preview. Writes only the
    import's own row (its mapping, counts, sample, rejections, progress)."""
    with transaction(factory) as db:
        record = db.get_one(Import, import_id)
        path = stored_file(settings, record)
        company_id, requested = record.company_id, record.kind
        settle = record.settle_missing
        chosen = _columns(record)
        size = record.file_size
    if requested == Kind.EINVOICES:
        _analyse_documents(factory, settings, import_id, path, preview=preview)
        return
    try:
        if path is None:
            raise ImportFileError(N_("The original file is no longer kept."))
        with open_table(path, settings.import_max_rows) as table:
            signature = mapping.signature(table.header)
            with factory() as db:
                saved = _saved_mapping(db, company_id, signature)
            kind = Kind(requested or (saved.kind if saved else mapping.guess_kind(table.header)))
            columns = chosen or _known_columns(kind, table.header, saved)
            missing = mapping.missing_fields(kind, columns)
            with transaction(factory) as db:
                record = db.get_one(Import, import_id)
                record.kind, record.header_signature = kind.value, signature
                record.columns = {str(index): name for index, name in columns.items()}
                record.sample = [{"line": 1, "header": table.header}]
                if missing:
                    record.status = ImportStatus.NEEDS_MAPPING
                    return
                if not preview:  # the command line applies at once: the mapping is enough
                    record.status = ImportStatus.READY
                    return
            ctx = apply.Context(
                company_id,
                settings.company.currency,
                Actor.SYSTEM,
                None,
                import_id,
                write=False,
                settle_missing=settle,
            )
            progress = _progress(import_id, listener, _read_so_far(table, size))
            outcome = apply.run(factory, ctx, kind, table, columns, on_batch=progress)
    except ImportFileError as error:
        _fail(factory, import_id, error)
        return
    with transaction(factory) as db:
        record = db.get_one(Import, import_id)
        record.status = ImportStatus.READY
        record.total_rows = record.processed_rows = outcome.rows
        record.counts = {k: v for k, v in outcome.counts.items() if v}
        record.sample = [{"line": 1, "header": record.sample[0]["header"]}, *outcome.sample]
        record.rejections, record.warnings = outcome.rejections, outcome.warnings


def _analyse_documents(
    factory: sessionmaker[Session],
    settings: Settings,
    import_id: int,
    path: Path | None,
    *,
    preview: bool,
) -> None:
    with transaction(factory) as db:
        record = db.get_one(Import, import_id)
        filename, company_id = record.filename, record.company_id
        if not preview:
            record.status = ImportStatus.READY
            return
    if path is None:
        _fail(factory, import_id, ImportFileError(N_("The original file is no longer kept.")))
        return
    ctx = apply.Context(
        company_id,
        settings.company.currency,
        Actor.SYSTEM,
        None,
        import_id,
        write=False,
        documents_dir=settings.documents_dir,
    )
    outcome = documents.run(factory, ctx, path, filename, settings.import_max_bytes)
    _finish(factory, import_id, outcome, ImportStatus.READY)


def _finish(
    factory: sessionmaker[Session], import_id: int, outcome: apply.Outcome, status: ImportStatus
) -> None:
    with transaction(factory) as db:
        record = db.get_one(Import, import_id)
        record.status = status
        record.total_rows = record.processed_rows = outcome.rows
        record.counts = {k: v for k, v in outcome.counts.items() if v}
        header = record.sample[0]["header"] if record.sample else []
        record.sample = [{"line": 1, "header": header}, *outcome.sample]
        record.rejections, record.warnings = outcome.rejections, outcome.warnings
        if status is ImportStatus.DONE:
            record.finished_at = clock.now()


def _read_so_far(table: Table, size: int, total: int = 0) -> Callable[[int], float | None]:
    """The fraction done: rows of a known total, else bytes of the file read."""

    def fraction(rows: int) -> float | None:
        if total:
            return min(rows / total, 1.0)
        position = table.position  # looked up each time: a bulk load may replace it
        return min(position() / size, 1.0) if position and size else None

    return fraction


def _saved_mapping(db: Session, company_id: int, signature: str) -> ImportMapping | None:
    return db.scalar(
        select(ImportMapping).where(
            ImportMapping.company_id == company_id, ImportMapping.signature == signature
        )
    )


def _known_columns(kind: Kind, header: list[str], saved: ImportMapping | None) -> dict[int, str]:
    columns = mapping.recognise(kind, header)
    if saved is not None and saved.kind == kind.value:
        chosen = mapping.from_saved(header, saved.columns, kind)
        columns = {i: f for i, f in columns.items() if f not in chosen.values()} | chosen
    return columns


def _fail(factory: sessionmaker[Session], import_id: int, error: ImportFileError) -> None:
    with transaction(factory) as db:
        record = db.get_one(Import, import_id)
        record.status = ImportStatus.FAILED
        record.error = {"message": error.message, "values": error.values}
        record.finished_at = clock.now()


def save_mapping(
    db: Session,
    record: Import,
    kind: Kind,
    header: list[str],
    columns: dict[int, str],
    user_id: int | None,
) -> None:
    """Keep the credit manager's mapping for files of this shape; the import is analysed
    again with it."""
    if record.status not in (ImportStatus.NEEDS_MAPPING, ImportStatus.READY):
        raise ImportNotAllowed(record.status)
    signature = record.header_signature or mapping.signature(header)
    saved = _saved_mapping(db, record.company_id, signature)
    if saved is None:
        saved = ImportMapping(company_id=record.company_id, signature=signature, uses=0)
        db.add(saved)
    saved.kind = kind.value
    saved.columns = mapping.to_saved(header, columns)
    saved.updated_by_user_id = user_id
    saved.updated_at = clock.now()
    record.kind = kind.value
    record.columns = {str(index): name for index, name in columns.items()}
    record.status = ImportStatus.ANALYSING
    record.counts, record.rejections, record.warnings = {}, [], []
    record.processed_rows = 0


# --- confirming and applying ------------------------------------------------------------------


def confirm(db: Session, record: Import, user_id: int | None) -> None:
    if record.status is not ImportStatus.READY:
        raise ImportNotAllowed(record.status)
    record.status = ImportStatus.QUEUED
    record.confirmed_by_user_id = user_id
    record.confirmed_at = clock.now()
    record.processed_rows = 0


def cancel(db: Session, record: Import) -> None:
    if record.status not in (ImportStatus.READY, ImportStatus.NEEDS_MAPPING):
        raise ImportNotAllowed(record.status)
    record.status = ImportStatus.CANCELLED
    record.finished_at = clock.now()


def claim(factory: sessionmaker[Session], import_id: int) -> bool:
    """Take a confirmed import to apply it; False if another thread or worker has it."""
    with transaction(factory) as db:
        taken = db.execute(
            update(Import)
            .where(Import.id == import_id, Import.status == ImportStatus.QUEUED)
            .values(status=ImportStatus.APPLYING)
        )
        return bool(taken.rowcount)  # type: ignore[attr-defined]


def apply_import(
    factory: sessionmaker[Session],
    settings: Settings,
    import_id: int,
    listener: Listener | None = None,
) -> bool:
    """Apply a confirmed import in batches of bounded transactions; False if not claimed.
    Stopped half-way (a crash, an error), it can be run again: it converges."""
    if not claim(factory, import_id):
        return False
    with factory() as db:
        record = db.get_one(Import, import_id)
        path = stored_file(settings, record)
        kind, columns = Kind(record.kind or ""), _columns(record)
        actor = (
            (Actor.USER, str(record.confirmed_by_user_id))
            if record.confirmed_by_user_id
            else (Actor.SYSTEM, "import")
        )
        company_id, settle = record.company_id, record.settle_missing
        total, size, filename = record.total_rows, record.file_size, record.filename
    ctx = apply.Context(
        company_id,
        settings.company.currency,
        actor[0],
        actor[1],
        import_id,
        write=True,
        settle_missing=settle,
        documents_dir=settings.documents_dir,
    )
    try:
        if path is None:
            raise ImportFileError(N_("The original file is no longer kept."))
        if kind is Kind.EINVOICES:
            outcome = documents.run(factory, ctx, path, filename, settings.import_max_bytes)
        else:
            with open_table(path, settings.import_max_rows) as table:
                progress = _progress(import_id, listener, _read_so_far(table, size, total))
                outcome = apply.run(factory, ctx, kind, table, columns, on_batch=progress)
    except ImportFileError as error:
        _fail(factory, import_id, error)
        return True
    except Exception:
        log.exception("import %s stopped", import_id)
        _fail(
            factory,
            import_id,
            ImportFileError(
                N_("The import stopped on an error: run it again, it carries on where it stopped.")
            ),
        )
        return True
    with transaction(factory) as db:
        record = db.get_one(Import, import_id)
        record.status = ImportStatus.DONE
        record.finished_at = clock.now()
        record.total_rows = record.processed_rows = outcome.rows
        record.counts = {k: v for k, v in outcome.counts.items() if v}
        record.rejections, record.warnings = outcome.rejections, outcome.warnings
    return True


def retry(db: Session, record: Import) -> None:
    """A failed import applied again (it converges), or analysed again."""
    if record.status is not ImportStatus.FAILED:
        raise ImportNotAllowed(record.status)
    record.status = ImportStatus.QUEUED if record.confirmed_at else ImportStatus.ANALYSING
    record.error = None
    record.finished_at = None


def queued(db: Session, limit: int = 10) -> list[int]:
    """Imports waiting for the worker: confirmed but not taken, or analyses not finished."""
    rows = db.scalars(
        select(Import.id)
        .where(Import.status == ImportStatus.QUEUED)
        .order_by(Import.id)
        .limit(limit)
    )
    return list(rows)


# --- history and retention --------------------------------------------------------------------


def history(db: Session, company_id: int, limit: int = 100) -> list[Import]:
    query = (
        select(Import)
        .where(Import.company_id == company_id)
        .order_by(Import.created_at.desc(), Import.id.desc())
        .limit(limit)
    )
    return list(db.scalars(query))


def get(db: Session, company_id: int, import_id: int) -> Import | None:
    record = db.get(Import, import_id)
    return record if record is not None and record.company_id == company_id else None


def purge(db: Session, settings: Settings, now: dt.datetime | None = None) -> int:
    """Remove the original files kept longer than PORTAL_IMPORT_RETENTION_DAYS; the history
    rows stay. Returns how many files were removed."""
    cutoff = (now or clock.now()) - dt.timedelta(days=settings.import_retention_days)
    old = db.scalars(
        select(Import).where(Import.stored_path.is_not(None), Import.created_at < cutoff)
    ).all()
    for record in old:
        if record.stored_path:
            (settings.imports_dir / record.stored_path).unlink(missing_ok=True)
        record.stored_path = None
        record.purged_at = clock.now()
    return len(old)


def describe(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return str(message.get("message", "")), dict(message.get("values") or {})
