"""The debtor proposes a payment plan: the form, its live preview and the proposal."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portal import clock
from portal.access.service import PortalAccess
from portal.cases import digest, notify
from portal.cases import service as cases
from portal.cases.models import CaseStatus
from portal.cases.service import CaseError
from portal.settings import Settings
from portal.web.case_forms import (
    agreement_of,
    form_text,
    invoice_ids_from,
    mail_task,
    open_lines,
    parse_plan,
    plan_values,
    selected_from_query,
)
from portal.web.case_messages import (
    error_message,
    violation_message,
)
from portal.web.context import (
    choose_language,
    current_access,
    use_language,
)
from portal.web.portal import _no_session
from portal.web.rendering import is_htmx, render, unit_of_work


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
    lines, taken = open_lines(db, access)
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
            request, db, access, selected=selected_from_query(request), values=plan_values(None)
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
        selected = invoice_ids_from(raw)
        values = plan_values(form)
        proposing = form_text(form, "action", 16) == "propose" and not is_htmx(request)
        today = clock.today_in(access.customer.timezone)
        preview = None
        try:
            if selected is None:
                raise CaseError(CaseError.UNKNOWN_INVOICE)
            currency = settings.company.currency
            first, count, monthly = parse_plan(values, currency)
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
                agreement=agreement_of(request),
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
        f"/cases/{case_id}", status_code=303, background=mail_task(request, mails)
    )
