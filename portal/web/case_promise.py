"""The debtor promises to pay by a date: the form and its submission."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portal import clock
from portal.access.service import PortalAccess
from portal.cases import notify
from portal.cases import service as cases
from portal.cases.service import CaseError
from portal.settings import Settings
from portal.web.case_forms import (
    agreement_of,
    form_text,
    invoice_ids_from,
    mail_task,
    open_lines,
    selected_from_query,
)
from portal.web.case_messages import (
    DATE_UNREADABLE,
    error_message,
)
from portal.web.context import (
    choose_language,
    current_access,
    use_language,
)
from portal.web.portal import _no_session
from portal.web.rendering import render, unit_of_work


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
    lines, taken = open_lines(db, access)
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
        return _promise_page(request, db, access, selected=selected_from_query(request))


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
        promised = form_text(form, "promised_date", 16).strip()
        today = clock.today_in(access.customer.timezone)
        try:
            selected = invoice_ids_from(raw)
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
                agreement=agreement_of(request),
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
        f"/cases/{case_id}", status_code=303, background=mail_task(request, [mail])
    )
