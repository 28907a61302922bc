"""Benchmark of the import: N invoices of N/5 customers from a CSV export, against COPY of
the same file into an unindexed table (the floor), on PostgreSQL; then the same import run
again (it must write nothing); then 2N invoices for the peak memory; and SQLite's figure.

    .venv/bin/python bench/imports.py                        # 1,000,000 invoices (+ 2,000,000)
    .venv/bin/python bench/imports.py --invoices 100000 --no-double

Each import runs ``portal.imports.terminal.import_file`` (what ``portal import FILE`` does:
store the file, read its columns, apply it: set-based on PostgreSQL, see
``portal.imports.bulk``; in batches of bounded transactions on SQLite) in a child process, so
that its peak resident memory is its own. Prints the figures and the ratios;
asserts only that the second import changed nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, make_url, select, text  # noqa: E402

from portal import migrate  # noqa: E402
from portal.imports.export import ExportedInvoice, write_invoices_csv  # noqa: E402
from portal.settings import load_settings  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
START = dt.date(2026, 1, 1)
FLOOR_TABLE = (
    "CREATE TABLE copy_floor (customer_reference text, customer_name text, number text, "
    "issue_date text, due_date text, amount text, currency text)"
)


def invoices(count: int, customers: int, seed: int = 11) -> Iterator[ExportedInvoice]:
    rng = random.Random(seed)
    for n in range(1, count + 1):
        customer = rng.randrange(1, customers + 1)
        issued = START + dt.timedelta(days=rng.randrange(0, 300))
        yield ExportedInvoice(
            customer_reference=f"C{customer:07d}",
            customer_name=f"Société {customer} SARL",
            number=f"F{n:09d}",
            issue_date=issued,
            due_date=issued + dt.timedelta(days=rng.choice((30, 45, 60))),
            amount_minor=rng.randrange(1_000, 5_000_000),
        )


def write_file(path: Path, count: int) -> float:
    with path.open("w", encoding="utf-8", newline="") as out:
        write_invoices_csv(out, invoices(count, max(count // 5, 1)))
    return path.stat().st_size / 1e6


def _settings(url: str, workdir: Path) -> Any:
    return load_settings(
        {
            "PORTAL_ENVIRONMENT": "development",
            "PORTAL_DATABASE_URL": url,
            "PORTAL_IMPORTS_DIR": str(workdir / "imports"),
            "PORTAL_DOCUMENTS_DIR": str(workdir / "documents"),
            "PORTAL_IMPORT_MAX_BYTES": str(2 * 1024**3),
            "PORTAL_IMPORT_MAX_ROWS": "5000000",
        }
    )


# --- phases (child processes) -----------------------------------------------------------------


def phase_import(url: str, workdir: Path, file: Path) -> dict[str, Any]:
    from portal import i18n
    from portal.company.service import sync_company
    from portal.db import make_engine, make_session_factory, transaction
    from portal.imports import terminal
    from portal.imports.mapping import Kind
    from portal.imports.models import Import

    i18n.current_locale.set("en")
    settings = _settings(url, workdir)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with transaction(factory) as db:
        company_id = sync_company(db, settings.company).id
    started = time.perf_counter()
    status = terminal.import_file(
        factory,
        settings,
        company_id,
        file,
        kind=Kind.INVOICES,
        dry_run=False,
        settle_missing=False,
        progress=False,
    )
    seconds = time.perf_counter() - started
    with factory() as db:
        last = db.scalars(select(Import).order_by(Import.id.desc())).first()
        counts = dict(last.counts) if last else {}
    engine.dispose()
    return {"status": status, "seconds": seconds, "counts": counts, "rss_mib": _peak_rss_mib()}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(args: list[str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"child {args[:2]} failed:\n{result.stdout}\n{result.stderr}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _run_import(url: str, workdir: Path, file: Path) -> dict[str, Any]:
    return _child(["--phase", "import", "--url", url, "--workdir", str(workdir), str(file)])


# --- databases --------------------------------------------------------------------------------


def _database(backend: str, workdir: Path, pg_url: str) -> tuple[str, Any]:
    if backend == "sqlite":
        return f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:6]}.db'}", lambda: None
    url = make_url(pg_url)
    name = f"relance_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def copy_floor(url: str, file: Path) -> float:
    """COPY of the file into an unindexed table: the least PostgreSQL can do with it."""
    import psycopg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(FLOOR_TABLE)
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(
                "COPY copy_floor FROM STDIN WITH (FORMAT csv, DELIMITER ';', HEADER true)"
            ) as copy,
            file.open("rb") as source,
        ):
            while chunk := source.read(1024 * 1024):
                copy.write(chunk)
        seconds = time.perf_counter() - started
        connection.execute("DROP TABLE copy_floor")
    return seconds


SHAPED = """
CREATE TABLE floor_companies (id bigint PRIMARY KEY);
INSERT INTO floor_companies VALUES (1);
CREATE TABLE floor_customers (id bigint PRIMARY KEY);
INSERT INTO floor_customers SELECT generate_series(1, %(customers)s);
CREATE TABLE floor_invoices (LIKE invoices INCLUDING CONSTRAINTS INCLUDING INDEXES);
ALTER TABLE floor_invoices
  ADD FOREIGN KEY (company_id) REFERENCES floor_companies (id),
  ADD FOREIGN KEY (customer_id) REFERENCES floor_customers (id);
