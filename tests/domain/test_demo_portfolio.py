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
from portal.payments.models import Payment, PaymentAllocation


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


def test_no_two_demo_customers_look_alike(db: Session, company: Company, tmp_path: Path) -> None:
    """Every customer has its own history: how many invoices, how many late, paid or not yet
    due, and how far apart their due dates are; amounts never climb in even steps."""
    seed_demo(db, company, tmp_path)
    today = clock.now().date()
    customers = list(db.scalars(select(Customer).where(Customer.company_id == company.id)))
    by_customer: dict[int, list[Invoice]] = {c.id: [] for c in customers}
    for invoice in db.scalars(select(Invoice).order_by(Invoice.due_date, Invoice.id)):
        by_customer[invoice.customer_id].append(invoice)

    counts = sorted(len(each) for each in by_customer.values())
    assert (counts[0], counts[-1]) == (1, 6), counts
    assert len(set(counts)) >= 4, counts

    def shape(each: list[Invoice]) -> tuple[int, int, int, int]:
        open_ = [i for i in each if i.status is InvoiceStatus.OPEN]
        late = [i for i in open_ if i.due_date < today]
        paid = [i for i in each if i.status is InvoiceStatus.PAID]
        return len(each), len(late), len(paid), len(open_) - len(late)

    shapes = [shape(each) for each in by_customer.values()]
    assert max(shapes.count(s) for s in shapes) <= 2, sorted(shapes)
    # Due dates are not one calendar shifted by a day per customer.
    spacings = [
        tuple((b.due_date - a.due_date).days for a, b in itertools.pairwise(each))
        for each in by_customer.values()
        if len(each) > 1
    ]
    assert len(set(spacings)) == len(spacings), spacings
    for each in by_customer.values():
        amounts = [i.amount_minor for i in each]
        if len(amounts) >= 3:
            assert len({b - a for a, b in itertools.pairwise(amounts)}) > 1, amounts

    late_ages = [
        (today - i.due_date).days
        for each in by_customer.values()
        for i in each
        if i.status is InvoiceStatus.OPEN and i.due_date < today
    ]
    assert max(late_ages) > 90, late_ages
    assert min(late_ages) < 10, late_ages
    # A customer with nothing late and something not yet due (a new account).
    assert any(s[1] == 0 and s[3] > 0 and s[2] == 0 for s in shapes), shapes
    # Customers who paid every paid invoice on or before its due date.
    paid_on = {
        invoice_id: received.date()
        for invoice_id, received in db.execute(
            select(PaymentAllocation.invoice_id, Payment.received_at).join(
                Payment, Payment.id == PaymentAllocation.payment_id
            )
        )
    }
    on_time = [
        each
        for each in by_customer.values()
        if any(i.status is InvoiceStatus.PAID for i in each)
        and all(paid_on[i.id] <= i.due_date for i in each if i.status is InvoiceStatus.PAID)
    ]
    assert len(on_time) >= 2
    # And customers who paid late.
    assert any(
        paid_on[i.id] > i.due_date
        for each in by_customer.values()
        for i in each
        if i.status is InvoiceStatus.PAID
    )
