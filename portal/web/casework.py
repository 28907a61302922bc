"""The back office's casework: queues, a case and its decisions, pauses, notes.

Every POST asks ``require_role`` first: credit managers and admins decide, viewers read.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import clock
from portal.backoffice import queries
from portal.cases import desk, notify, queues
from portal.cases import service as cases
from portal.cases.desk import DeskError
from portal.cases.models import Case, CaseKind
from portal.cases.service import CaseError
from portal.i18n import gettext_ as _
from portal.invoices.models import Invoice
from portal.money import parse_amount
from portal.settings import Settings
from portal.timeline.models import Actor
from portal.users.models import User
from portal.web.backoffice import (
    EDITORS,
    PREFIX,
    _context,
    _format_when,
    _not_found,
    customer_page,
    require_role,
)
from portal.web.case_forms import form_text, parse_plan, plan_values
from portal.web.case_messages import (
    AMOUNT_UNREADABLE,
    error_message,
    reason_labels,
    violation_message,
)
from portal.web.cases import attachment_response
from portal.web.rendering import render, unit_of_work


def _mail_task(request: Request, emails: list[notify.CaseEmail | None]) -> BackgroundTask | None:
    ready = [e for e in emails if e is not None]
    if not ready:
        return None
    state = request.app.state
    return BackgroundTask(notify.send_all, state.templates, state.mailer, state.settings, ready)


def desk_error(key: str) -> str:
    return {
        DeskError.NOTE_REQUIRED: _("Write the note."),
        DeskError.NOTE_TOO_LONG: _(
            "The note is too long (%(max)d characters at most).", max=desk.NOTE_MAX
        ),
        DeskError.PAUSE_DATE_INVALID: _(
            "Choose a date between today and %(days)d days from now.", days=desk.PAUSE_MAX_DAYS
        ),
    }.get(key, _("Something went wrong. Please try again."))


# --- queues ----------------------------------------------------------------------------------


def queue_page(request: Request) -> Response:
    name = request.path_params["queue"]
    if name not in queues.QUEUES:
        raise HTTPException(404)
    state = request.app.state
    with unit_of_work(request) as db:
        user = require_role(request, db)
        if isinstance(user, Response):
            return user
        rows = (
            queues.transfer_queue(db, state.company_id)
            if name == "transfers"
            else queues.case_queue(db, state.company_id, name)
        )
        return render(
            request,
            "backoffice/queue.html",
            _context(
                user,
                queue=name,
                rows=rows,
                counts=queues.counts(db, state.company_id),
                reasons=reason_labels(),
                when=_format_when(state.settings.company.timezone),
            ),
        )


# --- a case ----------------------------------------------------------------------------------


def policy_breaches(db: Session, case: Case, settings: Settings) -> list[str]:
    """The rules of the plan policy the debtor's proposal broke, as the portal listed them
    (worded for the credit manager where the portal spoke to the debtor)."""
    if case.kind is not CaseKind.PLAN:
        return []
    for_manager = {
        "risk_not_allowed": _("The customer's risk segment is not among those accepted at once."),
        "currency_not_allowed": _("Plans in this currency are not accepted at once."),
    }
    return [
        for_manager.get(key) or violation_message(key, settings, case.currency)
        for key in queues.proposed_violations(db, case)
    ]


def _load_case(request: Request, db: Session) -> Case | None:
    return cases.get_case(db, request.app.state.company_id, request.path_params["case_id"])


def _case_page(
    request: Request,
    db: Session,
    user: User,
    case: Case,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    customer = queries.get_customer(db, state.company_id, case.customer_id)
    assert customer is not None
    assignee = db.get(User, case.assignee_id) if case.assignee_id else None
    today = clock.today_in(customer.timezone)
    return render(
        request,
        "backoffice/case.html",
        _context(
            user,
            case=case,
            customer=customer,
            assignee=assignee,
            today=today,
            invoices=cases.case_invoices(db, case),
            messages=cases.thread(db, case.id),
            agreements=cases.agreements(db, case.id),
            states=cases.instalment_states(db, case) if case.kind is CaseKind.PLAN else [],
            breaches=policy_breaches(db, case, settings),
            reasons=reason_labels(),
            error=error_message(error, settings) if error else None,
            error_key=error,
            form=form or {},
            counter=plan_values(None) | {"first_date": (today + dt.timedelta(days=7)).isoformat()},
            when=_format_when(settings.company.timezone),
            notice=request.query_params.get("done"),
        ),
        status_code=status_code,
    )


def case_detail(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db)
        if isinstance(user, Response):
            return user
        case = _load_case(request, db)
        if case is None:
            return _not_found(request, user)
        return _case_page(request, db, user, case)


def case_attachment(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db)
        if isinstance(user, Response):
            return user
        case = _load_case(request, db)
        if case is None:
            raise HTTPException(404)
        found = cases.attachment_for_case(db, case, request.path_params["attachment_id"])
        if found is None:
            raise HTTPException(404)
        return attachment_response(request.app.state.settings, found)


async def case_action(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=100)
    return await run_in_threadpool(_case_action, request, form)


def _case_action(request: Request, form: FormData) -> Response:
    """One decision on a case: plan accept/reject/counter, dispute resolution, reply, close."""
    action = request.path_params["action"]
    state = request.app.state
    settings: Settings = state.settings
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        case = _load_case(request, db)
        if case is None:
            return _not_found(request, user)
        customer = queries.get_customer(db, state.company_id, case.customer_id)
        assert customer is not None
        today = clock.today_in(customer.timezone)
        note = form_text(form, "note")
        values = {k: form_text(form, k, 64) for k in ("outcome", "invoice", "amount")} | {
            "note": note
        }
        mails: list[notify.CaseEmail | None] = []

        def to_debtor(event: str) -> notify.CaseEmail | None:
            assert case is not None
            assert user is not None
            assert not isinstance(user, Response)
            return notify.debtor_email(
                db,
                state.signer,
                settings,
                case,
                event,
                note=note,
                actor=Actor.USER,
                actor_id=str(user.id),
            )

        try:
            if action == "accept":
                cases.decide_plan(db, case, user, accept=True, note=note)
                mails.append(to_debtor("plan_accepted"))
            elif action == "reject":
                cases.decide_plan(db, case, user, accept=False, note=note)
                mails.append(to_debtor("plan_rejected"))
            elif action == "counter":
                plan = plan_values(form)
                values |= plan
                first, count, monthly = parse_plan(plan, case.currency)
                cases.counter_propose(
                    db,
                    case,
                    user,
                    first_date=first,
                    today=today,
                    count=count,
                    monthly_minor=monthly,
                    note=note,
                )
                mails.append(to_debtor("plan_countered"))
            elif action == "resolve":
                outcome = values["outcome"]
                invoice_id = int(values["invoice"]) if values["invoice"].isdigit() else None
                amount = None
                if outcome in ("credit", "adjust"):
                    try:
                        amount = parse_amount(values["amount"], case.currency)
                    except ValueError:
                        raise CaseError(AMOUNT_UNREADABLE) from None
                cases.resolve_dispute(
                    db,
                    case,
                    user,
                    outcome=outcome,
                    note=note,
                    invoice_id=invoice_id,
                    amount_minor=amount,
                )
                event = "dispute_rejected" if outcome == "reject" else "dispute_resolved"
                mails.append(to_debtor(event))
            elif action == "reply":
                cases.post_message(db, case, note, author=Actor.USER, user=user)
                mails.append(to_debtor("reply"))
            elif action == "close":
                cases.close_broken(db, case, user, note)
            else:
                raise HTTPException(404)
        except CaseError as error:
            return _case_page(
                request, db, user, case, error=error.key, form=values, status_code=400
            )
        case_id = case.id
    return RedirectResponse(
        f"{PREFIX}/cases/{case_id}?done={action}",
        status_code=303,
        background=_mail_task(request, mails),
    )


# --- customer desk: pauses and notes ---------------------------------------------------------


def _desk_redirect(customer_id: int, notice: str) -> str:
    return f"{PREFIX}/customers/{customer_id}?done={notice}#desk"


async def customer_desk(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=20)
    return await run_in_threadpool(_customer_desk, request, form)


def _customer_desk(request: Request, form: FormData) -> Response:
    action = request.path_params["action"]
    state = request.app.state
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        customer = queries.get_customer(db, state.company_id, request.path_params["customer_id"])
        if customer is None:
            return _not_found(request, user)
        today = clock.today_in(customer.timezone)
        try:
            if action == "note":
                desk.add_note(db, customer, user, form_text(form, "note"))
            elif action in ("pause", "resume", "pause-invoice", "resume-invoice"):
                until = None
                if action.startswith("pause"):
                    try:
                        until = dt.date.fromisoformat(form_text(form, "until", 16).strip())
                    except ValueError:
                        raise DeskError(DeskError.PAUSE_DATE_INVALID) from None
                if action.endswith("invoice"):
                    raw = form_text(form, "invoice", 20)
                    invoice = db.get(Invoice, int(raw)) if raw.isdigit() else None
                    if invoice is None or invoice.customer_id != customer.id:
                        return _not_found(request, user)
                    desk.pause_invoice(db, invoice, user, until, today)
                else:
                    desk.pause_customer(db, customer, user, until, today)
            else:
                raise HTTPException(404)
        except DeskError as error:
            return customer_page(request, db, user, customer.id, desk_error=desk_error(error.key))
        customer_id = customer.id
    return RedirectResponse(_desk_redirect(customer_id, action), status_code=303)


routes = [
    Route(f"{PREFIX}/queues/{{queue:str}}", queue_page, name="admin_queue"),
    Route(f"{PREFIX}/cases/{{case_id:int}}", case_detail, name="admin_case"),
    Route(
        f"{PREFIX}/cases/{{case_id:int}}/attachments/{{attachment_id:int}}",
        case_attachment,
        name="admin_case_attachment",
    ),
    Route(
        f"{PREFIX}/cases/{{case_id:int}}/{{action:str}}",
        case_action,
        methods=["POST"],
        name="admin_case_action",
    ),
    Route(
        f"{PREFIX}/customers/{{customer_id:int}}/desk/{{action:str}}",
        customer_desk,
        methods=["POST"],
        name="admin_customer_desk",
    ),
]
