"""Time ``portal cases check`` (check_commitments) over many running plans and promises.

Run from the project root::

    .venv/bin/python bench/cases_check.py [--plans 2000] [--promises 1000] [--database-url URL]

Seeds a fresh SQLite database (or the given URL's database, which must be empty) with one
customer per plan or promise, each with two invoices and some payments, then times the
first check (a third of the plans miss an instalment, half the promises are kept) and a
second one, which must change nothing (idempotent).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

import portal.models  # noqa: F401 - every table
from portal import clock, migrate
from portal.cases import service as cases
from portal.cases.models import Case, CaseStatus
from portal.company.service import sync_company
from portal.customers.models import Customer
from portal.db import make_engine, make_session_factory
from portal.invoices.models import Invoice
from portal.payments.models import PaymentMethod
from portal.payments.service import record_payment
from portal.settings import CaseSettings, CompanyIdentity

TODAY = dt.date(2026, 11, 23)
POLICY = CaseSettings()
AGREED = cases.AgreementInfo("127.0.0.1", "bench")


def seed(factory: object, plans: int, promises: int) -> None:
    clock.freeze(dt.datetime(2026, 10, 1, 9, tzinfo=dt.UTC))
    with factory() as db, db.begin():  # type: ignore[operator]
        company = sync_company(db, CompanyIdentity())
        for n in range(plans + promises):
            customer = Customer(
                company_id=company.id, reference=f"B-{n}", name=f"Bench {n}", created_at=clock.now()
            )
            db.add(customer)
            db.flush()
            ids = []
            for k in range(2):
                invoice = Invoice(
                    company_id=company.id,
                    customer_id=customer.id,
                    number=f"B-{n}-{k}",
                    issue_date=TODAY - dt.timedelta(days=90),
                    due_date=TODAY - dt.timedelta(days=60),
                    currency="EUR",
                    amount_minor=30_000,
                    paid_minor=0,
                    created_at=clock.now(),
                )
                db.add(invoice)
                db.flush()
                ids.append(invoice.id)
            if n < plans:
                cases.propose_plan(
                    db,
                    customer,
                    None,
                    ids,
                    first_date=dt.date(2026, 10, 5),
                    today=dt.date(2026, 10, 1),
                    policy=POLICY,
                    company_currency="EUR",
                    agreement=AGREED,
                    count=6,
                )
                paid = 5_000 if n % 3 == 0 else 30_000  # a third miss the first instalment
            else:
                cases.promise_to_pay(
                    db,
                    customer,
                    None,
                    ids,
                    promised_date=dt.date(2026, 10, 20),
                    today=dt.date(2026, 10, 1),
                    policy=POLICY,
                    agreement=AGREED,
                )
                paid = 60_000 if n % 2 == 0 else 0
            if paid:
                clock.freeze(dt.datetime(2026, 10, 2, 9, tzinfo=dt.UTC))
                record_payment(
                    db,
                    customer,
                    amount_minor=paid,
                    currency="EUR",
                    method=PaymentMethod.CARD,
                    provider="bench",
                    provider_reference=f"p-{n}",
                )
                clock.freeze(dt.datetime(2026, 10, 1, 9, tzinfo=dt.UTC))
    clock.freeze(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=2000)
    parser.add_argument("--promises", type=int, default=1000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        migrate.upgrade(url, engine=engine)
        factory = make_session_factory(engine)
        seed(factory, args.plans, args.promises)
        for run in ("first", "second"):
            with factory() as db:
                total = db.scalar(select(func.count()).where(Case.status == CaseStatus.ACTIVE)) or 0
            started = time.perf_counter()
            with factory() as db, db.begin():
                result = cases.check_commitments(db, TODAY, POLICY)
            elapsed = time.perf_counter() - started
            print(
                f"{run} check: {total} running cases in {elapsed:.2f} s "
                f"({elapsed / max(total, 1) * 1000:.2f} ms per case): "
                f"{len(result.completed)} completed, {len(result.broken)} broken"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