CREATE TABLE floor_events (LIKE timeline_events INCLUDING CONSTRAINTS INCLUDING INDEXES);
ALTER TABLE floor_events
  ADD FOREIGN KEY (company_id) REFERENCES floor_companies (id),
  ADD FOREIGN KEY (customer_id) REFERENCES floor_customers (id);
"""
INVOICE_COLUMNS = (
    "id, company_id, customer_id, number, issue_date, due_date, currency, amount_minor, "
    "paid_minor, status, created_at"
)
EVENT_COLUMNS = (
    "id, company_id, customer_id, occurred_at, actor, actor_id, action, subject_type, "
    "subject_id, details"
)


def _typed_files(workdir: Path, count: int) -> tuple[Path, Path]:
    """The file's invoices as typed rows (COPY text format), and one ``invoice.created``
    event per invoice as the import writes it: what the shaped floors load."""
    rows, events = workdir / f"typed-{count}.tsv", workdir / f"events-{count}.tsv"
    if rows.exists():
        return rows, events
    now = "2026-12-03 12:00:00+00"
    with rows.open("w") as out_rows, events.open("w") as out_events:
        for n, each in enumerate(invoices(count, max(count // 5, 1)), start=1):
            customer = int(each.customer_reference[1:])
            issued, due = each.issue_date.isoformat(), each.due_date.isoformat()
            out_rows.write(
                f"{n}\t1\t{customer}\t{each.number}\t{issued}\t{due}\tEUR\t"
                f"{each.amount_minor}\t0\topen\t{now}\n"
            )
            details = json.dumps(
                {
                    "number": each.number,
                    "amount_minor": each.amount_minor,
                    "currency": "EUR",
                    "issue_date": issued,
                    "due_date": due,
                    "source": "import",
                    "import_id": 1,
                }
            )
            out_events.write(
                f"{n}\t1\t{customer}\t{now}\tsystem\timport\tinvoice.created\tinvoice\t"
                f"{n}\t{details}\n"
            )
    return rows, events


def shaped_floors(url: str, workdir: Path, count: int) -> tuple[float, float]:
    """COPY of the same invoices, typed, into a table shaped like ``invoices`` (its three
    indexes, its checks, its two foreign keys checked row by row), then of one event per
    invoice into one shaped like ``timeline_events``: what PostgreSQL itself costs to
    store these rows the way the portal keeps them, with no reading, typing or comparing."""
    import psycopg

    rows, events = _typed_files(workdir, count)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    seconds = []
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(SHAPED % {"customers": max(count // 5, 1)})
        for table, columns, path in (
            ("floor_invoices", INVOICE_COLUMNS, rows),
            ("floor_events", EVENT_COLUMNS, events),
        ):
            started = time.perf_counter()
            with (
                connection.cursor() as cursor,
                cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
                path.open("rb") as source,
            ):
                while chunk := source.read(1024 * 1024):
                    copy.write(chunk)
            seconds.append(time.perf_counter() - started)
        connection.execute(
            "DROP TABLE floor_events, floor_invoices, floor_customers, floor_companies"
        )
    return seconds[0], seconds[1]


def _totals(url: str) -> tuple[int, int, int]:
    engine = create_engine(url)
    with engine.connect() as connection:
        values = tuple(
            int(connection.execute(select(func.count()).select_from(text(table))).scalar() or 0)
            for table in ("customers", "invoices", "timeline_events")
        )
    engine.dispose()
    return values  # type: ignore[return-value]


def measure(backend: str, count: int, workdir: Path, pg_url: str, again: bool) -> dict[str, Any]:
    file = workdir / f"export-{count}.csv"
    if not file.exists():
        size = write_file(file, count)
        print(f"{file.name}: {count:,} invoices, {size:.0f} MB", flush=True)
    url, drop = _database(backend, workdir, pg_url)
    try:
        migrate.upgrade(url)
        result: dict[str, Any] = {"invoices": count}
        if backend == "postgresql":
            result["copy"] = copy_floor(url, file)
            if again:
                result["shaped"] = shaped_floors(url, workdir, count)
        result["first"] = _run_import(url, workdir, file)
        result["totals"] = _totals(url)
        if again:
            result["second"] = _run_import(url, workdir, file)
            result["totals_after"] = _totals(url)
    finally:
        drop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--invoices", type=int, default=1_000_000, help="PostgreSQL's size")
    parser.add_argument("--sqlite-invoices", type=int, default=100_000)
    parser.add_argument("--no-double", action="store_true", help="skip the 2x memory run")
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("file", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "import":
        print(json.dumps(phase_import(args.url, Path(args.workdir), Path(args.file))))
        return
    import os

    pg_url = os.environ.get("PORTAL_TEST_DATABASE_URL", DEFAULT_PG)
    backends = args.backends.split(",")
    with tempfile.TemporaryDirectory(prefix="relance-bench-imports-") as tmp:
        workdir = Path(tmp)
        if "postgresql" in backends:
            run = measure("postgresql", args.invoices, workdir, pg_url, again=True)
            report_postgresql(run)
            if not args.no_double:
                double = measure("postgresql", 2 * args.invoices, workdir, pg_url, again=False)
                first, second = run["first"], double["first"]
                print(
                    f"postgresql peak memory: {first['rss_mib']:.0f} MiB at {args.invoices:,} "
                    f"invoices, {second['rss_mib']:.0f} MiB at {2 * args.invoices:,} "
                    f"(ratio {second['rss_mib'] / first['rss_mib']:.2f}, goal: flat, < 300 MiB); "
                    f"import at 2x: {second['seconds']:.1f} s "
                    f"(ratio to COPY {second['seconds'] / double['copy']:.2f})"
                )
        if "sqlite" in backends:
            lite = measure("sqlite", args.sqlite_invoices, workdir, pg_url, again=True)
            print(
                f"sqlite     import of {args.sqlite_invoices:,} invoices: "
                f"{lite['first']['seconds']:.1f} s "
                f"({args.sqlite_invoices / lite['first']['seconds']:,.0f} rows/s, "
                f"{lite['first']['rss_mib']:.0f} MiB peak); again: "
                f"{lite['second']['seconds']:.1f} s, {lite['second']['counts']}"
            )


def report_postgresql(run: dict[str, Any]) -> None:
    copy, first, second = run["copy"], run["first"], run["second"]
    count = run["invoices"]
    print(f"postgresql COPY of {count:,} rows into an unindexed table: {copy:.2f} s")
    invoices_s, events_s = run["shaped"]
    print(
        f"postgresql COPY of the same {count:,} invoices, typed, into a table shaped like "
        f"invoices (3 indexes, 2 foreign keys): {invoices_s:.2f} s; of one event each into "
        f"one shaped like timeline_events (2 indexes, 2 foreign keys): {events_s:.2f} s"
    )
    print(
        f"postgresql shaped COPY ratio to COPY: invoices {invoices_s / copy:.2f}, "
        f"invoices and events {(invoices_s + events_s) / copy:.2f}"
    )
    print(
        f"postgresql import of {count:,} invoices: {first['seconds']:.1f} s, "
        f"{first['rss_mib']:.0f} MiB peak, {first['counts']}"
    )
    print(f"postgresql import ratio to COPY: {first['seconds'] / copy:.2f} (goal <= 4)")
    print(
        "postgresql import ratio to the shaped COPY of invoices and events: "
        f"{first['seconds'] / (invoices_s + events_s):.2f}"
    )
    unchanged = run["totals"] == run["totals_after"]
    print(
        f"postgresql re-import: {second['seconds']:.1f} s, {second['counts']}, "
        f"{'wrote nothing' if unchanged else 'WROTE ROWS'} (customers, invoices, timeline: "
        f"{run['totals']} -> {run['totals_after']})"
    )
    print(f"postgresql re-import ratio to COPY: {second['seconds'] / copy:.2f} (goal <= 2)")
    assert unchanged, "the second import changed the data"


if __name__ == "__main__":
    main()
