"""The demo looks like a real portfolio: varied customers, amounts and ages."""

from __future__ import annotations

import itertools
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.cases.models import Case, CaseKind
from portal.company.models import Company
from portal.customers.models import Customer
from portal.demo.seed import seed_demo
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import PaymentAllocation


def test_the_demo_has_payers_on_time_very_late_ones_a_dispute_and_a_plan(
    db: Session, company: Company, tmp_path: Path
) -> None:
    seed_demo(db, company, tmp_path)
    seed_demo(db, company, tmp_path)  # idempotent: nothing doubles
    today = clock.now().date()
    invoices = list(db.scalars(select(Invoice).where(Invoice.company_id == company.id)))
    customers = list(db.scalars(select(Customer).where(Customer.company_id == company.id)))
    assert len({i.number for i in invoices}) == len(invoices)

    overdue_by_customer: dict[int, list[Invoice]] = {c.id: [] for c in customers}
    for invoice in invoices:
        if invoice.status is InvoiceStatus.OPEN and invoice.due_date < today:
            overdue_by_customer[invoice.customer_id].append(invoice)
    counts = {len(each) for each in overdue_by_customer.values()}
    assert len(counts) >= 3, counts  # not every customer has the same two overdue invoices
    assert any(not each for each in overdue_by_customer.values())  # some owe nothing late
    ages = [(today - i.due_date).days for each in overdue_by_customer.values() for i in each]
    assert max(ages) >= 120  # some are very late
    assert min(ages) <= 7

    amounts = sorted(i.amount_minor for i in invoices)
    assert amounts[-1] >= 100 * amounts[0]  # from a few euros to thousands
    steps = {b - a for a, b in itertools.pairwise(amounts)}
    assert len(steps) > len(amounts) // 2  # no staircase of equal steps

    paid_early = db.scalars(
        select(Invoice)
        .join(PaymentAllocation, PaymentAllocation.invoice_id == Invoice.id)
        .where(Invoice.status == InvoiceStatus.PAID)
    ).all()
    assert len(paid_early) >= 5

    kinds = [case.kind for case in db.scalars(select(Case))]
    assert kinds.count(CaseKind.DISPUTE) == 1
    assert kinds.count(CaseKind.PLAN) == 1
