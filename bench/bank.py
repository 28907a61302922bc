"""Benchmark of bank statement matching on PostgreSQL: a CAMT.053 of N lines (50,000)
against M open invoices (200,000) of M/4 customers, measured in one run:

- parse: reading the file alone (XML parse, schema validation, checks), the reference;
- store + match: the lines not seen before picked and given ids (``new_lines``), and every
  credit line decided by the matcher (RF references, invoice numbers, amount with payer
  name or IBAN: set-based queries, a few per statement);
- record: the exact matches recorded as payments, all at once (``payments.bulk``: the same
  rows as one ``record_payment`` / ``confirm_transfer`` after the other), then the lines
  written once with their outcome, their links and timeline events (binary COPY);
- again: the same file imported a second time (must add nothing).

    .venv/bin/python bench/bank.py                   # 50,000 lines, 200,000 invoices
    .venv/bin/python bench/bank.py --lines 5000 --invoices 20000
    .venv/bin/python bench/bank.py --no-record       # parse, store and match only

Prints the figures and the ratios to the parse time; the goal is the import (store, match
and record) in at most 3 times the parse. Asserts only that the second import added nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import random
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, make_url, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import portal.models  # noqa: E402, F401
from portal import migrate  # noqa: E402
from portal.bank.matcher import decide  # noqa: E402
from portal.bank.models import BankLine  # noqa: E402
from portal.bank.payments import LineWrites  # noqa: E402
from portal.bank.statements import (  # noqa: E402
    Account,
    apply,
    batch_work,
    new_lines,
    read,
)
from portal.company.service import sync_company  # noqa: E402
from portal.customers.models import Customer  # noqa: E402
from portal.db import analyze, insert_many, make_engine, make_session_factory  # noqa: E402
from portal.invoices.models import Invoice  # noqa: E402
from portal.payments.models import PaymentRequest  # noqa: E402
from portal.payments.transfer import creditor_reference  # noqa: E402
from portal.settings import load_settings  # noqa: E402
from tests.bank_helpers import ACCOUNT, Entry, camt  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TODAY = dt.date(2026, 12, 3)


def _database(pg_url: str) -> tuple[str, Any]:
    url = make_url(pg_url)
    name = f"relance_bench_bank_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def seed(db: Session, company_id: int, invoices: int, requests: int) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    customers = max(invoices // 4, 1)
    customer_rows = [
        {
            "company_id": company_id,
            "reference": f"C{n:07d}",
            "name": f"Société {n} SARL",
            "language": "fr",
            "timezone": "Europe/Paris",
            "risk_segment": "medium",
            "strategic": False,
            "link_version": 1,
            "address_line1": "",
            "address_line2": "",
            "postcode": "",
            "city": "",
            "country": "FR",
            "created_at": now,
        }
        for n in range(1, customers + 1)
    ]
    customer_ids = insert_many(db, Customer.__table__, customer_rows)  # type: ignore[arg-type]
    rng = random.Random(7)
    invoice_rows = []
    for n in range(invoices):
        due = dt.date(2026, 10, 1) + dt.timedelta(days=rng.randrange(0, 90))
        invoice_rows.append(
            {
                "company_id": company_id,
                "customer_id": customer_ids[n % customers],
                "number": f"F{n:09d}",
                "issue_date": due - dt.timedelta(days=30),
                "due_date": due,
                "currency": "EUR",
                "amount_minor": rng.randrange(1_000, 5_000_000),
                "paid_minor": 0,
                "status": "open",
                "created_at": now,
            }
        )
    invoice_ids = insert_many(db, Invoice.__table__, invoice_rows)  # type: ignore[arg-type]
    for row, new_id in zip(invoice_rows, invoice_ids, strict=True):
        row["id"] = new_id
    request_rows = [
        {
            "customer_id": invoice_rows[n]["customer_id"],
            "currency": "EUR",
            "amount_minor": invoice_rows[n]["amount_minor"],
            "method": "transfer",
            "status": "declared",
            "invoice_ids": [invoice_rows[n]["id"]],
            "created_at": now,
            "declared_at": now,
            "declared_amount_minor": invoice_rows[n]["amount_minor"],
            "declared_paid_on": TODAY,
            "grace_until": TODAY + dt.timedelta(days=7),
            "attempt": 1,
        }
        for n in range(requests)
    ]
    request_ids = insert_many(db, PaymentRequest.__table__, request_rows)  # type: ignore[arg-type]
    for n, request_id in enumerate(request_ids):
        invoice_rows[n]["request"] = request_id
    analyze(db, "customers", "invoices", "payment_requests")
    return invoice_rows


def statement(invoice_rows: list[dict[str, Any]], lines: int, requests: int) -> bytes:
    """RF references of distinct requests (20 %), invoice numbers (40 %), amount and name
    (20 %), unknown (15 %), debits (5 %); every invoice at most once."""
    rng = random.Random(3)
    entries = []
    others = list(range(requests, len(invoice_rows)))
    rng.shuffle(others)
    for n in range(lines):
        kind = n % 20
        if kind < 4 and n // 20 * 4 + kind < requests:
            row = invoice_rows[n // 20 * 4 + kind]
            entries.append(
                Entry(
                    row["amount_minor"],
                    f"B{n:08d}",
                    structured=creditor_reference(row["customer_id"], row["request"]),
                )
            )
            continue
        row = invoice_rows[others.pop()]
        if kind < 12:
            entries.append(
                Entry(
                    row["amount_minor"], f"B{n:08d}", remittance=(f"VIR SEPA FACT {row['number']}",)
                )
            )
        elif kind < 16:
            number = int(row["number"][1:]) % max(len(invoice_rows) // 4, 1) + 1
            entries.append(Entry(row["amount_minor"], f"B{n:08d}", name=f"SOCIETE {number}"))
        elif kind < 19:
            entries.append(
                Entry(
                    rng.randrange(100, 9_999), f"B{n:08d}", name="Inconnu", remittance=("VIREMENT",)
                )
            )
        else:
            entries.append(Entry(rng.randrange(100, 9_999), f"B{n:08d}", credit=False))
    return camt(entries, version="001.08")


def measure(url: str, lines: int, invoices: int, *, record: bool = True) -> dict[str, Any]:
    requests = lines // 5
    engine = make_engine(url)
    migrate.upgrade(url, engine=engine)
    factory = make_session_factory(engine)
    settings = load_settings({"PORTAL_ENVIRONMENT": "development", "PORTAL_DATABASE_URL": url})
    account = Account(ACCOUNT, "EUR")
    with factory() as db, db.begin():
        company_id = sync_company(db, settings.company).id
        rows = seed(db, company_id, invoices, requests)
    data = statement(rows, lines, requests)
    # The seed's rows are the benchmark's, not the import's: the cycle collector would
    # otherwise scan them during the parse and slow the reference the ratio divides by.
    del rows
    gc.collect()
    figures: dict[str, Any] = {"mb": len(data) / 1e6}
    started = time.perf_counter()
    parsed = read(data, account)
    figures["parse"] = time.perf_counter() - started
    with factory() as db, db.begin(), batch_work():  # as import_statement after its read
        started = time.perf_counter()
        stored = new_lines(db, company_id, parsed, data, filename="b.xml", uploaded_by="b")
        assert stored is not None
        facts = stored.facts
        figures["store"] = time.perf_counter() - started
        started = time.perf_counter()
        decisions = decide(db, company_id, facts)
        figures["match"] = time.perf_counter() - started
        started = time.perf_counter()
        if record:
            counts = apply(db, stored, decisions, TODAY)
        else:
            LineWrites().write(db, stored.rows)  # every line as stored, to review
            counts = Counter(matched=sum(d.applies for d in decisions))
            counts["review"] = len(decisions) - counts["matched"]
        figures["record"] = time.perf_counter() - started
    figures.update(lines=len(parsed.lines), credits=len(facts), recorded=record, **counts)
    with factory() as db, db.begin():
        before = db.scalar(select(func.count()).select_from(BankLine))
        started = time.perf_counter()
        repeat = read(data, account)
        assert new_lines(db, company_id, repeat, data, filename="b", uploaded_by="b") is None
        figures["again"] = time.perf_counter() - started
        assert db.scalar(select(func.count()).select_from(BankLine)) == before
    engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--invoices", type=int, default=200_000)
    parser.add_argument(
        "--no-record", action="store_true", help="skip recording the payments (the slow part)"
    )
    args = parser.parse_args()
    url, drop = _database(os.environ.get("PORTAL_TEST_DATABASE_URL", DEFAULT_PG))
    try:
        f = measure(url, args.lines, args.invoices, record=not args.no_record)
    finally:
        drop()
    parse = f["parse"]
    print(
        f"CAMT.053 {f['lines']:,} lines ({f['mb']:.1f} MB), "
        f"{args.invoices:,} open invoices, PostgreSQL"
    )
    print(f"  parse (XML + schema + checks)   {parse:8.2f} s")
    print(f"  store: new lines, their ids     {f['store']:8.2f} s")
    print(f"  match {f['credits']:,} credit lines        {f['match']:8.2f} s")
    print(
        f"  record {f['matched']:,} payments          {f['record']:8.2f} s   "
        f"({f['review']:,} to review){'' if f['recorded'] else ', not recorded (--no-record)'}"
    )
    print(f"  import again (adds nothing)     {f['again']:8.2f} s")
    imported = f["store"] + f["match"] + f["record"]
    print(
        f"ratio import (store + match + record) / parse: {imported / parse:.2f} (goal: at most 3)"
        + ("" if f["recorded"] else ", not recorded (--no-record)")
    )
    print(f"ratio (store + match) / parse: {(f['store'] + f['match']) / parse:.2f}")
    print(f"ratio record alone / parse: {f['record'] / parse:.2f}")
    print(f"ratio import again / parse: {f['again'] / parse:.2f}")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average (1, 5, 15 min) at the end: {load}")


if __name__ == "__main__":
    main()
