"""The debtor's cases: dispute invoices, propose a payment plan, promise to pay, the threads."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from portal import clock, i18n
from portal.access.service import PortalAccess
from portal.cases import attachments as files
from portal.cases import digest, notify
from portal.cases import service as cases
from portal.cases.attachments import AttachmentRejected, CheckedFile, IncomingFile
from portal.cases.models import Case, CaseKind, CaseStatus, DisputeReason
from portal.cases.policy import PlanError
from portal.cases.service import AgreementInfo, CaseError
from portal.i18n import gettext_ as _
from portal.invoices import service as invoices
from portal.invoices.service import InvoiceLine, Scope
from portal.money import format_money, parse_amount
from portal.settings import Settings
from portal.timeline.models import Actor
from portal.web.context import (
    choose_language,
    current_access,
    session_cookie_name,
    use_language,
)
from portal.web.portal import _no_session
from portal.web.rendering import client_ip, is_htmx, render, unit_of_work

DATE_UNREADABLE = "date_unreadable"
AMOUNT_UNREADABLE = "amount_unreadable"
FORM_LIMIT = 6000


def error_message(key: str, settings: Settings) -> str:
    """The translated sentence for a case, plan or attachment error key."""
    policy = settings.cases
    messages = {
        CaseError.EMPTY_SELECTION: _("Choose at least one invoice."),
        CaseError.UNKNOWN_INVOICE: _(
            "One of the chosen invoices is not open any more. Reload the page and choose again."
        ),
        CaseError.MIXED_CURRENCIES: _(
            "The chosen invoices are in different currencies: choose invoices in one currency."
        ),
        CaseError.ALREADY_IN_CASE: _(
            "One of the chosen invoices is already in a dispute, a payment plan or a promise."
        ),
        CaseError.NOTHING_DUE: _("Nothing remains to be paid on these invoices."),
        CaseError.MESSAGE_REQUIRED: _("Write a message."),
        CaseError.MESSAGE_TOO_LONG: _(
            "The message is too long (%(max)d characters at most).", max=cases.MESSAGE_MAX
        ),
        CaseError.REASON_INVALID: _("Choose a reason."),
        CaseError.DATE_PAST: _("The date cannot be in the past."),
        CaseError.DATE_TOO_FAR: _(
            "The date can be at most %(days)d days from today.", days=policy.promise_max_days
        ),
        CaseError.WRONG_STATE: _("This can no longer be done: the case has changed."),
        CaseError.AMOUNT_INVALID: _("Enter a valid amount."),
        CaseError.INVOICE_NOT_IN_CASE: _("Choose one of the invoices of this case."),
        CaseError.OUTCOME_INVALID: _("Choose a decision."),
        CaseError.TOO_MANY_MESSAGES: _(
            "You have sent many messages in a short time. Please wait an hour before writing "
            "again: our team reads every message."
        ),
        PlanError.COUNT_INVALID: _("Enter a number of instalments between 1 and 60."),
        PlanError.MONTHLY_INVALID: _(
            "Enter a monthly amount that pays everything in at most 60 instalments."
        ),
        PlanError.FIRST_DATE_PAST: _("The first payment date cannot be in the past."),
        PlanError.FIRST_DATE_INVALID: _("Enter the date of the first payment."),
        PlanError.NOTHING_TO_PLAN: _("Nothing remains to be paid on these invoices."),
        AttachmentRejected.TOO_LARGE: _(
            "A file is too large (%(size)s at most).",
            size=_("%(megabytes)d MB", megabytes=policy.attachment_max_bytes // (1024 * 1024) or 1),
        ),
        AttachmentRejected.TOO_MANY: _(
            "Attach %(count)d files at most.", count=policy.attachment_max_count
        ),
        AttachmentRejected.WRONG_TYPE: _("Attach PDF documents or PNG or JPEG images only."),
        AttachmentRejected.EMPTY: _("A file is empty."),
        DATE_UNREADABLE: _("Enter a date."),
        AMOUNT_UNREADABLE: _("Enter an amount, for example 150.00."),
    }
    return messages.get(key, _("Something went wrong. Please try again."))


def violation_message(key: str, settings: Settings, currency: str) -> str:
    policy = settings.cases
    locale = i18n.current_locale.get()
    messages = {
        "too_many_instalments": _(
            "More than %(count)d instalments.", count=policy.plan_max_instalments
        ),
        "too_long": _(
            "The last payment is more than %(days)d days away.", days=policy.plan_max_days
        ),
        "instalment_too_small": _(
            "Instalments under %(amount)s.",
            amount=format_money(policy.plan_min_instalment_minor, currency, locale),
        ),
        "total_too_high": _(
            "A total above %(amount)s.",
            amount=format_money(policy.plan_max_total_minor, currency, locale),
        ),
        "risk_not_allowed": _("Your account's plans are agreed with our team."),
        "currency_not_allowed": _("Plans in this currency are agreed with our team."),
    }
    return messages.get(key, key)


def reason_labels() -> dict[str, str]:
    return {
        DisputeReason.NOT_RECEIVED: _("I did not receive the goods or the service"),
        DisputeReason.WRONG_AMOUNT: _("The amount is wrong"),
        DisputeReason.NOT_AS_AGREED: _("The goods or the service are not as agreed"),
        DisputeReason.ALREADY_PAID: _("I have already paid"),
        DisputeReason.OTHER: _("Another reason"),
    }


def _scope(access: PortalAccess) -> Scope:
    return Scope(access.customer.id, access.invoice_ids)


def _ints(values: list[Any]) -> list[int] | None:
    out = []
    for value in values:
        if not isinstance(value, str) or not value.strip().isdigit():
            return None
        out.append(int(value))
    return out


def _text(form: FormData, name: str, limit: int = FORM_LIMIT) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _agreement(request: Request) -> AgreementInfo:
    return AgreementInfo(client_ip(request), request.headers.get("user-agent"))


def _mail_task(request: Request, emails: list[notify.CaseEmail | None]) -> BackgroundTask | None:
    ready = [e for e in emails if e is not None]
    if not ready:
        return None
    state = request.app.state
    return BackgroundTask(notify.send_all, state.templates, state.mailer, state.settings, ready)


def _open_lines(db: Session, access: PortalAccess) -> tuple[list[InvoiceLine], set[int]]:
    """The open invoices, and those already in a live case (they cannot join another)."""
    lines = invoices.open_invoices(db, _scope(access))
    taken = set(cases.live_case_of(db, [i.id for i in lines]))
    return lines, taken


async def _read_form(request: Request) -> tuple[FormData, list[IncomingFile]]:
    settings: Settings = request.app.state.settings
    limit = settings.cases.attachment_max_bytes
    form = await request.form(
        max_files=settings.cases.attachment_max_count + 1,
        max_fields=200,
        max_part_size=FORM_LIMIT * 4,
    )
    incoming = []
    for upload in form.getlist("attachment"):
        if isinstance(upload, UploadFile):
            data = await upload.read(limit + 1)
            incoming.append(IncomingFile(upload.filename or "", data))
    return form, incoming


def _check(settings: Settings, incoming: list[IncomingFile]) -> list[CheckedFile]:
    return files.check_files(
        incoming, settings.cases.attachment_max_bytes, settings.cases.attachment_max_count
    )


def _selected_from_query(request: Request) -> set[str]:
    return {v for v in request.query_params.getlist("invoice") if v.isdigit()}


# --- the list and one case -------------------------------------------------------------------


def case_list(request: Request) -> Response:
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        found = [
            c
            for c in cases.customer_cases(db, access.customer.id)
            if access.invoice_ids is None or set(c.invoice_ids) <= access.invoice_ids
        ]
        return render(
            request,
            "portal/cases.html",
            {"access": access, "customer": access.customer, "cases": found},
        )


def _case_or_404(db: Session, request: Request, access: PortalAccess) -> Case:
    case = cases.debtor_case(
        db, access.customer.id, request.path_params["case_id"], access.invoice_ids
    )
    if case is None:
        raise HTTPException(404)
    return case


def _case_page(
    request: Request,
    db: Session,
    access: PortalAccess,
    case: Case,
    *,
    error: str | None = None,
    message: str = "",
    status_code: int = 200,
) -> Response:
    settings: Settings = request.app.state.settings
    today = clock.today_in(access.customer.timezone)
    states = cases.instalment_states(db, case) if case.kind is CaseKind.PLAN else []
    return render(
        request,
        "portal/case.html",
        {
            "access": access,
            "customer": access.customer,
            "case": case,
            "today": today,
            "invoices": cases.case_invoices(db, case),
            "messages": cases.thread(db, case.id),
            "states": states,
            "next": cases.next_instalment(db, access.customer.id, case.id),
            "reasons": reason_labels(),
            "error": error_message(error, settings) if error else None,
            "message": message,
            "max_files": settings.cases.attachment_max_count,
        },
        status_code=status_code,
    )


def case_detail(request: Request) -> Response:
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        case = _case_or_404(db, request, access)
        return _case_page(request, db, access, case)


def _without_session_cookie(request: Request) -> bool:
    """No session cookie at all: answer before reading the files (RequestBodyLimit caps
    the rest)."""
    return not request.cookies.get(session_cookie_name(request.app.state.settings))


async def post_reply(request: Request) -> Response:
    if _without_session_cookie(request):
        return _no_session(request)
    form, incoming = await _read_form(request)
    return await run_in_threadpool(_post_reply, request, form, incoming)


def _post_reply(request: Request, form: FormData, incoming: list[IncomingFile]) -> Response:
    settings: Settings = request.app.state.settings
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        case = _case_or_404(db, request, access)
        body = _text(form, "message")
        try:
            checked = _check(settings, incoming)
            digest.check_message_rate(
                db,
                case,
                now=clock.now(),
                per_case=settings.cases.case_messages_per_hour,
                per_customer=settings.cases.customer_messages_per_hour,
            )
            cases.post_message(
                db,
                case,
                body,
                author=Actor.DEBTOR,
                attachments=checked,
                attachments_dir=settings.cases.attachments_dir,
            )
        except (CaseError, AttachmentRejected) as error:
            status = 429 if error.key == CaseError.TOO_MANY_MESSAGES else 400
            return _case_page(
                request, db, access, case, error=error.key, message=body, status_code=status
            )
        mail = digest.tell_now(db, settings, case)
        case_id = case.id
    return RedirectResponse(
        f"/cases/{case_id}#thread", status_code=303, background=_mail_task(request, [mail])
    )


def accept_counter(request: Request) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        case = _case_or_404(db, request, access)
        try:
            cases.accept_counter_proposal(db, case, _agreement(request))
        except CaseError as error:
            return _case_page(request, db, access, case, error=error.key, status_code=409)
        mail = notify.debtor_email(db, state.signer, settings, case, "plan_accepted")
        case_id = case.id
    return RedirectResponse(
        f"/cases/{case_id}", status_code=303, background=_mail_task(request, [mail])
    )


def attachment(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            raise HTTPException(404)
        case = _case_or_404(db, request, access)
        found = cases.attachment_for_case(db, case, request.path_params["attachment_id"])
        if found is None:
            raise HTTPException(404)
        return attachment_response(settings, found)


def attachment_response(settings: Settings, found: Any) -> Response:
    path = files.stored_path(settings.cases.attachments_dir, found.storage_name)
    if path is None:
        raise HTTPException(404)
    # An ASCII fallback, and the real name encoded (RFC 6266/5987): headers are Latin-1.
    fallback = found.filename.encode("ascii", "replace").decode().replace("?", "_")
    return FileResponse(
        path,
        media_type=found.content_type,
        headers={
            "Content-Disposition": (
                f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(found.filename)}"
            ),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# --- dispute ---------------------------------------------------------------------------------


def _dispute_page(
    request: Request,
    db: Session,
    access: PortalAccess,
    *,
    selected: set[str],
    reason: str = "",
    message: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    settings: Settings = request.app.state.settings
    lines, taken = _open_lines(db, access)
    return render(
        request,
        "portal/dispute_new.html",
        {
            "access": access,
            "customer": access.customer,
            "lines": lines,
            "taken": taken,
            "selected": selected,
            "reasons": reason_labels(),
            "reason": reason,
            "message": message,
            "error": error_message(error, settings) if error else None,
            "error_key": error,
            "max_files": settings.cases.attachment_max_count,
            "max_mb": settings.cases.attachment_max_bytes // (1024 * 1024) or 1,
        },
        status_code=status_code,
    )


def dispute_form(request: Request) -> Response:
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        return _dispute_page(request, db, access, selected=_selected_from_query(request))


async def dispute_submit(request: Request) -> Response:
    if _without_session_cookie(request):
        return _no_session(request)
    form, incoming = await _read_form(request)
    return await run_in_threadpool(_dispute_submit, request, form, incoming)


def _dispute_submit(request: Request, form: FormData, incoming: list[IncomingFile]) -> Response:
    settings: Settings = request.app.state.settings
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        raw = [str(v) for v in form.getlist("invoice")]
        selected = _ints(raw)
        reason, message = _text(form, "reason", 32), _text(form, "message")
        try:
            if selected is None:
                raise CaseError(CaseError.UNKNOWN_INVOICE)
            checked = _check(settings, incoming)
            case = cases.open_dispute(
                db,
                access.customer,
                access.invoice_ids,
                selected,
                reason=reason,
                message=message,
                attachments=checked,
                attachments_dir=settings.cases.attachments_dir,
                answer_days=settings.cases.review_days,
            )
        except (CaseError, AttachmentRejected) as error:
            return _dispute_page(
                request,
                db,
                access,
                selected=set(raw),
                reason=reason,
                message=message,
                error=error.key,
                status_code=400,
            )
        digest.mark_told(db, case)
        mail = notify.staff_email(db, settings, case, "dispute_opened")
        case_id = case.id
    return RedirectResponse(
        f"/cases/{case_id}", status_code=303, background=_mail_task(request, [mail])
    )


# --- payment plan ----------------------------------------------------------------------------


def _plan_values(form: FormData | None) -> dict[str, str]:
    if form is None:
        return {"mode": "count", "count": "3", "monthly": "", "first_date": "", "message": ""}
    return {
        "mode": "monthly" if _text(form, "mode", 16) == "monthly" else "count",
        "count": _text(form, "count", 8).strip(),
        "monthly": _text(form, "monthly", 32).strip(),
        "first_date": _text(form, "first_date", 16).strip(),
        "message": _text(form, "message"),
    }


def _parse_plan(values: dict[str, str], currency: str) -> tuple[dt.date, int | None, int | None]:
    try:
        first = dt.date.fromisoformat(values["first_date"])
    except ValueError:
        raise CaseError(PlanError.FIRST_DATE_INVALID) from None
    if values["mode"] == "monthly":
        try:
            return first, None, parse_amount(values["monthly"], currency)
        except ValueError:
            raise CaseError(AMOUNT_UNREADABLE) from None
    if not values["count"].isdigit():
        raise CaseError(PlanError.COUNT_INVALID)
    return first, int(values["count"]), None


def _plan_page(
    request: Request,
    db: Session,
    access: PortalAccess,
    *,
    selected: set[str],
    values: dict[str, str],
    preview: cases.PlanPreview | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    settings: Settings = request.app.state.settings
    lines, taken = _open_lines(db, access)
    today = clock.today_in(access.customer.timezone)
    if not values["first_date"]:
        values = {**values, "first_date": (today + dt.timedelta(days=7)).isoformat()}
    violations = (
        [violation_message(v, settings, preview.currency) for v in preview.verdict.violations]
        if preview
        else []
    )
    return render(
        request,
        "portal/plan_new.html",
        {
            "access": access,
            "customer": access.customer,
            "lines": lines,
            "taken": taken,
            "selected": selected,
            "values": values,
            "today": today,
            "preview": preview,
            "violations": violations,
            "review_days": settings.cases.review_days,
            "error": error_message(error, settings) if error else None,
            "error_key": error,
        },
        status_code=status_code,
        block="plan_feedback",
    )


def plan_form(request: Request) -> Response:
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        return _plan_page(
            request, db, access, selected=_selected_from_query(request), values=_plan_values(None)
        )


async def plan_submit(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=200)
    return await run_in_threadpool(_plan_submit, request, form)


def _plan_submit(request: Request, form: FormData) -> Response:
    """``action=preview`` (and every htmx request) shows the verdict; ``propose`` commits."""
    state = request.app.state
    settings: Settings = state.settings
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        raw = [str(v) for v in form.getlist("invoice")]
        selected = _ints(raw)
        values = _plan_values(form)
        proposing = _text(form, "action", 16) == "propose" and not is_htmx(request)
        today = clock.today_in(access.customer.timezone)
        preview = None
        try:
            if selected is None:
                raise CaseError(CaseError.UNKNOWN_INVOICE)
            currency = settings.company.currency
            first, count, monthly = _parse_plan(values, currency)
            common: dict[str, Any] = {
                "first_date": first,
                "today": today,
                "policy": settings.cases,
                "company_currency": settings.company.currency,
                "count": count,
                "monthly_minor": monthly,
            }
            if not proposing:
                preview = cases.preview_plan(
                    db, access.customer, access.invoice_ids, selected, **common
                )
                return _plan_page(
                    request, db, access, selected=set(raw), values=values, preview=preview
                )
            case = cases.propose_plan(
                db,
                access.customer,
                access.invoice_ids,
                selected,
                agreement=_agreement(request),
                message=values["message"],
                **common,
            )
        except CaseError as error:
            return _plan_page(
                request,
                db,
                access,
                selected=set(raw),
                values=values,
                error=error.key,
                status_code=200 if is_htmx(request) else 400,
            )
        within = case.status is CaseStatus.ACTIVE
        digest.mark_told(db, case)
        mails = [
            notify.debtor_email(
                db, state.signer, settings, case, "plan_accepted" if within else "plan_review"
            ),
            None if within else notify.staff_email(db, settings, case, "plan_review"),
        ]
        case_id = case.id
    return RedirectResponse(
        f"/cases/{case_id}", status_code=303, background=_mail_task(request, mails)
    )


# --- promise to pay --------------------------------------------------------------------------


def _promise_page(
    request: Request,
    db: Session,
    access: PortalAccess,
    *,
    selected: set[str],
    promised: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    settings: Settings = request.app.state.settings
    lines, taken = _open_lines(db, access)
    today = clock.today_in(access.customer.timezone)
    return render(
        request,
        "portal/promise_new.html",
        {
            "access": access,
            "customer": access.customer,
            "lines": lines,
            "taken": taken,
            "selected": selected,
            "promised": promised or (today + dt.timedelta(days=7)).isoformat(),
            "min_date": today.isoformat(),
            "max_date": (today + dt.timedelta(days=settings.cases.promise_max_days)).isoformat(),
            "max_days": settings.cases.promise_max_days,
            "error": error_message(error, settings) if error else None,
            "error_key": error,
        },
        status_code=status_code,
    )


def promise_form(request: Request) -> Response:
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        return _promise_page(request, db, access, selected=_selected_from_query(request))


async def promise_submit(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=200)
    return await run_in_threadpool(_promise_submit, request, form)


def _promise_submit(request: Request, form: FormData) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        raw = [str(v) for v in form.getlist("invoice")]
        promised = _text(form, "promised_date", 16).strip()
        today = clock.today_in(access.customer.timezone)
        try:
            selected = _ints(raw)
            if selected is None:
                raise CaseError(CaseError.UNKNOWN_INVOICE)
            try:
                date = dt.date.fromisoformat(promised)
            except ValueError:
                raise CaseError(DATE_UNREADABLE) from None
            case = cases.promise_to_pay(
                db,
                access.customer,
                access.invoice_ids,
                selected,
                promised_date=date,
                today=today,
                policy=settings.cases,
                agreement=_agreement(request),
            )
        except CaseError as error:
            return _promise_page(
                request,
                db,
                access,
                selected=set(raw),
                promised=promised,
                error=error.key,
                status_code=400,
            )
        mail = notify.debtor_email(db, state.signer, settings, case, "promise_made")
        case_id = case.id
    return RedirectResponse(
        f"/cases/{case_id}", status_code=303, background=_mail_task(request, [mail])
    )


routes = [
    Route("/cases", case_list, name="cases"),
    Route("/cases/{case_id:int}", case_detail, name="case"),
    Route("/cases/{case_id:int}/messages", post_reply, methods=["POST"], name="case_reply"),
    Route("/cases/{case_id:int}/accept", accept_counter, methods=["POST"], name="case_accept"),
    Route(
        "/cases/{case_id:int}/attachments/{attachment_id:int}",
        attachment,
        name="case_attachment",
    ),
    Route("/disputes/new", dispute_form, name="dispute_form"),
    Route("/disputes", dispute_submit, methods=["POST"], name="dispute_submit"),
    Route("/plans/new", plan_form, name="plan_form"),
    Route("/plans", plan_submit, methods=["POST"], name="plan_submit"),
    Route("/promises/new", promise_form, name="promise_form"),
    Route("/promises", promise_submit, methods=["POST"], name="promise_submit"),
]
