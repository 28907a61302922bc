"""/admin/embed (admins): the host sites allowed to show the widget, the snippet to paste,
and the switch for "Pay an invoice" without a link."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.company.models import Company
from portal.embed import origins
from portal.i18n import gettext_ as _
from portal.settings import Settings
from portal.timeline.models import Actor
from portal.timeline.service import record
from portal.users.models import Role, User
from portal.web.backoffice import PREFIX, _context, require_role
from portal.web.rendering import render, unit_of_work

PATH = f"{PREFIX}/embed"
NOTICES = ("added", "removed", "lookup_on", "lookup_off")


def _origin_error(reason: str) -> str:
    if reason == "https":
        return _("The address must start with https:// (plain http only for this computer).")
    if reason == "too_many":
        return _("There are already %(count)d sites. Remove one first.", count=origins.MAX_ORIGINS)
    return _("Enter the site's address only, such as https://www.example.com.")


def _page(
    request: Request,
    db: Session,
    user: User,
    *,
    error: str | None = None,
    typed: str = "",
    status_code: int = 200,
) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    company = db.get(Company, state.company_id)
    notice = request.query_params.get("done")
    context: dict[str, Any] = _context(
        user,
        stored=origins.stored_origins(db, state.company_id),
        defaults=[o for o in settings.frame_ancestors if "://" in o],
        lookup_on=bool(company and company.lookup_enabled),
        error=error,
        typed=typed,
        notice=notice if notice in NOTICES else None,
        base_url=settings.base_url,
    )
    return render(request, "backoffice/embed.html", context, status_code=status_code)


def embed_page(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, Role.ADMIN)
        if isinstance(user, Response):
            return user
        return _page(request, db, user)


async def add_origin(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    return await run_in_threadpool(_add_origin, request, form)


def _add_origin(request: Request, form: FormData) -> Response:
    state = request.app.state
    typed = str(form.get("origin") or "")[:300]
    with unit_of_work(request) as db:
        user = require_role(request, db, Role.ADMIN)
        if isinstance(user, Response):
            return user
        try:
            origins.add_origin(
                db,
                state.company_id,
                typed,
                user_id=user.id,
                allow_http=state.settings.development or state.settings.environment == "test",
            )
        except origins.BadOrigin as bad:
            return _page(
                request, db, user, error=_origin_error(bad.reason), typed=typed, status_code=400
            )
        db.flush()
        state.site.load(db, state.company_id)
    return RedirectResponse(f"{PATH}?done=added", status_code=303)


async def remove_origin(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    return await run_in_threadpool(_remove_origin, request, str(form.get("origin") or "")[:300])


def _remove_origin(request: Request, origin: str) -> Response:
    state = request.app.state
    with unit_of_work(request) as db:
        user = require_role(request, db, Role.ADMIN)
        if isinstance(user, Response):
            return user
        origins.remove_origin(db, state.company_id, origin, user_id=user.id)
        db.flush()
        state.site.load(db, state.company_id)
    return RedirectResponse(f"{PATH}?done=removed", status_code=303)


async def switch_lookup(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    return await run_in_threadpool(_switch_lookup, request, form.get("lookup") == "on")


def _switch_lookup(request: Request, enabled: bool) -> Response:
    state = request.app.state
    with unit_of_work(request) as db:
        user = require_role(request, db, Role.ADMIN)
        if isinstance(user, Response):
            return user
        company = db.get(Company, state.company_id)
        assert company is not None
        if company.lookup_enabled != enabled:
            company.lookup_enabled = enabled
            record(
                db,
                company_id=company.id,
                actor=Actor.USER,
                actor_id=str(user.id),
                action="embed.lookup_switched",
                details={"enabled": enabled},
            )
        db.flush()
        state.site.load(db, state.company_id)
    return RedirectResponse(
        f"{PATH}?done={'lookup_on' if enabled else 'lookup_off'}", status_code=303
    )


routes = [
    Route(PATH, embed_page, name="admin_embed"),
    Route(f"{PATH}/origins", add_origin, methods=["POST"], name="admin_embed_add"),
    Route(f"{PATH}/origins/remove", remove_origin, methods=["POST"], name="admin_embed_remove"),
    Route(f"{PATH}/lookup", switch_lookup, methods=["POST"], name="admin_embed_lookup"),
]
