"""Reading an import file in batches, comparing each batch with what is stored, and (when
confirmed) writing it: one bounded transaction per batch of ``BATCH`` rows.

The same pass gives the preview (``write=False``: counts of new, changed, unchanged and
rejected rows, warnings, nothing written) and applies the import (``write=True``). Rows are
keyed by the company's own references (customer reference, invoice number), so running an
import again converges: what was written is unchanged the second time.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.db import analyze, transaction
from portal.i18n import N_
from portal.imports.mapping import Kind
from portal.imports.readers import Table
from portal.imports.rows import Rejection, Row, row_reader
from portal.timeline.models import Actor

BATCH = 2_000
KEPT = 1_000  # rejections and warnings kept for the preview; the counts are exact
SAMPLE = 10
# Batches after which PostgreSQL's statistics of the tables an import fills are refreshed:
# the tables grow tenfold between them, and lookups by reference keep their index plans.
REFRESH_STATISTICS_AFTER = frozenset({1, 5, 25, 100, 300, 1000})
WRITTEN_TABLES = ("customers", "contacts", "invoices", "timeline_events")


@dataclass
class Context:
    company_id: int
    currency: str
    actor: Actor
    actor_id: str | None
    import_id: int | None
    write: bool
    settle_missing: bool = False
    documents_dir: Path | None = None  # where invoice PDFs go (e-invoices)
    # When the import started: a row found stored since then came from an earlier line.
    started_at: dt.datetime = field(default_factory=clock.now)

    @property
    def remembers_keys(self) -> bool:
        """Whether the whole file's keys are kept in memory (a hash each): for a preview,
        which writes nothing, and for settling what the file does not list. Applying finds
        earlier lines in the database instead, so its memory stays flat."""
        return not self.write or self.settle_missing

    @property
    def source(self) -> dict[str, Any]:
        return {"source": "import", "import_id": self.import_id}


@dataclass
class Outcome:
    """What an import found (preview) or did (applied)."""

    counts: Counter[str] = field(default_factory=Counter)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    sample: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0

    def reject(self, rejection: Rejection) -> None:
        self.counts["rejected"] += 1
        if len(self.rejections) < KEPT:
            self.rejections.append(rejection.as_json())

    def warn(self, line: int, message: str, **values: Any) -> None:
        self.counts["flagged"] += 1
        if len(self.warnings) < KEPT:
            self.warnings.append({"line": line, "message": message, "values": values})


@dataclass
class FileState:
    """What earlier batches of the same file saw (bounded: hashes, not rows)."""

    keys: set[int] = field(default_factory=set)
    # Customers a preview would create, so later batches count their invoices right.
    planned_customers: set[str] = field(default_factory=set)
    amount_keys: dict[int, int] = field(default_factory=dict)
    identities: dict[str, str] = field(default_factory=dict)

    def batch_only(self) -> None:
        """Forget the previous batch: what it wrote is found in the database now."""
        self.keys.clear()
        self.amount_keys.clear()

    def first_time(self, key: str) -> bool:
        digest = hash(key)
        if digest in self.keys:
            return False
        self.keys.add(digest)
        return True


Handler = Callable[[Session, Context, list[Row], FileState, Outcome], None]


def handler_for(kind: Kind) -> Handler:
    from portal.imports import kinds

    return kinds.HANDLERS[kind]


def batches(
    table: Table, kind: Kind, columns: dict[int, str], currency: str, outcome: Outcome
) -> Iterator[list[Row]]:
    """Typed rows of the file in lists of BATCH; rejections go to ``outcome`` on the way."""
    read = row_reader(kind, columns, len(table.header), currency)
    parsed: Iterable[Row | Rejection] = (read(line, cells) for line, cells in table.rows)
    iterator = iter(parsed)
    while chunk := list(itertools.islice(iterator, BATCH)):
        rows: list[Row] = []
        for item in chunk:
            outcome.rows += 1
            if isinstance(item, Rejection):
                outcome.reject(item)
            else:
                rows.append(item)
                if len(outcome.sample) < SAMPLE:
                    outcome.sample.append(_sample(item))
        yield rows


def run(
    factory: sessionmaker[Session],
    ctx: Context,
    kind: Kind,
    table: Table,
    columns: dict[int, str],
    *,
    on_batch: Callable[[Session, Outcome], None] | None = None,
) -> Outcome:
    """Read the whole file, batch by batch, each in its own short transaction (invoices
    from CSV on PostgreSQL: set-based, in one transaction, see ``portal.imports.bulk``)."""
    from portal.imports import bulk

    if bulk.available(factory, kind, table):
        return bulk.run(factory, ctx, table, columns, on_batch=on_batch)
    outcome = Outcome()
    state = FileState()
    handle = handler_for(kind)
    for number, rows in enumerate(batches(table, kind, columns, ctx.currency, outcome), 1):
        if ctx.write:
            if kind is Kind.INVOICES and not ctx.remembers_keys:
                state.batch_only()
            with transaction(factory) as db:
                handle(db, ctx, rows, state, outcome)
                if on_batch is not None:
                    on_batch(db, outcome)
                if number in REFRESH_STATISTICS_AFTER:
                    analyze(db, *WRITTEN_TABLES)
            continue
        with factory() as db:
            try:
                handle(db, ctx, rows, state, outcome)
            finally:
                db.rollback()  # a preview writes nothing, whatever a handler did
        if on_batch is not None:
            with transaction(factory) as db:
                on_batch(db, outcome)
    if kind is Kind.INVOICES and ctx.settle_missing:
        from portal.imports.kinds import settle_missing

        settle_missing(factory, ctx, state, outcome)
    return outcome


def _sample(row: Row) -> dict[str, Any]:
    values = {
        name: ("" if value is None else str(value))
        for name, value in ((n, getattr(row, n)) for n in row.__slots__)
        if name != "line"
    }
    return {"line": row.line, "values": values}


ROW_TWICE = N_("%(key)s appears more than once in the file; only its first line is imported")
