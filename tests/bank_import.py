"""Importing a generated statement in a test, with the test company's account."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.bank.models import BankLine, BankLinePayment, BankStatement
from portal.bank.statements import Account, ImportResult, import_statement
from portal.company.models import Company
from portal.invoices.models import Invoice
from portal.payments.models import Payment, PaymentAllocation, PaymentRequest
from portal.timeline.models import TimelineEvent
from tests.bank_helpers import ACCOUNT

ACCOUNT_EUR = Account(ACCOUNT, "EUR")


def import_(
    db: Session, company: Company, data: bytes, csv_mapping: Mapping[str, str] | None = None
) -> ImportResult:
    result = import_statement(
        db,
        company.id,
        ACCOUNT_EUR,
        data,
        filename="statement",
        uploaded_by="test",
        today=dt.date(2026, 12, 3),
        csv_mapping=csv_mapping,
    )
    db.flush()
    db.expire_all()
    return result


def counts(db: Session) -> dict[str, int]:
    tables = (
        BankStatement,
        BankLine,
        BankLinePayment,
        Payment,
        PaymentAllocation,
        TimelineEvent,
        PaymentRequest,
    )
    out = {t.__name__: int(db.scalar(select(func.count()).select_from(t)) or 0) for t in tables}
    out["paid"] = int(db.scalar(select(func.coalesce(func.sum(Invoice.paid_minor), 0))) or 0)
    return out
