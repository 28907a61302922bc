"""Properties: whatever the statement, no invoice is ever allocated more than it is owed,
every cent of a matched line is on its payments, and importing it again changes nothing."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import sessionmaker

from portal.bank.models import BankLine, BankLinePayment, LineStatus
from portal.company.service import sync_company
from portal.invoices.models import Invoice
from portal.payments import requests as payment_requests
from portal.payments.models import Payment, PaymentAllocation
from portal.payments.transfer import creditor_reference
from portal.settings import Settings
from tests.bank_helpers import Entry, camt, cfonb
from tests.bank_import import counts, import_
from tests.factories import make_customer, make_invoice

_run = itertools.count(1)

line_kinds = st.sampled_from(["rf", "number", "name", "none", "debit"])
lines = st.lists(
    st.tuples(line_kinds, st.integers(0, 3), st.integers(1, 30_000)), min_size=1, max_size=8
)


@hsettings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=lines, cfonb_file=st.booleans())
def test_never_over_allocated_and_importing_again_is_a_no_op(
    connection: Connection, settings: Settings, plan: list[tuple[str, int, int]], cfonb_file: bool
) -> None:
    outer = connection.begin_nested()
    factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
    try:
        with factory() as db:
            run = next(_run)
            company = sync_company(db, settings.company)
            customers = [make_customer(db, company, name=f"Client {run} {n}") for n in range(2)]
            invoices = [
                make_invoice(
                    db, customers[n % 2], amount_minor=1_000 * (n + 1), number=f"H{run}-{n}"
                )
                for n in range(4)
            ]
            request = payment_requests.prepare_transfer(db, customers[0], None, [invoices[0].id])
            entries = []
            for number, (kind, index, amount) in enumerate(plan):
                invoice = invoices[index]
                text = {
                    "rf": creditor_reference(request.customer_id, request.id),
                    "number": invoice.number,
                }.get(kind, "")
                entries.append(
                    Entry(
                        amount,
                        f"P{run}-{number}",
                        credit=kind != "debit",
                        name=f"Client {run} {index % 2}" if kind == "name" else "",
                        remittance=(text,) if text else (),
                        booked_on=dt.date(2026, 12, 1),
                    )
                )
            data = cfonb(entries) if cfonb_file else camt(entries)
            import_(db, company, data)
            for invoice in db.scalars(select(Invoice)):
                allocated = db.scalar(
                    select(func.coalesce(func.sum(PaymentAllocation.amount_minor), 0)).where(
                        PaymentAllocation.invoice_id == invoice.id
                    )
                )
                assert allocated == invoice.paid_minor <= invoice.amount_minor
            for line in db.scalars(select(BankLine).where(BankLine.status == LineStatus.MATCHED)):
                linked = db.scalar(
                    select(func.sum(BankLinePayment.amount_minor)).where(
                        BankLinePayment.line_id == line.id
                    )
                )
                assert linked == line.amount_minor
            total = db.scalar(select(func.sum(Payment.amount_minor))) or 0
            assert total <= sum(a for k, _i, a in plan if k != "debit")
            before = counts(db)
            import_(db, company, data)
            assert counts(db) == before
    finally:
        outer.rollback()
