"""Back office: record a payment received outside Relance (cheque, transfer, offset).

Credit managers and admins write; viewers get the 403 page. The payment goes through
``portal.payments.offline.record_offline_payment``: allocated like card and transfer
payments, once per reference.
"""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import clock
from portal.changes import FieldErrors, Outcome
from portal.customers.models import Customer
from portal.i18n import gettext_ as _
from portal.payments.models import PaymentMethod
from portal.payments.offline import OFFLINE_METHODS, record_offline_payment
from portal.settings import Settings
from portal.timeline.models import Actor
from portal.users.models import User
from portal.web.backoffice import EDITORS, PREFIX, _context, _not_found, require_role
from portal.web.backoffice_customers import load_customer
from portal.web.backoffice_invoices import open_invoices
from portal.web.forms import Form
from portal.web.rendering import render, unit_of_work


def method_labels() -> dict[str, str]:
    return {
        PaymentMethod.CHEQUE: _("Cheque"),
        PaymentMethod.TRANSFER: _("Bank transfer"),
        PaymentMethod.OFFSET: _("Offset"),
        PaymentMethod.OTHER: _("Other"),
    }


def _payment_page(
    request: Request,
    db: Session,
    user: User,
    customer: Customer,
    values: dict[str, str],
    errors: dict[str, str],
    chosen: list[int],
) -> Response:
    labels = method_labels()
    return render(
        request,
        "backoffice/payment_form.html",
        _context(
            user,
            customer=customer,
            values=values,
            errors=errors,
            methods=[(m.value, labels[m]) for m in OFFLINE_METHODS],
            invoices=open_invoices(db, customer),
            chosen=chosen,
        ),
        status_code=400 if errors else 200,
    )


def payment_new(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        customer = load_customer(request, db)
        if customer is None:
            return _not_found(request, user)
        settings: Settings = request.app.state.settings
        values = {
            "received_on": clock.today_in(customer.timezone).isoformat(),
            "currency": settings.company.currency,
            "method": PaymentMethod.CHEQUE.value,
        }
        return _payment_page(request, db, user, customer, values, {}, [])


async def payment_save(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=600)
    return await run_in_threadpool(_payment_save, request, form)


def _payment_save(request: Request, data: FormData) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        customer = load_customer(request, db)
        if customer is None:
            return _not_found(request, user)
        form = Form(data)
        currency = form.text("currency", 8).strip().upper()
        amount = form.amount("amount", currency)
        received_on = form.date("received_on")
        chosen = form.integers("invoice_ids")
        errors = dict(form.errors)
        outcome = None
        if not errors:
            try:
                _payment, outcome = record_offline_payment(
                    db,
                    customer,
                    amount_minor=amount or 0,
                    currency=currency,
                    method=form.text("method", 16),
                    reference=form.text("reference", 200),
                    received_on=received_on,
                    invoice_ids=chosen,
                    actor=Actor.USER,
                    actor_id=str(user.id),
                )
            except FieldErrors as refused:  # raised before anything was written
                errors = refused.errors
        if outcome is None:
            form.text("method", 16)
            form.text("reference", 200)
            return _payment_page(request, db, user, customer, form.values, errors, chosen)
        customer_id = customer.id
    notice = "payment-recorded" if outcome is Outcome.CREATED else "payment-known"
    return RedirectResponse(
        f"{PREFIX}/customers/{customer_id}?done={notice}#invoices", status_code=303
    )


routes = [
    Route(
        f"{PREFIX}/customers/{{customer_id:int}}/payments/new",
        payment_new,
        methods=["GET"],
        name="admin_payment_new",
    ),
    Route(
        f"{PREFIX}/customers/{{customer_id:int}}/payments/new",
        payment_save,
        methods=["POST"],
        name="admin_payment_add",
    ),
]
