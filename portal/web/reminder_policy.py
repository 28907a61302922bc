"""/admin/reminders/policy: the company's cap per customer per 30 days, its quiet periods,
and the switch that freezes every reminder (with a reason, shown on every back-office page
while it is on). Credit managers and admins change them; viewers read."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.changes import FieldErrors
from portal.reminders.policy import REASON_MAX, load_policy, save_limits, set_frozen
from portal.settings import Settings
from portal.users.models import User
from portal.web.backoffice import EDITORS, PREFIX, _context, require_role
from portal.web.rendering import render, unit_of_work

PATH = f"{PREFIX}/reminders/policy"
NOTICES = ("saved", "frozen", "thawed")


def _page(
    request: Request,
    db: Session,
    user: User,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    settings: Settings = request.app.state.settings
    policy = load_policy(db, request.app.state.company_id, settings.reminders)
    notice = request.query_params.get("done")
    shown: dict[str, Any] = {
        "monthly_cap": str(policy.monthly_cap),
        "quiet_periods": policy.quiet_text,
        "reason": "",
        **(values or {}),
    }
    return render(
        request,
        "backoffice/reminder_policy.html",
        _context(
            user,
            policy=policy,
            values=shown,
            errors=errors or {},
            notice=notice if notice in NOTICES else None,
            reason_max=REASON_MAX,
        ),
        status_code=status_code,
    )


def policy_page(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db)
        if isinstance(user, Response):
            return user
        return _page(request, db, user)


async def save(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    return await run_in_threadpool(_save, request, form)


def _value(form: FormData, name: str) -> str:
    value = form.get(name)
    return value[:1000] if isinstance(value, str) else ""


def _save(request: Request, form: FormData) -> Response:
    values = {name: _value(form, name) for name in ("monthly_cap", "quiet_periods")}
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        try:
            save_limits(db, request.app.state.company_id, user.id, **values)
        except FieldErrors as refused:
            return _page(request, db, user, values=values, errors=refused.errors, status_code=400)
    return RedirectResponse(f"{PATH}?done=saved", status_code=303)


async def freeze(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    return await run_in_threadpool(_freeze, request, form)


def _freeze(request: Request, form: FormData) -> Response:
    frozen = _value(form, "frozen") == "1"
    reason = _value(form, "reason")
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        try:
            set_frozen(db, request.app.state.company_id, user.id, frozen=frozen, reason=reason)
        except FieldErrors as refused:
            return _page(
                request, db, user, values={"reason": reason}, errors=refused.errors, status_code=400
            )
    return RedirectResponse(f"{PATH}?done={'frozen' if frozen else 'thawed'}", status_code=303)


routes = [
    Route(PATH, policy_page, name="admin_reminder_policy"),
    Route(PATH, save, methods=["POST"], name="admin_reminder_policy_save"),
    Route(f"{PATH}/freeze", freeze, methods=["POST"], name="admin_reminder_freeze"),
]
