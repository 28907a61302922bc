"""Back office: declared bank transfers waiting for the money, and confirming them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import clock
from portal.cases.queues import transfer_queue
from portal.customers.models import Customer
from portal.i18n import gettext_ as _
from portal.money import parse_amount
from portal.payments import requests as payment_requests
from portal.payments.models import PaymentMethod, PaymentRequest
from portal.payments.requests import PaymentRequestError
from portal.settings import Settings
from portal.timeline.models import Actor
from portal.users.models import User
from portal.web.backoffice import EDITORS, PREFIX, _context, _format_when, _not_found, require_role
from portal.web.rendering import render, unit_of_work

LIST_PATH = f"{PREFIX}/transfers"


def _error_message(key: str) -> str:
    return {
        PaymentRequestError.NOT_CONFIRMABLE: _("This transfer was already confirmed."),
        PaymentRequestError.AMOUNT_NOT_POSITIVE: _("The amount received must be more than zero."),
        PaymentRequestError.RECEIVED_IN_FUTURE: _("The date received cannot be in the future."),
        "amount_unreadable": _("Enter the amount received, for example 1234.56."),
        "date_unreadable": _("Enter the date the money arrived."),
    }.get(key, _("Something went wrong. Please try again."))


def _page(
    request: Request,
    db: Session,
    user: User,
    *,
    error: tuple[int, str] | None = None,
    status_code: int = 200,
) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    notice = request.query_params.get("done")
    return render(
        request,
        "backoffice/transfers.html",
        _context(
            user,
            rows=transfer_queue(db, state.company_id),
            reference_of=payment_requests.reference_of,
            error_for=error[0] if error else None,
            error=_error_message(error[1]) if error else None,
            notice=notice == "confirmed",
            today=clock.today_in(settings.company.timezone),
            when=_format_when(settings.company.timezone),
        ),
        status_code=status_code,
    )


def transfers(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db)
        if isinstance(user, Response):
            return user
        return _page(request, db, user)


async def confirm(request: Request) -> Response:
    form = await request.form()
    return await run_in_threadpool(_confirm, request, form)


def _confirm(request: Request, form: FormData) -> Response:
    request_id: int = request.path_params["request_id"]
    state = request.app.state
    settings: Settings = state.settings
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        payment_request = db.get(PaymentRequest, request_id)
        customer = db.get(Customer, payment_request.customer_id) if payment_request else None
        if (
            payment_request is None
            or customer is None
            or customer.company_id != state.company_id
            or payment_request.method is not PaymentMethod.TRANSFER
        ):
            return _not_found(request, user)
        today = clock.today_in(settings.company.timezone)
        raw_amount, raw_date = form.get("amount"), form.get("received_on")

        def refused(key: str) -> Response:
            return _page(request, db, user, error=(request_id, key), status_code=400)

        try:
            amount = parse_amount(str(raw_amount or ""), payment_request.currency)
        except ValueError:
            return refused("amount_unreadable")
        try:
            received_on = dt.date.fromisoformat(str(raw_date or "").strip())
        except ValueError:
            return refused("date_unreadable")
        try:
            with db.begin_nested():
                payment_requests.confirm_transfer(
                    db,
                    payment_request,
                    amount_minor=amount,
                    received_on=received_on,
                    today=today,
                    actor=Actor.USER,
                    actor_id=str(user.id),
                )
        except PaymentRequestError as exc:
            return refused(exc.key)
    return RedirectResponse(f"{LIST_PATH}?done=confirmed", status_code=303)


routes = [
    Route(LIST_PATH, transfers, name="admin_transfers"),
    Route(
        f"{LIST_PATH}/{{request_id:int}}/confirm",
        confirm,
        methods=["POST"],
        name="admin_transfer_confirm",
    ),
]
