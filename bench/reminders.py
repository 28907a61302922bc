"""Benchmark of the reminder engine: one run (plan + enqueue) over N customers and 5N
invoices, then at twice the data; rendering and delivery to a local SMTP sink.

    .venv/bin/python bench/reminders.py                       # 100,000 customers, both backends
    .venv/bin/python bench/reminders.py --customers 20000 --backends sqlite

Per backend and size, in a fresh database: seed (COPY on PostgreSQL, executemany on
SQLite), then, in a child process so that its peak memory is its own, one run of
``portal.reminders.planning.run`` (plan, enqueue: messages, their invoices, timeline events;
committed page by page). Then, on the first size, the send-time work on a sample: claim +
re-check + render (+ link), and full delivery (claim, render, SMTP to an aiosmtpd sink on
loopback, record). Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
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
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, make_url, text  # noqa: E402

from portal import clock, migrate  # noqa: E402
from portal.company.service import sync_company  # noqa: E402
from portal.customers.models import Contact, Customer  # noqa: E402
from portal.db import make_engine, make_session_factory  # noqa: E402
from portal.invoices.models import Invoice  # noqa: E402
from portal.settings import load_settings  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = dt.datetime(2026, 3, 10, 10, 0, tzinfo=ZoneInfo("Europe/Paris")).astimezone(dt.UTC)
ZONES = ("Europe/Paris", "Europe/Paris", "Europe/Paris", "Europe/London", "America/New_York")
RISKS = ("low", "medium", "medium", "high")
BATCH = 20_000
GOAL_CUSTOMERS, GOAL_SECONDS = 1_000_000, 300  # a million customers planned in 5 minutes
MEMORY_FLAT = 1.1  # peak memory at 10x the data, over the peak at 1x


def _settings(url: str, workdir: Path, smtp_port: int = 0, sms_port: int = 0) -> Any:
    env = {
        "PORTAL_ENVIRONMENT": "development",
        "PORTAL_DATABASE_URL": url,
        "PORTAL_BASE_URL": "https://pay.relance.example",
        "PORTAL_MAIL_SPOOL_DIR": str(workdir / "mail"),
        "PORTAL_REMINDER_LETTERS_DIR": str(workdir / "letters"),
        "PORTAL_DOCUMENTS_DIR": str(workdir / "documents"),
    }
    if smtp_port:
        env.update(
            PORTAL_SMTP_HOST="127.0.0.1",
            PORTAL_SMTP_PORT=str(smtp_port),
            PORTAL_SMTP_SECURITY="none",
        )
    if sms_port:
        env.update(
            PORTAL_SMS_PROVIDER="twilio",
            PORTAL_SMS_API_URL=f"http://127.0.0.1:{sms_port}",
            PORTAL_SMS_ACCOUNT_SID="ACbench",
            PORTAL_SMS_AUTH_TOKEN="bench-token",  # noqa: S106 - the local stand-in's
            PORTAL_SMS_SENDER="+33600000000",
        )
    return load_settings(env)


# --- data ----------------------------------------------------------------------------------------


def _rows(company_id: int, customers: int, seed: int = 7) -> Iterator[tuple[str, dict[str, Any]]]:
    """Generated rows as (table, row), deterministic, customer by customer (streamed: a
    million customers never sit in memory); invoices due from 60 days ago to 30 days ahead."""
    rng = random.Random(seed)
    today = NOW.date()
    created = NOW - dt.timedelta(days=90)
    invoice_id = 0
    for cid in range(1, customers + 1):
        yield (
            "customers",
            {
                "id": cid,
                "company_id": company_id,
                "reference": f"B{cid:07d}",
                "name": f"Client {cid} SARL",
                "language": "fr" if cid % 4 else "en",
                "timezone": ZONES[cid % len(ZONES)],
                "risk_segment": RISKS[cid % len(RISKS)],
                "strategic": cid % 50 == 0,
                "link_version": 1,
                "created_at": created,
            },
        )
        yield (
            "contacts",
            {
                "id": cid,
                "customer_id": cid,
                "name": f"Contact {cid}",
                "email": f"ap{cid}@client{cid}.example",
                "phone": f"+336{cid:08d}",
                "is_primary": True,
                "receives_reminders": True,
            },
        )
        for _ in range(5):
            invoice_id += 1
            due = today + dt.timedelta(days=rng.randint(-60, 30))
            amount = rng.randint(5_000, 500_000)
            roll = rng.random()
            paid, status = (
                (amount, "paid") if roll < 0.25 else (amount // 3 if roll < 0.35 else 0, "open")
            )
            yield (
                "invoices",
                {
                    "id": invoice_id,
                    "company_id": company_id,
                    "customer_id": cid,
                    "number": f"F{invoice_id:08d}",
                    "issue_date": due - dt.timedelta(days=30),
                    "due_date": due,
                    "currency": "EUR",
                    "amount_minor": amount,
                    "paid_minor": paid,
                    "status": status,
                    "created_at": created,
                },
            )


TABLES = ("customers", "contacts", "invoices")


def seed(url: str, customers: int, workdir: Path) -> None:
    settings = _settings(url, workdir)
    engine = make_engine(url)
    migrate.upgrade(url, engine=engine)
    factory = make_session_factory(engine)
    with factory() as session:
        company_id = sync_company(session, settings.company).id
        session.commit()
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            driver = raw.driver_connection
            # One COPY per table, fed in chunks of customers (the parents first).
            for start in range(0, customers, BATCH):
                chunk = min(BATCH, customers - start)
                by_table: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
                for table, row in _rows_range(company_id, start, chunk):
                    by_table[table].append(row)
                for table in TABLES:
                    rows = by_table[table]
                    columns = list(rows[0])
                    with (
                        driver.cursor() as cursor,
                        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
                    ):
                        for r in rows:
                            copy.write_row([r[c] for c in columns])
            for table in TABLES:
                driver.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )
            raw.commit()
            driver.autocommit = True
            # A live database has been vacuumed: without it the run would pay for the
            # freshly loaded rows' hint bits and race autovacuum's first pass over them.
            driver.execute("VACUUM ANALYZE")
        finally:
            raw.close()
    else:
        models = {"customers": Customer, "contacts": Contact, "invoices": Invoice}
        with engine.begin() as connection:
            for start in range(0, customers, BATCH):
                by_table = {t: [] for t in TABLES}
                for table, row in _rows_range(company_id, start, min(BATCH, customers - start)):
                    by_table[table].append(row)
                for table in TABLES:
                    connection.execute(insert(models[table].__table__), by_table[table])  # type: ignore[attr-defined]
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
    engine.dispose()


_STREAM: dict[int, Iterator[tuple[str, dict[str, Any]]]] = {}


def _rows_range(company_id: int, start: int, count: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """The next ``count`` customers of one deterministic stream (called in order)."""
    stream = _STREAM.setdefault(company_id, _rows(company_id, 10**9))
    seen = 0
    for table, row in stream:
        yield table, row
        if table == "invoices" and row["id"] % 5 == 0:
            seen += 1
            if seen == count:
                return


# --- the measured phases (child processes) ------------------------------------------------------


def phase_run(url: str, workdir: Path) -> dict[str, Any]:
    from portal.reminders import planning
    from portal.reminders.scenarios import load_scenarios
    from portal.reminders.worker import calendar_for

    settings = _settings(url, workdir)
    clock.freeze(NOW)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    book = load_scenarios(settings.reminders.scenarios_file)
    with factory() as session:
        company_id = sync_company(session, settings.company).id
        session.commit()
        started = time.perf_counter()
        result = planning.run(session, company_id, book, calendar_for(settings), now=NOW)
        session.commit()
        elapsed = time.perf_counter() - started
    engine.dispose()
    return {
        "seconds": elapsed,
        "planned": result.planned,
        "enqueued": result.enqueued,
        "peak_rss_mib": _peak_rss_mib(),
    }


def _peak_rss_mib() -> float:
    """VmHWM: this process's peak resident memory. (getrusage's ru_maxrss would carry the
    parent's peak across fork and exec.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_send(url: str, workdir: Path, sample: int, profile_dir: str) -> dict[str, Any]:
    from bench.reminders_send import measure

    return measure(url, workdir, sample, _settings, profile_dir)


