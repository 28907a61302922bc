"""Emails about cases: prepared inside the transaction, sent after it commits.

A debtor's email carries a fresh signed link (issuing it is a database change, so it
happens in the transaction); the assignee's email points at the case in the back office.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.cases.models import Case
from portal.customers.models import Customer
from portal.invoices.models import Invoice
from portal.links.service import issue_link
from portal.links.tokens import LinkSigner
from portal.mail.sender import Mailer, compose
from portal.settings import Settings
from portal.timeline.models import Actor
from portal.users.models import User

log = logging.getLogger(__name__)

DEBTOR_EVENTS = (
    "plan_accepted",
    "plan_review",
    "plan_countered",
    "plan_rejected",
    "dispute_resolved",
    "dispute_rejected",
    "reply",
    "promise_made",
    "instalment_due",
    "instalment_overdue",
)
STAFF_EVENTS = ("dispute_opened", "plan_review", "message", "broken")
# Emails to the company's customers come from the company (mail.sender.company_sender).
DEBTOR_TEMPLATES = ("case_update",)


@dataclass(frozen=True)
class CaseEmail:
    to: str
    language: str
    template: str
    context: dict[str, Any]
    country: str = ""  # the reader's, for dates (i18n.regional)


def debtor_email(
    session: Session,
    signer: LinkSigner,
    settings: Settings,
    case: Case,
    event: str,
    *,
    note: str = "",
    actor: Actor = Actor.SYSTEM,
    actor_id: str | None = None,
    instalment: tuple[dt.date, int] | None = None,
) -> CaseEmail | None:
    """The email telling the debtor what happened, with a fresh link; None without an address.

    ``instalment`` (due date, amount left) for the instalment reminders."""
    assert event in DEBTOR_EVENTS, event
    customer = session.get(Customer, case.customer_id)
    assert customer is not None
    contact = customer.primary_contact
    if contact is None or not contact.email:
        return None
    url = issue_link(
        session,
        signer,
        settings.base_url,
        customer,
        actor=actor,
        actor_id=actor_id,
        purpose=f"case:{event}",
    )
    return CaseEmail(
        to=contact.email,
        language=customer.language,
        country=customer.country,
        template="case_update",
        context={
            "event": event,
            "person": contact.name or customer.name,
            "customer_name": customer.name,
            "url": url,
            "case_id": case.id,
            "kind": case.kind.value,
            "note": note,
            "currency": case.currency,
            "total_minor": case.total_minor,
            "answer_by": case.answer_by,
            "promised_date": case.promised_date,
            "instalments": [(i.due_date, i.amount_minor) for i in case.instalments],
            "instalment": instalment,
            "invoice_numbers": ", ".join(
                session.scalars(
                    select(Invoice.number)
                    .where(Invoice.id.in_(case.invoice_ids))
                    .order_by(Invoice.number)
                )
            ),
            "invoice_count": len(case.invoice_ids),
        },
    )


def staff_email(session: Session, settings: Settings, case: Case, event: str) -> CaseEmail | None:
    """The email telling the case's assignee there is something to do; None if unassigned."""
    assert event in STAFF_EVENTS, event
    if case.assignee_id is None:
        return None
    user = session.get(User, case.assignee_id)
    customer = session.get(Customer, case.customer_id)
    if user is None or not user.is_active or customer is None:
        return None
    return CaseEmail(
        to=user.email,
        language=settings.default_language,
        template="case_assigned",
        context={
            "event": event,
            "person": user.name or user.email,
            "customer_name": customer.name,
            "url": f"{settings.base_url}/admin/cases/{case.id}",
            "case_id": case.id,
            "kind": case.kind.value,
            "answer_by": case.answer_by,
            "timezone": settings.company.timezone,
        },
    )


def send_all(
    templates: Environment, mailer: Mailer, settings: Settings, emails: list[CaseEmail]
) -> None:
    """Send each email; a failure is logged and does not stop the others."""
    domain = settings.base_url.split("//")[-1].split(":")[0].split("/")[0]
    for email in emails:
        try:
            message = compose(
                templates,
                email.template,
                email.to,
                email.language,
                domain,
                sender_name=settings.company.name if email.template in DEBTOR_TEMPLATES else "",
                region=email.country or settings.company.country,
                company=settings.company,
                settings=settings,
                language=email.language,
                **email.context,
            )
            mailer.send(message)
        except OSError:
            log.exception(
                "could not send the %s email about case %s",
                email.template,
                email.context.get("case_id"),
            )
