"""Invoices from a CSV file on PostgreSQL, set-based: the file's cells are loaded into a
temporary table (``staging``), read into typed rows in SQL where they are plain
(``plain``), else by ``rows.invoice_row`` in Python, then compared with what is stored in
a few joins (``decisions``), and written with ``INSERT … SELECT``.

Everything happens in one transaction (an import applies whole; a preview is rolled
back), run by the worker or ``portal import``, never by a web request. The outcome (counts,
rejections with their line numbers, warnings, sample) is the one the batch path of
``portal.imports.apply`` gives; that path still serves SQLite, spreadsheets and the other
kinds of rows. What stays in Python, through the services and their rules: rows that are not
plain, customers whose fields need checking (an email address, unusual spacing), changed
invoices (``update_invoice``) and invoices settled outside Relance
(``mark_settled_elsewhere``): few rows in a daily import.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.changes import FieldErrors
from portal.db import analyze, transaction
from portal.imports import decisions, fingerprints, plain, staging
from portal.imports.apply import KEPT, SAMPLE, Context, Outcome
from portal.imports.kinds import refused
from portal.imports.mapping import Kind
from portal.imports.readers import Cell, Table
from portal.imports.rows import InvoiceRow, Rejection, row_reader
from portal.invoices import batch as invoices
from portal.invoices.editing import InvoiceFields

TEMPORARY = (
    "import_cells",
    "import_days",
    "import_invoices",
    "import_customers",
    "import_plan",
    fingerprints.KNOWN,
    fingerprints.REST,
)
PAGE = 2_000
TEMP_BUFFERS = "512MB"  # the most this import's connection keeps of its temporary tables
FEW = 2_000  # lines left by a re-import: fewer are read in Python (the calendar costs more)
REFRESH_STATISTICS_AFTER = 10_000  # new invoices
PROGRESS_SECONDS = 1.0
TYPED_COLUMNS = (
    "line",
    "number",
    "customer_reference",
    "customer_name",
    "customer_email",
    "issue_date",
    "due_date",
    "currency",
    "amount_minor",
    "outstanding_minor",
)


def available(factory: sessionmaker[Session], kind: Kind, table: Table) -> bool:
    """Whether this import takes the set-based path: invoices, CSV, PostgreSQL."""
    if kind is not Kind.INVOICES or table.format != "csv":
        return False
    with factory() as db:
        return db.get_bind().dialect.name == "postgresql"


class Rejections:
    """Rejected rows counted, the first ``KEPT`` by line kept for the preview."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.kept: list[Rejection] = []

    def __call__(self, rejection: Rejection) -> None:
        self.outcome.counts["rejected"] += 1
        self.kept.append(rejection)
        if len(self.kept) > 4 * KEPT:
            self._trim()

    def _trim(self) -> None:
        self.kept.sort(key=lambda each: each.line)
        del self.kept[KEPT:]

    def finish(self) -> None:
        self._trim()
        self.outcome.rejections = [each.as_json() for each in self.kept]


def run(
    factory: sessionmaker[Session],
    ctx: Context,
    table: Table,
    columns: dict[int, str],
    *,
    on_batch: Callable[[Session, Outcome], None] | None = None,
) -> Outcome:
    outcome = Outcome()
    rejected = Rejections(outcome)
    progress = _Progress(factory, table, outcome, on_batch)
    with factory() as db:
        try:
            raw = _raw(db)
            _temp_buffers(db)
            db.execute(text(f"DROP TABLE IF EXISTS {', '.join(TEMPORARY)}"))
            db.execute(text("SET LOCAL work_mem = '128MB'"))
            # Compiling these statements (their estimated cost is high) takes longer than
            # running them.
            db.execute(text("SET LOCAL jit = off"))
            mapped = sorted(columns)
            loaded = staging.load(
                raw, table, mapped, table.max_rows or 10**9, progress.loading, rejected
            )
            outcome.rows = loaded + outcome.counts["rejected"]
            progress.now()
            _read(db, raw, ctx, table, columns, outcome, rejected)
            _apply(db, raw, ctx, outcome, rejected)
            db.execute(text(f"DROP TABLE IF EXISTS {', '.join(TEMPORARY)}"))
            if ctx.write:
                db.commit()
            else:
                db.rollback()  # a preview writes nothing
        except BaseException:
            db.rollback()
            raise
    if ctx.write and outcome.counts["new"] >= REFRESH_STATISTICS_AFTER:
        # Fresh statistics, or the planner of the next import (and of the pages) plans
        # for the tables as they were before this one.
        with transaction(factory) as db:
            analyze(db, "customers", "invoices")
    rejected.finish()
    progress.now()
    return outcome


