"""Disputes and the case thread: the debtor disputes invoices, a credit manager decides."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from portal import clock
from portal.cases.attachments import CheckedFile
from portal.cases.core import (
    CaseError,
    add_message,
    case_event,
    existing_or_free,
    hold_invoices,
    message_text,
    new_case,
    release_invoices,
    selected_invoices,
    touch,
    user_id_of,
)
from portal.cases.models import (
    Case,
    CaseKind,
    CaseMessage,
    CaseStatus,
    DisputeReason,
)
from portal.customers.models import Customer
from portal.holds.models import HoldKind
from portal.invoices.models import Invoice, InvoiceStatus
from portal.timeline.models import Actor
from portal.timeline.service import record
from portal.users.models import User


def open_dispute(
    session: Session,
    customer: Customer,
    scope_invoice_ids: frozenset[int] | None,
    invoice_ids: Sequence[int],
    *,
    reason: str,
    message: str,
    attachments: Sequence[CheckedFile] = (),
    attachments_dir: Path | None = None,
    answer_days: int = 2,
) -> Case:
    """A dispute on these invoices: holds their reminders (those only), assigned to a human."""
    try:
        why = DisputeReason(reason)
    except ValueError:
        raise CaseError(CaseError.REASON_INVALID) from None
    body = message_text(message, required=True)
    invoices = selected_invoices(session, customer, scope_invoice_ids, invoice_ids)
    existing = existing_or_free(session, invoices, CaseKind.DISPUTE)
    if existing is not None:
        return existing
    case = new_case(session, customer, invoices, CaseKind.DISPUTE, CaseStatus.OPEN, assign=True)
    case.reason = why
    case.answer_by = clock.today_in(customer.timezone) + dt.timedelta(days=answer_days)
    add_message(session, case, body, Actor.DEBTOR, None, attachments, attachments_dir)
    hold_invoices(session, case, HoldKind.DISPUTE)
    case_event(
        session,
        case,
        "dispute.opened",
        Actor.DEBTOR,
        reason=why.value,
        invoices=[i.number for i in invoices],
        attachments=len(attachments),
        assignee_id=case.assignee_id,
    )
    return case


def post_message(
    session: Session,
    case: Case,
    body: str,
    *,
    author: Actor,
    user: User | None = None,
    attachments: Sequence[CheckedFile] = (),
    attachments_dir: Path | None = None,
) -> CaseMessage:
    """A message in the case's thread, from the debtor or a user."""
    text = message_text(body, required=True)
    message = add_message(session, case, text, author, user, attachments, attachments_dir)
    touch(case)
    case_event(
        session,
        case,
        "case.message",
        author,
        user_id_of(user),
        message_id=message.id,
        attachments=len(attachments),
    )
    return message


DISPUTE_OUTCOMES = ("cancel", "credit", "adjust", "reject")


def resolve_dispute(
    session: Session,
    case: Case,
    user: User,
    *,
    outcome: str,
    note: str,
    invoice_id: int | None = None,
    amount_minor: int | None = None,
) -> Case:
    """Cancel, credit or adjust an invoice of the dispute, or reject it; holds are released.

    ``note`` is told to the debtor (required when rejecting).
    """
    if case.kind is not CaseKind.DISPUTE or case.status is not CaseStatus.OPEN:
        raise CaseError(CaseError.WRONG_STATE)
    if outcome not in DISPUTE_OUTCOMES:
        raise CaseError(CaseError.OUTCOME_INVALID)
    text = message_text(note, required=outcome == "reject")
    details: dict[str, Any] = {"outcome": outcome}
    if outcome != "reject":
        if invoice_id is None or invoice_id not in case.invoice_ids:
            raise CaseError(CaseError.INVOICE_NOT_IN_CASE)
        invoice = session.get(Invoice, invoice_id, with_for_update=True)
        assert invoice is not None
        if invoice.status is not InvoiceStatus.OPEN:
            raise CaseError(CaseError.WRONG_STATE)
        before = invoice.amount_minor
        if outcome == "cancel":
            invoice.status = InvoiceStatus.CANCELLED
        else:
            if amount_minor is None:
                raise CaseError(CaseError.AMOUNT_INVALID)
            if outcome == "credit":
                if not 0 < amount_minor <= invoice.remaining_minor:
                    raise CaseError(CaseError.AMOUNT_INVALID)
                invoice.amount_minor -= amount_minor
            else:
                if not invoice.paid_minor <= amount_minor < invoice.amount_minor:
                    raise CaseError(CaseError.AMOUNT_INVALID)
                invoice.amount_minor = amount_minor
            if invoice.amount_minor == invoice.paid_minor:
                invoice.status = (
                    InvoiceStatus.PAID if invoice.paid_minor else InvoiceStatus.CANCELLED
                )
        action = {"cancel": "cancelled", "credit": "credited", "adjust": "adjusted"}[outcome]
        record(
            session,
            company_id=case.company_id,
            customer_id=case.customer_id,
            actor=Actor.USER,
            actor_id=str(user.id),
            action=f"invoice.{action}",
            subject_type="invoice",
            subject_id=invoice.id,
            details={
                "number": invoice.number,
                "amount_before_minor": before,
                "amount_after_minor": invoice.amount_minor,
                "currency": invoice.currency,
                "case_id": case.id,
            },
        )
        details.update(number=invoice.number, amount_after_minor=invoice.amount_minor)
    case.status = CaseStatus.REJECTED if outcome == "reject" else CaseStatus.RESOLVED
    case.resolution = outcome
    case.resolution_note = text or None
    case.answer_by = None
    case.closed_at = clock.now()
    touch(case)
    if text:
        add_message(session, case, text, Actor.USER, user, (), None)
    release_invoices(session, case)
    action = "dispute.rejected" if outcome == "reject" else "dispute.resolved"
    case_event(session, case, action, Actor.USER, str(user.id), note=text, **details)
    return case
