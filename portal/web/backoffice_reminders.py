"""Manual actions on a customer's page: "Send a reminder now" (/admin/customers/{id}/remind:
choose, preview, edit, send through the outbox) and "Log a call" with "Schedule a
follow-up" (/admin/customers/{id}/call). Credit managers and admins act; viewers are
refused."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import clock
from portal.backoffice import queries
from portal.cases.models import DisputeReason
from portal.cases.service import CaseError
from portal.customers.models import Customer
from portal.i18n import gettext_ as _
from portal.reminders import manual
from portal.reminders.calls import CallOutcome, log_call
from portal.reminders.gsm import SMS_LIMIT
from portal.reminders.models import Channel
from portal.reminders.policy import load_policy
from portal.reminders.render import RenderError
from portal.reminders.tasks import NOTE_MAX, TaskError, schedule_follow_up
from portal.settings import Settings
from portal.users.models import User
from portal.web.backoffice import EDITORS, PREFIX, _context, _not_found, require_role
from portal.web.rendering import client_ip, render, unit_of_work

FIELD_MAX = manual.TEXT_MAX


def _errors() -> dict[str, str]:
    return {
        "channel_invalid": _("Choose email, text message or letter."),
        "template_invalid": _("Choose a message."),
        "nothing_due": _(
            "This customer has nothing to remind about: no open invoice that is not paused."
        ),
        "frozen": _("Reminders are frozen for the whole company: nothing can be sent."),
        "cap_reached": _("This customer has had the most messages allowed in 30 days."),
        "text_required": _("Write the message."),
        "text_too_long": _("The message is too long."),
        "sms_too_long": _("A text message holds 160 characters, the link included."),
        "subject_required": _("Write a subject."),
        "token_invalid": _("The form has expired: preview the message again."),
        "note_too_long": _("The note is too long."),
        "date_required": _("Give the date the customer promised to pay by."),
        "date_past": _("The date cannot be in the past."),
        "date_too_far": _("The date is too far away for a promise."),
        "empty_selection": _("Choose at least one invoice."),
        "unknown_invoice": _("Choose among the customer's open invoices."),
        "already_in_case": _("One of these invoices is already in a dispute, a plan or a promise."),
        "mixed_currencies": _("Choose invoices in one currency."),
        "message_required": _("Say what the customer disputes."),
        "message_too_long": _("The note is too long."),
        "reason_invalid": _("Choose a reason."),
        "not_found": _("The customer is not found."),
    }


def _text(form: FormData, name: str, limit: int = FIELD_MAX) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _customer(request: Request, db: Session) -> tuple[User, Customer] | Response:
    user = require_role(request, db, *EDITORS)
    if isinstance(user, Response):
        return user
    customer = queries.get_customer(
        db, request.app.state.company_id, request.path_params["customer_id"]
    )
    if customer is None:
        return _not_found(request, user)
    return user, customer


# --- send a reminder now ----------------------------------------------------------------------


def _remind_page(
    request: Request,
    db: Session,
    user: User,
    customer: Customer,
    values: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
    preview: manual.Draft | None = None,
    status_code: int = 200,
) -> Response:
    settings: Settings = request.app.state.settings
    policy = load_policy(db, customer.company_id, settings.reminders)
    return render(
        request,
        "backoffice/remind.html",
        _context(
            user,
            customer=customer,
            values=values,
            errors=errors or {},
            preview=preview,
            policy=policy,
            quiet_today=policy.is_quiet(clock.today_in(customer.timezone)),
            sms_limit=SMS_LIMIT,
            sms_length=manual.sms_length(values.get("text", ""))
            if values.get("channel") == "sms"
            else 0,
        ),
        status_code=status_code,
    )


def remind_form(request: Request) -> Response:
    """The choice of channel and message, then (with ?preview) the message to edit."""
    state = request.app.state
    query = request.query_params
    values = {
        "channel": query.get("channel", "email")[:16],
        "template": query.get("template", "reminder_overdue")[:64],
    }
    with unit_of_work(request) as db:
        found = _customer(request, db)
        if isinstance(found, Response):
            return found
        user, customer = found
        if "preview" not in query:
            return _remind_page(request, db, user, customer, values)
        try:
            draft = manual.draft(
                db,
                state.templates,
                state.site.look.identity(state.settings.company),
                customer,
                channel=values["channel"],
                template=values["template"],
            )
        except (manual.ManualError, RenderError) as error:
            key = error.key if isinstance(error, manual.ManualError) else "sms_too_long"
            field = error.field if isinstance(error, manual.ManualError) else "channel"
            return _remind_page(
                request, db, user, customer, values, errors={field: _errors()[key]}, status_code=400
            )
        values.update(subject=draft.subject, text=draft.text, token=secrets.token_hex(8))
        return _remind_page(request, db, user, customer, values, preview=draft)


async def remind_send(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    return await run_in_threadpool(_remind_send, request, form)


def _remind_send(request: Request, form: FormData) -> Response:
    settings: Settings = request.app.state.settings
    values = {
        name: _text(form, name) for name in ("channel", "template", "subject", "text", "token")
    }
    with unit_of_work(request) as db:
        found = _customer(request, db)
        if isinstance(found, Response):
            return found
        user, customer = found
        try:
            manual.queue(
                db,
                customer,
                user_id=user.id,
                policy=load_policy(db, customer.company_id, settings.reminders),
                token=values["token"],
                channel=values["channel"],
                template=values["template"],
                subject=values["subject"],
                text=values["text"],
            )
        except manual.ManualError as error:
            preview = manual.Draft(
                Channel(values["channel"])
                if values["channel"] in ("email", "sms", "letter")
                else Channel.EMAIL,
                values["template"],
                values["subject"],
                values["text"],
                [],
            )
            return _remind_page(
                request,
                db,
                user,
                customer,
                values,
                errors={error.field: _errors()[error.key]},
                preview=preview,
                status_code=400,
            )
    return RedirectResponse(
        f"{PREFIX}/customers/{customer.id}?done=reminder-queued", status_code=303
    )


# --- log a call, schedule a follow-up ----------------------------------------------------------


def _call_page(
    request: Request,
    db: Session,
    user: User,
    customer: Customer,
    values: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    file = queries.customer_file(db, request.app.state.company_id, customer.id)
    assert file is not None
    return render(
        request,
        "backoffice/call.html",
        _context(
            user,
            customer=customer,
            invoices=file.open_invoices,
            values=values,
            errors=errors or {},
            outcomes=[outcome.value for outcome in CallOutcome],
            reasons=[reason.value for reason in DisputeReason],
            note_max=NOTE_MAX,
            today=clock.today_in(customer.timezone),
        ),
        status_code=status_code,
    )


def call_form(request: Request) -> Response:
    with unit_of_work(request) as db:
        found = _customer(request, db)
        if isinstance(found, Response):
            return found
        user, customer = found
        return _call_page(request, db, user, customer, {"outcome": "no_answer", "invoices": []})


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        return None


async def call_log(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=200)
    return await run_in_threadpool(_call_log, request, form)


def _call_log(request: Request, form: FormData) -> Response:
    settings: Settings = request.app.state.settings
    invoice_ids = [int(v) for v in form.getlist("invoices") if isinstance(v, str) and v.isdigit()]
    values: dict[str, Any] = {
        name: _text(form, name, NOTE_MAX + 1)
        for name in ("outcome", "note", "promised_date", "reason")
    }
    values["invoices"] = invoice_ids
    with unit_of_work(request) as db:
        found = _customer(request, db)
        if isinstance(found, Response):
            return found
        user, customer = found
        errors: dict[str, str] = {}
        try:
            outcome = CallOutcome(values["outcome"])
        except ValueError:
            errors["outcome"] = _("Choose what came of the call.")
        promised = _date(values["promised_date"])
        if not errors and outcome is CallOutcome.PROMISE and promised is None:
            errors["promised_date"] = _errors()["date_required"]
        if not errors:
            try:
                with db.begin_nested():  # a refusal half-way leaves nothing behind
                    log_call(
                        db,
                        customer,
                        user_id=user.id,
                        outcome=outcome,
                        note=values["note"],
                        invoice_ids=invoice_ids,
                        promised_date=promised,
                        dispute_reason=values["reason"],
                        today=clock.today_in(customer.timezone),
                        policy=settings.cases,
                        client_ip=client_ip(request),
                    )
            except (TaskError, CaseError) as error:
                field = {
                    "date_past": "promised_date",
                    "date_too_far": "promised_date",
                    "date_required": "promised_date",
                    "note_too_long": "note",
                    "message_required": "note",
                    "message_too_long": "note",
                    "reason_invalid": "reason",
                }.get(error.key, "invoices")
                errors[field] = _errors().get(error.key, _("This cannot be done."))
        if errors:
            return _call_page(request, db, user, customer, values, errors=errors, status_code=400)
    return RedirectResponse(f"{PREFIX}/customers/{customer.id}?done=call-logged", status_code=303)


async def follow_up(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    return await run_in_threadpool(_follow_up, request, form)


def _follow_up(request: Request, form: FormData) -> Response:
    values: dict[str, Any] = {
        "on": _text(form, "on", 16),
        "follow_note": _text(form, "follow_note", NOTE_MAX + 1),
        "outcome": "no_answer",
        "invoices": [],
    }
    with unit_of_work(request) as db:
        found = _customer(request, db)
        if isinstance(found, Response):
            return found
        user, customer = found
        on = _date(values["on"])
        error_key = "date_required" if on is None else ""
        if on is not None:
            try:
                schedule_follow_up(
                    db,
                    customer.company_id,
                    customer.id,
                    user_id=user.id,
                    on=on,
                    note=values["follow_note"],
                )
            except TaskError as error:
                error_key = error.key
        if error_key:
            field = "follow_note" if error_key == "note_too_long" else "on"
            message = (
                _("Give the day of the call, today or later.")
                if error_key != "note_too_long"
                else _errors()["note_too_long"]
            )
            return _call_page(
                request, db, user, customer, values, errors={field: message}, status_code=400
            )
    return RedirectResponse(f"{PREFIX}/customers/{customer.id}?done=follow-up", status_code=303)


routes = [
    Route(f"{PREFIX}/customers/{{customer_id:int}}/remind", remind_form, name="admin_remind"),
    Route(
        f"{PREFIX}/customers/{{customer_id:int}}/remind",
        remind_send,
        methods=["POST"],
        name="admin_remind_send",
    ),
    Route(f"{PREFIX}/customers/{{customer_id:int}}/call", call_form, name="admin_call"),
    Route(
        f"{PREFIX}/customers/{{customer_id:int}}/call",
        call_log,
        methods=["POST"],
        name="admin_call_log",
    ),
    Route(
        f"{PREFIX}/customers/{{customer_id:int}}/follow-up",
        follow_up,
        methods=["POST"],
        name="admin_follow_up",
    ),
]
