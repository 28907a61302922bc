"""Cases (read; the decisions are in ``casework``), a customer's timeline, reminder holds."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from portal import clock
from portal.api import schemas as s
from portal.cases import desk
from portal.cases import service as cases
from portal.cases.models import Case, CaseInvoice, CaseKind
from portal.changes import FieldErrors
from portal.i18n import gettext_ as _
from portal.invoices.editing import find_invoice
from portal.invoices.models import Invoice
from portal.timeline.models import TimelineEvent
from portal.users.models import User
from portal.web.api import problems
from portal.web.api.customers import load_customer
from portal.web.api.framework import ApiProblem, Call, Result, operation
from portal.web.api.pagination import listed

TAG = "Cases and reminders"


def case_out(call: Call, case: Case) -> s.CaseOut:
    numbers = list(
        call.db.scalars(
            select(Invoice.number)
            .join(CaseInvoice, CaseInvoice.invoice_id == Invoice.id)
            .where(CaseInvoice.case_id == case.id)
            .order_by(Invoice.number)
        )
    )
    return s.CaseOut(
        id=case.id,
        customer_id=case.customer_id,
        kind=case.kind.value,
        status=case.status.value,
        currency=case.currency,
        total_minor=case.total_minor,
        invoice_numbers=numbers,
        promised_date=case.promised_date,
        answer_by=case.answer_by,
        resolution=case.resolution,
        created_at=case.created_at,
        updated_at=case.updated_at,
    )


def load_case(call: Call) -> Case:
    case = cases.get_case(call.db, call.caller.company_id, call.path["case_id"])
    if case is None:
        raise ApiProblem(problems.not_found())
    return case


@operation(
    "GET",
    "/cases",
    summary="Disputes, payment plans and promises, in the order they changed",
    tag=TAG,
    query=s.CaseListQuery,
    ok=(200, s.CasePage),
)
def list_cases(call: Call) -> Result:
    query: s.CaseListQuery = call.query
    base = select(Case).where(Case.company_id == call.caller.company_id)
    if query.customer_id is not None:
        base = base.where(Case.customer_id == query.customer_id)
    if query.kind is not None:
        base = base.where(Case.kind == CaseKind(query.kind))
    rows, cursor = listed(
        call.db,
        base,
        query,
        changed=Case.updated_at,
        row_id=Case.id,
        position=lambda c: (c.updated_at, c.id),
    )
    return Result(200, s.CasePage(data=[case_out(call, c) for c in rows], next_cursor=cursor))


@operation("GET", "/cases/{case_id}", summary="A case", tag=TAG, ok=(200, s.CaseOut))
def get_case(call: Call) -> Result:
    return Result(200, case_out(call, load_case(call)))


@operation(
    "GET",
    "/customers/{customer_id}/timeline",
    summary="What happened to a customer, oldest first (cursor pagination)",
    tag=TAG,
    query=s.TimelineQuery,
    ok=(200, s.TimelinePage),
)
def customer_timeline(call: Call) -> Result:
    customer = load_customer(call, call.path["customer_id"])
    query: s.TimelineQuery = call.query
    rows, cursor = listed(
        call.db,
        select(TimelineEvent).where(TimelineEvent.customer_id == customer.id),
        query,
        changed=TimelineEvent.occurred_at,
        row_id=TimelineEvent.id,
        position=lambda e: (e.occurred_at, e.id),
    )
    return Result(
        200,
        s.TimelinePage(
            data=[s.TimelineEventOut.model_validate(e) for e in rows], next_cursor=cursor
        ),
    )


def _hold(call: Call, until: dt.date | None, invoice_number: str | None) -> Result:
    customer = load_customer(call, call.path["customer_id"])
    user = call.db.get(User, call.caller.user_id)
    assert user is not None
    today = clock.today_in(customer.timezone)
    try:
        if invoice_number is None:
            desk.pause_customer(call.db, customer, user, until, today)
            paused = customer.reminders_paused_until
        else:
            invoice = find_invoice(call.db, customer.company_id, invoice_number)
            if invoice is None or invoice.customer_id != customer.id:
                raise FieldErrors(
                    {"invoice_number": _("No invoice of this customer has this number.")}
                )
            desk.pause_invoice(call.db, invoice, user, until, today)
            paused = invoice.reminders_paused_until
    except desk.DeskError:
        raise FieldErrors({"until": _("Choose a date from today to a year ahead.")}) from None
    call.db.flush()
    return Result(
        200,
        s.HoldOut(
            customer_id=customer.id, invoice_number=invoice_number, reminders_paused_until=paused
        ),
    )


@operation(
    "POST",
    "/customers/{customer_id}/reminders/pause",
    summary="Pause a customer's reminders (or one invoice's) through a date",
    tag=TAG,
    body=s.PauseIn,
    ok=(200, s.HoldOut),
)
def pause_reminders(call: Call) -> Result:
    return _hold(call, call.body.until, call.body.invoice_number)


@operation(
    "POST",
    "/customers/{customer_id}/reminders/resume",
    summary="Resume a customer's reminders (or one invoice's)",
    tag=TAG,
    body=s.ResumeIn,
    ok=(200, s.HoldOut),
)
def resume_reminders(call: Call) -> Result:
    return _hold(call, None, call.body.invoice_number)
