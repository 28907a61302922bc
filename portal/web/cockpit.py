"""/admin, the credit manager's dashboard; its panels as CSV; pinning a customer's segment.

Filters are a GET form (segment, currency, owner, the day seen from), so every view and
every CSV link is a plain URL that works without JavaScript.
"""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import clock
from portal.backoffice import queries
from portal.cases.queues import counts as queue_counts
from portal.cockpit import charts, dashboard, snapshot
from portal.cockpit.aging import BUCKETS
from portal.cockpit.behaviour import pin_segment
from portal.cockpit.filters import Filters, parse
from portal.customers.models import RiskSegment
from portal.i18n import gettext_ as _
from portal.settings import Settings
from portal.users import service as users
from portal.users.models import Role, User
from portal.web.backoffice import (
    EDITORS,
    PREFIX,
    _context,
    _not_found,
    customer_page,
    require_role,
)
from portal.web.rendering import render, unit_of_work

OWNER_ROLES = (Role.ADMIN, Role.CREDIT_MANAGER)


def _owners(db: Session) -> list[User]:
    return [u for u in users.list_users(db) if u.is_active and u.role in OWNER_ROLES]


def _filters(request: Request, db: Session) -> tuple[Filters, dict[str, str], list[User]]:
    state = request.app.state
    settings: Settings = state.settings
    owners = _owners(db)
    today = clock.today_in(settings.company.timezone)
    params = {key: value[:64] for key, value in request.query_params.items()}
    filters, errors = parse(state.company_id, today, params, {u.id for u in owners})
    return filters, errors, owners


def home(request: Request) -> Response:
    """The dashboard: totals and aging, DSO, commitments, forecast, reminder effectiveness."""
    state = request.app.state
    with unit_of_work(request) as db:
        user = require_role(request, db)
        if isinstance(user, Response):
            return user
        filters, errors, owners = _filters(request, db)
        board, computed_at = snapshot.load(db, filters)
        currencies = sorted({row.currency for row in board.aging} | {filters.currency or "EUR"})
        return render(
            request,
            "backoffice/dashboard.html",
            _context(
                user,
                board=board,
                errors=errors,
                owners=owners,
                currencies=currencies,
                segments=[s.value for s in RiskSegment],
                buckets=BUCKETS,
                query=filters.query(),
                aging_charts={
                    row.currency: charts.stacked_bars([[a] for a in row.amounts])
                    for row in board.aging
                },
                forecast_charts={
                    f.currency: charts.stacked_bars([list(w.amounts) for w in f.weeks])
                    for f in board.forecast
                },
                queue_counts=queue_counts(db, state.company_id),
                computed_at=computed_at,
                refresh_minutes=int(snapshot.REFRESH_AFTER.total_seconds() // 60),
            ),
            status_code=400 if errors else 200,
        )


def panel_csv(request: Request) -> Response:
    name: str = request.path_params["panel"]
    with unit_of_work(request) as db:
        user = require_role(request, db)
        if isinstance(user, Response):
            return user
        if name not in dashboard.PANELS:
            return _not_found(request, user)
        filters, errors, _ = _filters(request, db)
        if errors:
            return RedirectResponse(f"{PREFIX}?{request.url.query}", status_code=303)
        text = dashboard.panel_csv(db, filters, name)
    filename = f"{name}-{filters.as_of.isoformat()}.csv"
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _read_choice(request: Request) -> str:
    form = await request.form()
    value = form.get("segment")
    return value[:16] if isinstance(value, str) else ""


async def pin_route(request: Request) -> Response:
    """Pin the customer's risk segment, or give the choice back to the nightly suggestion."""
    choice = await _read_choice(request)
    return await run_in_threadpool(_pin, request, request.path_params["customer_id"], choice)


def _pin(request: Request, customer_id: int, choice: str = "") -> Response:
    state = request.app.state
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        customer = queries.get_customer(db, state.company_id, customer_id)
        if customer is None:
            return _not_found(request, user)
        if choice == "auto":
            segment = None
        else:
            try:
                segment = RiskSegment(choice)
            except ValueError:
                return customer_page(
                    request, db, user, customer_id, desk_error=_("Choose a risk segment.")
                )
        pin_segment(db, customer, segment, user.id)
    return RedirectResponse(f"{PREFIX}/customers/{customer_id}?done=segment", status_code=303)


routes = [
    Route(PREFIX, home, name="admin_home"),
    Route(f"{PREFIX}/cockpit/{{panel}}.csv", panel_csv, name="admin_cockpit_csv"),
    Route(
        f"{PREFIX}/customers/{{customer_id:int}}/segment",
        pin_route,
        methods=["POST"],
        name="admin_customer_segment",
    ),
]
