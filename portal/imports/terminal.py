"""``portal import`` in a terminal: a progress bar on stderr, the preview printed, the import
applied unless it is a dry run; ``--watch DIR`` imports each file that lands in a folder."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from sqlalchemy.orm import Session, sessionmaker

from portal.i18n import gettext_
from portal.imports import service
from portal.imports.errors import ImportFileError
from portal.imports.mapping import FIELDS, Kind, missing_fields
from portal.imports.models import Import, ImportStatus
from portal.settings import Settings

COMMAND_LINE = service.Uploader(None, "command line")
BAR_WIDTH = 30
SHOWN_REJECTIONS = 20
# Exit statuses: applied (or previewed), the file could not be read, columns to map.
OK, FAILED, NEEDS_MAPPING = 0, 1, 2


class ProgressBar:
    """``label [#####.....]  45%  450,000 rows`` redrawn in place on a terminal; on a pipe,
    one line per tenth."""

    def __init__(self, label: str, out: IO[str] = sys.stderr) -> None:
        self.label, self.out = label, out
        self.tty = out.isatty()
        self.shown = -1

    def __call__(self, rows: int, fraction: float | None) -> None:
        if fraction is None:
            text = f"{self.label}  {rows:,} rows"
            tenth = rows // 100_000
        else:
            filled = round(fraction * BAR_WIDTH)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            text = f"{self.label} [{bar}] {fraction:4.0%}  {rows:,} rows"
            tenth = int(fraction * 10)
        if self.tty:
            self.out.write(f"\r{text}")
        elif tenth != self.shown:
            self.out.write(f"{text}\n")
        self.shown = tenth
        self.out.flush()

    def done(self) -> None:
        if self.tty and self.shown != -1:
            self.out.write("\n")
            self.out.flush()


def _reason(entry: dict[str, object]) -> str:
    message, values = service.describe(entry)
    return gettext_(message, **values)


def print_outcome(record: Import, out: IO[str] = sys.stdout) -> None:
    counts = record.counts
    parts = [f"{counts.get(name, 0):,} {name.replace('_', ' ')}" for name in sorted(counts)]
    print(
        f"{record.filename} ({record.kind}): {record.total_rows:,} rows; " + ", ".join(parts),
        file=out,
    )
    for title, entries in (
        ("flagged for review", record.warnings),
        ("rejected", record.rejections),
    ):
        for entry in entries[:SHOWN_REJECTIONS]:
            print(f"  line {entry['line']}: {title}: {_reason(entry)}", file=out)
        if len(entries) > SHOWN_REJECTIONS:
            print(f"  ... and {len(entries) - SHOWN_REJECTIONS} more {title}", file=out)


def import_file(
    factory: sessionmaker[Session],
    settings: Settings,
    company_id: int,
    path: Path,
    *,
    kind: Kind | None,
    dry_run: bool,
    settle_missing: bool,
    progress: bool = True,
) -> int:
    """Preview, then (unless ``dry_run``) apply one file; returns the exit status."""
    try:
        with path.open("rb") as source, factory() as db, db.begin():
            record = service.store_file(
                db,
                settings,
                company_id,
                path.name,
                source,
                COMMAND_LINE,
                kind=kind,
                settle_missing=settle_missing,
            )
            import_id = record.id
    except ImportFileError as error:
        print(f"{path}: {gettext_(error.message, **error.values)}", file=sys.stderr)
        return FAILED
    _run(
        lambda listener: service.analyse(factory, settings, import_id, listener, preview=dry_run),
        "Reading" if dry_run else "Checking the columns",
        progress and dry_run,
    )
    record = _reload(factory, import_id)
    if record.status is ImportStatus.FAILED:
        print(f"{path}: {_reason(record.error or {})}", file=sys.stderr)
        return FAILED
    if record.status is ImportStatus.NEEDS_MAPPING:
        kind_now = Kind(record.kind or Kind.INVOICES)
        columns = {int(i): f for i, f in record.columns.items()}
        wanted = ", ".join(gettext_(field.label) for field in missing_fields(kind_now, columns))
        print(
            f"{path}: some columns are not recognised as {kind_now.value} ({wanted}). Map them "
            f"once in the back office, {settings.base_url}/admin/imports/{import_id}: the next "
            "file of this shape is read with that mapping.",
            file=sys.stderr,
        )
        return NEEDS_MAPPING
    if dry_run:
        print_outcome(record)
        with factory() as db, db.begin():
            service.cancel(db, db.get_one(Import, import_id))
        print("Dry run: nothing was written.")
        return OK
    with factory() as db, db.begin():
        service.confirm(db, db.get_one(Import, import_id), None)
    _run(
        lambda listener: service.apply_import(factory, settings, import_id, listener),
        "Importing",
        progress,
    )
    record = _reload(factory, import_id)
    if record.status is not ImportStatus.DONE:
        print(f"{path}: {_reason(record.error or {})}", file=sys.stderr)
        return FAILED
    print("Imported:", end=" ")
    print_outcome(record)
    return OK


def _run(step: Callable[[service.Listener | None], object], label: str, progress: bool) -> None:
    bar = ProgressBar(label) if progress else None
    step(bar)
    if bar is not None:
        bar.done()


def _reload(factory: sessionmaker[Session], import_id: int) -> Import:
    with factory() as db:
        return db.get_one(Import, import_id)


def watch(
    factory: sessionmaker[Session],
    settings: Settings,
    company_id: int,
    directory: Path,
    *,
    kind: Kind | None,
    settle_missing: bool,
    interval: float,
    once: bool = False,
) -> int:
    """Import each file that appears in ``directory``, once its size stops changing; move
    it to ``imported/`` or ``failed/`` beside it."""
    done, failed = directory / "imported", directory / "failed"
    done.mkdir(parents=True, exist_ok=True)
    failed.mkdir(exist_ok=True)
    sizes: dict[Path, int] = {}
    print(f"Watching {directory} (Ctrl+C to stop)", file=sys.stderr)
    while True:
        for path in sorted(p for p in directory.iterdir() if p.is_file()):
            if path.name.startswith("."):
                continue
            size = path.stat().st_size
            if sizes.get(path) != size and not once:
                sizes[path] = size  # still being written: look again next time
                continue
            sizes.pop(path, None)
            status = import_file(
                factory,
                settings,
                company_id,
                path,
                kind=kind,
                dry_run=False,
                settle_missing=settle_missing,
                progress=False,
            )
            shutil.move(path, (done if status == OK else failed) / path.name)
        if once:
            return OK
        time.sleep(interval)


KINDS = tuple(kind.value for kind in FIELDS)
