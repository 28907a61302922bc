"""Recording, allocating and reversing payments never creates or loses a cent."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.company.models import Company
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import Payment, PaymentAllocation, PaymentMethod, ReversalKind
from portal.payments.service import customer_credit_minor, record_payment, reverse_payment
from tests.factories import make_customer, make_invoice

operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("pay"),
            st.integers(min_value=1, max_value=60_000),
            st.lists(st.integers(min_value=0, max_value=4), max_size=3),
        ),
        st.tuples(
            st.just("reverse"),
            st.integers(min_value=1, max_value=60_000),
            st.integers(min_value=0, max_value=20),
        ),
    ),
    min_size=1,
    max_size=12,
)


def check_invariants(db: Session, customer_id: int) -> None:
    payments = list(db.scalars(select(Payment).where(Payment.customer_id == customer_id)))
    for payment in payments:
        db.refresh(payment)
        allocated = sum(a.amount_minor for a in payment.allocations)
        assert all(a.amount_minor > 0 for a in payment.allocations)
        assert 0 <= payment.reversed_minor <= payment.amount_minor
        assert payment.credit_minor >= 0
        assert allocated + payment.credit_minor + payment.reversed_minor == payment.amount_minor
    invoices = list(db.scalars(select(Invoice).where(Invoice.customer_id == customer_id)))
    for invoice in invoices:
        allocated = db.scalar(
            select(func.coalesce(func.sum(PaymentAllocation.amount_minor), 0)).where(
                PaymentAllocation.invoice_id == invoice.id
            )
        )
        assert allocated == invoice.paid_minor
        assert 0 <= invoice.paid_minor <= invoice.amount_minor
        assert (invoice.status is InvoiceStatus.PAID) == (invoice.remaining_minor == 0)
    received = sum(p.amount_minor - p.reversed_minor for p in payments)
    settled = sum(i.paid_minor for i in invoices)
    assert received == settled + customer_credit_minor(db, customer_id, "EUR")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=30_000), min_size=1, max_size=5),
    steps=operations,
)
def test_allocations_credit_and_reversals_always_add_up(
    db: Session, company: Company, amounts: list[int], steps: list[tuple[object, ...]]
) -> None:
    clock.freeze(dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC))
    nested = db.begin_nested()
    try:
        customer = make_customer(db, company)
        invoices = [
            make_invoice(db, customer, amount_minor=a, due_in_days=n) for n, a in enumerate(amounts)
        ]
        payments: list[Payment] = []
        for n, step in enumerate(steps):
            if step[0] == "pay":
                _, amount, picks = step
                chosen = [invoices[p % len(invoices)].id for p in picks]  # type: ignore[attr-defined]
                recorded = record_payment(
                    db,
                    customer,
                    amount_minor=amount,  # type: ignore[arg-type]
                    currency="EUR",
                    method=PaymentMethod.CARD,
                    provider="test",
                    provider_reference=f"p{n}",
                    invoice_ids=chosen,
                )
                payment = db.get(Payment, recorded.id)
                assert payment is not None
                payments.append(payment)
            elif payments:
                _, amount, which = step
                payment = payments[which % len(payments)]  # type: ignore[operator]
                kind = ReversalKind.REFUND if n % 2 else ReversalKind.CHARGEBACK
                reverse_payment(
                    db,
                    payment,
                    kind=kind,
                    provider_reference=f"r{n}",
                    amount_minor=amount,  # type: ignore[arg-type]
                )
            db.flush()
            check_invariants(db, customer.id)
    finally:
        nested.rollback()


def test_a_replayed_reversal_changes_nothing(db: Session, company: Company) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, amount_minor=10_000)
    recorded = record_payment(
        db,
        customer,
        amount_minor=10_000,
        currency="EUR",
        method=PaymentMethod.CARD,
        provider="test",
        provider_reference="pi_1",
    )
    payment = db.get(Payment, recorded.id)
    assert payment is not None
    first = reverse_payment(
        db, payment, kind=ReversalKind.REFUND, provider_reference="re_1", amount_minor=2_500
    )
    again = reverse_payment(
        db, payment, kind=ReversalKind.REFUND, provider_reference="re_1", amount_minor=2_500
    )
    assert first is not None
    assert again is None
    assert invoice.remaining_minor == 2_500
    assert invoice.status is InvoiceStatus.OPEN
