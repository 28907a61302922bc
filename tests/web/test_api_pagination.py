"""Cursor pagination neither skips nor repeats while rows are inserted between pages, and
``updated_since`` returns only what changed (payments included)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal import clock
from portal.company.models import Company
from portal.customers.models import Customer
from portal.payments.offline import record_offline_payment
from portal.timeline.models import Actor
from tests.factories import make_customer, make_invoice

PREFIX = "/api/v1"


def _pages(api: TestClient, params: dict[str, str], between: object = None) -> list[list[int]]:
    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        answer = api.get(
            f"{PREFIX}/invoices", params={**params, **({"cursor": cursor} if cursor else {})}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append([row["id"] for row in body["data"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        if callable(between):
            between()


def test_rows_inserted_between_pages_are_neither_skipped_nor_repeated(
    api: TestClient, db: Session, company: Company
) -> None:
    start = clock.now()
    clock.freeze(start)  # many rows share a timestamp: the id breaks the ties
    customer = make_customer(db, company, reference="C-PAGE")
    before = [make_invoice(db, customer, number=f"P-{n:03d}").id for n in range(23)]
    db.commit()
    inserted: list[int] = []

    def insert_some() -> None:
        for _ in range(3):
            inserted.append(make_invoice(db, customer, number=f"N-{len(inserted):03d}").id)
        db.commit()

    pages = _pages(api, {"limit": "5", "customer_id": str(customer.id)}, between=insert_some)
    seen = [row for page in pages for row in page]
    counts = Counter(seen)
    assert all(n == 1 for n in counts.values())  # nothing repeated
    assert set(before) <= set(seen)  # nothing that existed is skipped
    assert seen[: len(before)] == before  # in change order, the old rows first
    assert set(seen) - set(before) <= set(inserted)  # the rest: rows inserted meanwhile


def test_a_nightly_sync_reads_only_what_changed_since_the_last(
    api: TestClient, db: Session, company: Company
) -> None:
    monday = dt.datetime(2026, 11, 30, 22, 0, tzinfo=dt.UTC)
    clock.freeze(monday)
    customer = make_customer(db, company, reference="C-SYNC")
    untouched = make_invoice(db, customer, number="S-1", amount_minor=5_000)
    paid = make_invoice(db, customer, number="S-2", amount_minor=5_000)
    db.commit()
    tuesday = monday + dt.timedelta(days=1)
    clock.freeze(tuesday)
    record_offline_payment(
        db,
        db.get(Customer, customer.id),
        amount_minor=5_000,
        currency="EUR",  # type: ignore[arg-type]
        method="cheque",
        reference="CHQ-9",
        received_on=tuesday.date(),
        invoice_ids=[paid.id],
        actor=Actor.SYSTEM,
    )
    db.commit()
    since = (monday + dt.timedelta(hours=1)).isoformat()
    changed = api.get(f"{PREFIX}/invoices", params={"updated_since": since}).json()["data"]
    assert [(row["number"], row["status"]) for row in changed] == [("S-2", "paid")]
    everything = api.get(f"{PREFIX}/invoices").json()["data"]
    assert {row["number"] for row in everything} == {untouched.number, paid.number}
    customers = api.get(f"{PREFIX}/customers", params={"updated_since": since}).json()["data"]
    assert customers == []