def _child(args: list[str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{result.stdout}\n{result.stderr}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


# --- databases ----------------------------------------------------------------------------------


def _database(backend: str, workdir: Path, pg_url: str) -> tuple[str, Any]:
    if backend == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)
    base = make_url(pg_url)
    name = f"relance_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _rates(values: list[float]) -> str:
    return "/".join(f"{v:.0f}" for v in values)


def _print_send(backend: str, sample: int, send: dict[str, Any]) -> None:
    app, bare = send["one_worker"], send["bare_smtp"]
    print(
        f"{backend} delivery ratio {app / bare:.2f} (goal >= 0.5): worker {app:.0f} emails/s, "
        f"bare smtplib {bare:.0f}/s, sample {sample:,} ({send['sent_one']:,} sent); medians of "
        f"{len(send['rounds']['one'])} rounds: worker {_rates(send['rounds']['one'])}, "
        f"bare {_rates(send['rounds']['bare'])}, two workers {_rates(send['rounds']['two'])}",
        flush=True,
    )
    two = send["two_workers"]
    print(
        f"{backend} two workers {two / app:.2f}x one (goal >= 1.6): {two:.0f} emails/s "
        f"({send['sent_two']:,} sent; the sink received {send['smtp_received']:,} in all); "
        f"load average {_load()} on {os.cpu_count()} cores",
        flush=True,
    )
    two_bare = send["two_bare"]
    print(
        f"{backend} two bare smtplib loops at once: {two_bare:.0f} emails/s, "
        f"{two_bare / bare:.2f}x one (what this machine and sink take from two senders); "
        f"two workers reach {two / two_bare:.2f} of it",
        flush=True,
    )
    print(
        f"{backend} sms ratio {send['sms_app'] / send['sms_bare']:.2f} (goal >= 0.5): worker "
        f"{send['sms_app']:.0f} texts/s, bare http.client {send['sms_bare']:.0f}/s",
        flush=True,
    )
    letters_app, letters_bare = send["letters_app"], send["letters_bare"]
    print(
        f"{backend} letters ratio {letters_app / letters_bare:.2f} (goal >= 0.5): "
        f"claim+re-check+render {letters_app:.1f} PDFs/s, bare fpdf2 {letters_bare:.1f}/s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--sample", type=int, default=2_000, help="messages rendered and sent")
    parser.add_argument(
        "--scale",
        type=int,
        default=10,
        help="also plan at customers/scale first and compare (1: only the given size)",
    )
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--smtp-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--sms-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--ids", default="", help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile", default="", help="a folder: write pyinstrument profiles of the worker there"
    )
    args = parser.parse_args()
    if args.phase:
        sys.path.insert(0, str(ROOT))
        workdir = Path(args.workdir)
        if args.phase == "seed":
            seed(args.url, args.customers, workdir)
            print(json.dumps({}))
        elif args.phase == "run":
            print(json.dumps(phase_run(args.url, workdir)))
        elif args.phase == "send":
            print(json.dumps(phase_send(args.url, workdir, args.sample, args.profile)))
        else:
            from bench import reminders_send

            settings = _settings(args.url, workdir, args.smtp_port, args.sms_port)
            ids = [int(i) for i in args.ids.split(",") if i]
            if args.phase == "deliver":
                print(json.dumps(reminders_send.child_deliver(settings, args.profile)))
            elif args.phase == "bare-smtp":
                print(json.dumps(reminders_send.child_bare_smtp(settings, ids)))
            else:
                print(json.dumps(reminders_send.child_bare_sms(settings, ids)))
        return
    pg_url = os.environ.get("PORTAL_TEST_DATABASE_URL", DEFAULT_PG)
    sizes = ([args.customers // args.scale] if args.scale > 1 else []) + [args.customers]
    with tempfile.TemporaryDirectory(prefix="relance-bench-") as tmp:
        workdir = Path(tmp)
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            runs = []
            for size in sizes:
                url, drop = _database(backend, workdir, pg_url)
                try:
                    started = time.perf_counter()
                    # In a child too: the generated rows must not swell this process.
                    _child(
                        [
                            "--phase",
                            "seed",
                            "--url",
                            url,
                            "--workdir",
                            str(workdir),
                            "--customers",
                            str(size),
                        ]
                    )
                    seeded = time.perf_counter() - started
                    run = _child(["--phase", "run", "--url", url, "--workdir", str(workdir)])
                    runs.append(run)
                    rate = run["enqueued"] / run["seconds"]
                    print(
                        f"{backend:10} {size:>8,} customers {5 * size:>9,} invoices | "
                        f"seed {seeded:6.1f} s | run (plan+enqueue) {run['seconds']:6.1f} s, "
                        f"{run['enqueued']:>7,} messages, {rate:8,.0f} msg/s | "
                        f"peak RSS {run['peak_rss_mib']:6.0f} MiB",
                        flush=True,
                    )
                    if size == sizes[0] and args.sample:
                        profile = ["--profile", args.profile] if args.profile else []
                        send = _child(
                            [
                                "--phase",
                                "send",
                                "--url",
                                url,
                                "--workdir",
                                str(workdir),
                                "--sample",
                                str(args.sample),
                                *profile,
                            ]
                        )
                        _print_send(backend, args.sample, send)
                finally:
                    drop()
            if len(runs) == 2:
                ratio = runs[1]["seconds"] / runs[0]["seconds"]
                print(
                    f"{backend:10} ratio of run time at {args.scale}x data: {ratio:.2f} "
                    f"(goal <= {args.scale * 1.1:.1f})",
                    flush=True,
                )
                small, large = runs[0]["peak_rss_mib"], runs[1]["peak_rss_mib"]
                print(
                    f"{backend:10} peak memory ratio at {args.scale}x data: {large / small:.2f} "
                    f"(goal: flat, <= {MEMORY_FLAT}): {small:.0f} -> {large:.0f} MiB",
                    flush=True,
                )
            if runs and args.customers >= GOAL_CUSTOMERS:
                seconds = runs[-1]["seconds"]
                print(
                    f"{backend:10} planning time ratio to the {GOAL_SECONDS} s goal at "
                    f"{args.customers:,} customers: {seconds / GOAL_SECONDS:.2f} ({seconds:.1f} s, "
                    f"goal <= 1); load average {_load()} on {os.cpu_count()} cores",
                    flush=True,
                )


if __name__ == "__main__":
    main()
