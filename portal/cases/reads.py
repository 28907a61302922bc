"""Reading cases, their threads, agreements, invoices and attachments."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal.cases.models import (
    Agreement,
    Attachment,
    Case,
    CaseMessage,
)
from portal.invoices.models import Invoice


def customer_cases(session: Session, customer_id: int) -> list[Case]:
    """A customer's cases, newest first."""
    return list(
        session.scalars(
            select(Case)
            .where(Case.customer_id == customer_id)
            .options(selectinload(Case.invoices))
            .order_by(Case.created_at.desc(), Case.id.desc())
        )
    )


def get_case(session: Session, company_id: int, case_id: int) -> Case | None:
    case = session.get(Case, case_id)
    return case if case is not None and case.company_id == company_id else None


def debtor_case(
    session: Session, customer_id: int, case_id: int, scope_invoice_ids: frozenset[int] | None
) -> Case | None:
    """The customer's case (within the link's scope); None for anything else (404)."""
    case = session.get(Case, case_id)
    if case is None or case.customer_id != customer_id:
        return None
    if scope_invoice_ids is not None and not set(case.invoice_ids) <= scope_invoice_ids:
        return None
    return case


def thread(session: Session, case_id: int) -> list[CaseMessage]:
    return list(
        session.scalars(
            select(CaseMessage)
            .where(CaseMessage.case_id == case_id)
            .options(selectinload(CaseMessage.attachments))
            .order_by(CaseMessage.created_at, CaseMessage.id)
        )
    )


def agreements(session: Session, case_id: int) -> list[Agreement]:
    return list(
        session.scalars(
            select(Agreement).where(Agreement.case_id == case_id).order_by(Agreement.id)
        )
    )


def case_invoices(session: Session, case: Case) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .where(Invoice.id.in_(case.invoice_ids))
            .order_by(Invoice.due_date, Invoice.id)
        )
    )


def attachment_for_case(session: Session, case: Case, attachment_id: int) -> Attachment | None:
    attachment = session.get(Attachment, attachment_id)
    return attachment if attachment is not None and attachment.case_id == case.id else None