def _temp_buffers(db: Session) -> None:
    """Room for the temporary tables in this connection's memory (each pass over them
    otherwise goes through the kernel's cache: two to three times slower). PostgreSQL
    refuses the setting once the connection has used a temporary table (a pooled connection
    that ran an import before): then the default."""
    try:
        with db.begin_nested():
            db.execute(text(f"SET LOCAL temp_buffers = '{TEMP_BUFFERS}'"))
    except DBAPIError:
        pass


def _raw(db: Session) -> psycopg.Connection[Any]:
    raw = db.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    return raw


class _Progress:
    """Progress told to ``on_batch`` (in its own short transaction) about once a second."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        table: Table,
        outcome: Outcome,
        on_batch: Callable[[Session, Outcome], None] | None,
    ) -> None:
        self.factory, self.table, self.outcome, self.on_batch = factory, table, outcome, on_batch
        self.sent = 0
        self.last = time.monotonic()

    def loading(self, rows: int, sent: int) -> None:
        if sent:
            self.sent = sent
            self.table.position = lambda: self.sent
        self.outcome.rows = rows
        if time.monotonic() - self.last >= PROGRESS_SECONDS:
            self.now()

    def now(self) -> None:
        self.last = time.monotonic()
        if self.on_batch is not None:
            with transaction(self.factory) as db:
                self.on_batch(db, self.outcome)


# --- typed rows -------------------------------------------------------------------------------


def _read(
    db: Session,
    raw: psycopg.Connection[Any],
    ctx: Context,
    table: Table,
    columns: dict[int, str],
    outcome: Outcome,
    rejected: Rejections,
) -> None:
    """``import_invoices`` and the preview's sample. Lines whose fingerprint their invoice
    keeps are counted unchanged and left out (``fingerprints``), unless the settling of
    missing invoices needs every number of the file or a number is in the file twice."""
    salt = fingerprints.salt(columns, ctx.currency)
    known = 0
    if not ctx.settle_missing:
        known = fingerprints.set_aside(db, ctx.company_id, columns, salt, SAMPLE)
    if known:
        trial = Rejections(Outcome())
        typed_rows(db, raw, ctx, table, columns, trial, salt, fingerprints.REST)
        if fingerprints.named_elsewhere(db, ctx.company_id):
            db.execute(text("DROP TABLE import_invoices"))
            known = 0
        else:
            outcome.counts["rejected"] += trial.outcome.counts["rejected"]
            rejected.kept.extend(trial.kept)
    if not known:
        typed_rows(db, raw, ctx, table, columns, rejected, salt)
    outcome.sample = _sample(db)
    if known:
        fingerprints.drop_known_lines(db)
        outcome.counts["unchanged"] += known


def typed_rows(
    db: Session,
    raw: psycopg.Connection[Any],
    ctx: Context,
    table: Table,
    columns: dict[int, str],
    rejected: Rejections,
    salt: int,
    source: str = staging.CELLS,
) -> None:
    """``import_invoices``: the rows of ``source`` as ``rows.invoice_row`` reads them (plain
    ones in SQL, the others in Python) with their fingerprints; unreadable rows rejected
    with their line and reason."""
    params = decisions.currency_params(ctx.currency) | {"digest_salt": salt}
    db.execute(text(f"DROP TABLE IF EXISTS {plain.DAYS_TABLE}"))
    few = (
        source != staging.CELLS
        and db.execute(
            text(f"SELECT count(*) <= {FEW} FROM {source}")  # noqa: S608
        ).scalar_one()
    )
    if few:  # the lines a re-import did not set aside, when few: no calendar, so no date is
        # plain and Python reads them, faster than building the calendar
        db.execute(text(f"CREATE TEMP TABLE {plain.DAYS_TABLE} (text text, day date)"))
    else:
        db.execute(text(plain.DAYS))
        db.execute(text(f"ANALYZE {plain.DAYS_TABLE}"))  # or the planner sorts the cells
    db.execute(text(decisions.typed_table(columns, source)), params)
    slow = db.execute(text("SELECT count(*) FROM import_invoices WHERE NOT plain")).scalar_one()
    if slow:
        _read_in_python(raw, ctx, table, columns, rejected, salt, source)
        db.execute(text("DELETE FROM import_invoices WHERE NOT plain"))
    db.execute(text("ANALYZE import_invoices"))


def _read_in_python(
    raw: psycopg.Connection[Any],
    ctx: Context,
    table: Table,
    columns: dict[int, str],
    rejected: Rejections,
    salt: int,
    source: str,
) -> None:
    width = len(table.header)
    mapped = sorted(columns)
    read = row_reader(Kind.INVOICES, columns, width, ctx.currency)
    names = ", ".join(f"c.{staging.column(i)}" for i in mapped)
    query = (
        f"SELECT c.line, {fingerprints.expression(columns, 'c')}, {names} "  # noqa: S608
        f"FROM {source} c WHERE c.line IN "
        "(SELECT line FROM import_invoices WHERE NOT plain) ORDER BY c.line"
    )
    copy_sql = f"COPY import_invoices ({', '.join(TYPED_COLUMNS)}, digest, plain) FROM STDIN"
    with raw.cursor(name="import_slow_rows") as cursor:
        cursor.execute(query.replace(":digest_salt", "%(digest_salt)s"), {"digest_salt": salt})
        while page := cursor.fetchmany(PAGE):
            parsed: list[tuple[InvoiceRow, Any]] = []
            for line, digest, *values in page:
                cells: list[Cell] = [None] * width
                for index, value in zip(mapped, values, strict=True):
                    cells[index] = value
                row = read(line, cells)
                if isinstance(row, Rejection):
                    rejected(row)
                else:
                    assert isinstance(row, InvoiceRow)
                    parsed.append((row, digest))
            with raw.cursor() as writer, writer.copy(copy_sql) as copy:
                for row, digest in parsed:
                    copy.write_row((*(getattr(row, n) for n in TYPED_COLUMNS), digest, True))


# --- comparing and writing --------------------------------------------------------------------


def _apply(
    db: Session,
    raw: psycopg.Connection[Any],
    ctx: Context,
    outcome: Outcome,
    rejected: Rejections,
) -> None:
    now = clock.now()
    base = {
        "company_id": ctx.company_id,
        "now": now,
        "actor": ctx.actor.value,
        "actor_id": ctx.actor_id,
        "source": ctx.source["source"],
        "import_id": ctx.source["import_id"],
    }
    decisions.new_customers(db, base)
    decisions.check_customers(db, raw, PAGE)
    outcome.counts["customers_new"] += decisions.customers_count(db)
    if ctx.write:
        decisions.create_customers(db, raw, ctx.actor, ctx.actor_id, ctx.source, base, PAGE)
    decisions.plan(db, base | decisions.currency_params(ctx.currency))
    found = decisions.counts(db)
    for reason in ("twice", "unknown", "customer"):
        outcome.counts["rejected"] += found.get(reason, 0)
    for rejection in decisions.rejections(db, KEPT):
        rejected.kept.append(rejection)
    _invalid(db, raw, rejected, found.get("invalid", 0))
    outcome.counts["new"] += decisions.count_decision(db, "new")
    outcome.counts["unchanged"] += found.get("unchanged", 0)
    flagged, warnings = decisions.same_amount_and_date(db, KEPT)
    outcome.counts["flagged"] += flagged
    outcome.warnings = warnings
    if ctx.write:
        decisions.create_invoices(db, base)
    changed = _changed(db, raw, ctx, outcome, rejected)
    query = "SELECT invoice_id FROM import_plan WHERE decision = 'settle' ORDER BY line"
    settle = [row[0] for row in _stream(raw, query)]
    outcome.counts["changed"] += len(settle)
    if ctx.write:
        _settle(db, ctx, settle)
    if ctx.settle_missing:
        missing = decisions.missing_open_invoices(db, ctx.company_id)
        outcome.counts["settled"] = len(missing)
        if ctx.write:
            _settle(db, ctx, missing)
    if ctx.write:
        fingerprints.stamp(db, changed)


def _sample(db: Session) -> list[dict[str, Any]]:
    names = [name for name in TYPED_COLUMNS if name != "line"]
    rows = db.execute(
        text(
            f"SELECT line, {', '.join(names)} FROM import_invoices "  # noqa: S608
            f"ORDER BY line LIMIT {SAMPLE}"
        )
    ).all()
    return [
        {
            "line": row[0],
            "values": {
                name: "" if value is None else str(value)
                for name, value in zip(names, row[1:], strict=True)
            },
        }
        for row in rows
    ]


def _stream(raw: psycopg.Connection[Any], query: str) -> Iterator[Sequence[Any]]:
    """The rows of ``query`` a page at a time, from a server-side cursor: the caller may
    run other statements between two pages."""
    with raw.cursor(name="import_stream") as cursor:
        cursor.execute(query)
        while page := cursor.fetchmany(PAGE):
            yield from page


def _fields(row: Sequence[Any]) -> InvoiceFields:
    number, customer_id, issue_date, due_date, currency, amount_minor = row
    return InvoiceFields(
        number=number,
        customer_id=customer_id or 0,
        issue_date=issue_date,
        due_date=due_date,
        currency=currency,
        amount_minor=amount_minor,
    )


_FIELDS = "number, customer_id, issue_date, due_date, currency, amount_minor"


def _invalid(db: Session, raw: psycopg.Connection[Any], rejected: Rejections, found: int) -> None:
    """New invoices SQL found wrong: the reason is ``validate_new``'s, in the current
    language. One that it accepts after all is created like the others."""
    if not found:
        return
    accepted: list[int] = []
    query = f"SELECT line, {_FIELDS} FROM import_plan WHERE decision = 'invalid' ORDER BY line"  # noqa: S608
    for line, *values in _stream(raw, query):
        try:
            invoices.validate_new(_fields(values))
        except FieldErrors as error:
            rejected(refused(line, error))
        else:
            accepted.append(line)
    if accepted:
        db.execute(
            text("UPDATE import_plan SET decision = 'new' WHERE line = ANY(:lines)"),
            {"lines": accepted},
        )


def _changed(
    db: Session, raw: psycopg.Connection[Any], ctx: Context, outcome: Outcome, rejected: Rejections
) -> list[int]:
    """Changed invoices, through ``update_invoice`` (one savepoint each: a refusal rejects
    just its row); in a preview, the same calls in the transaction that is rolled back.
    Returns the lines of those updated."""
    updated: list[int] = []
    query = (
        f"SELECT line, invoice_id, {_FIELDS} FROM import_plan "  # noqa: S608
        "WHERE decision = 'changed' ORDER BY line"
    )
    for line, invoice_id, *values in _stream(raw, query):
        fields = _fields(values)
        if not fields.customer_id:
            outcome.counts["changed"] += 1  # to a customer this preview would create
            continue
        try:
            with db.begin_nested():
                invoices.update_invoices(
                    db, [(invoice_id, fields)], actor=ctx.actor, actor_id=ctx.actor_id
                )
        except FieldErrors as error:
            rejected(refused(line, error))
            continue
        outcome.counts["changed"] += 1
        updated.append(line)
    return updated


def _settle(db: Session, ctx: Context, invoice_ids: list[int]) -> None:
    for start in range(0, len(invoice_ids), 500):
        invoices.settle_elsewhere(
            db, invoice_ids[start : start + 500], actor=ctx.actor, actor_id=ctx.actor_id
        )
