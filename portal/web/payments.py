"""Paying from the portal: choosing what to pay, and paying it by bank transfer.

Card payments (Stripe) are in ``portal/web/card.py``; both share the choice form here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import clock
from portal.access.service import PortalAccess
from portal.cases import service as cases
from portal.i18n import current_locale
from portal.i18n import gettext_ as _
from portal.money import format_for_input, parse_amount
from portal.payments import requests as payment_requests
from portal.payments.models import PaymentMethod, PaymentRequest, PaymentRequestStatus
from portal.payments.requests import PaymentRequestError
from portal.payments.transfer import (
    TransferError,
    epc_payload,
    epc_qr_svg,
    format_creditor_reference,
    format_iban,
)
from portal.settings import Settings
from portal.web.context import choose_language, current_access, use_language
from portal.web.portal import _no_session, home_context
from portal.web.rendering import render, unit_of_work

TRANSFER_UNAVAILABLE = "transfer_unavailable"
DATE_UNREADABLE = "date_unreadable"
AMOUNT_UNREADABLE = "amount_unreadable"
CARD_UNAVAILABLE = "card_unavailable"
PAY_AMOUNT_UNREADABLE = "pay_amount_unreadable"


def error_message(key: str) -> str:
    """The translated sentence for a payment error key (domain or form)."""
    messages = {
        PaymentRequestError.EMPTY_SELECTION: _("Choose at least one invoice to pay."),
        PaymentRequestError.UNKNOWN_INVOICE: _(
            "One of the chosen invoices cannot be paid here: it may already be paid. "
            "Reload the page and choose again."
        ),
        PaymentRequestError.MIXED_CURRENCIES: _(
            "The chosen invoices are in different currencies: pay each currency separately."
        ),
        PaymentRequestError.NOTHING_TO_PAY: _("Nothing remains to be paid on these invoices."),
        PaymentRequestError.NOT_DECLARABLE: _("This payment can no longer be declared."),
        PaymentRequestError.PAID_ON_IN_FUTURE: _("The transfer date cannot be in the future."),
        PaymentRequestError.PAID_ON_TOO_OLD: _(
            "The transfer date is more than %(days)d days ago: please contact us.",
            days=payment_requests.MAX_DECLARED_AGE_DAYS,
        ),
        PaymentRequestError.AMOUNT_NOT_POSITIVE: _("The amount must be more than zero."),
        PaymentRequestError.PARTIAL_NOT_ALLOWED: _(
            "Partial payments are not accepted: pay the chosen invoices in full."
        ),
        PaymentRequestError.AMOUNT_BELOW_MINIMUM: _(
            "The amount is below the minimum for a partial payment."
        ),
        PaymentRequestError.AMOUNT_ABOVE_DUE: _(
            "The amount is more than what remains on the chosen invoices."
        ),
        CARD_UNAVAILABLE: _("Card payment is not available: please pay by bank transfer."),
        PAY_AMOUNT_UNREADABLE: _("Enter the amount to pay, for example 150.00, or leave it empty."),
        TRANSFER_UNAVAILABLE: _("Payment by bank transfer is not available: please contact us."),
        DATE_UNREADABLE: _("Enter the date of the transfer."),
        AMOUNT_UNREADABLE: _("Enter the amount transferred, for example 1234.56."),
    }
    return messages.get(key, _("Something went wrong. Please try again."))


def _ints(values: list[Any]) -> list[int] | None:
    out = []
    for value in values:
        if not isinstance(value, str) or not value.strip().isdigit():
            return None
        out.append(int(value))
    return out


def _load_request(request: Request, db: Session, access: PortalAccess) -> PaymentRequest:
    request_id: int = request.path_params["request_id"]
    found = payment_requests.get_request(db, access.customer.id, request_id, access.invoice_ids)
    if found is None or found.method is not PaymentMethod.TRANSFER:
        raise HTTPException(404)
    return found


def _transfer_page(
    request: Request,
    db: Session,
    access: PortalAccess,
    payment: PaymentRequest,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    settings: Settings = request.app.state.settings
    today = clock.today_in(access.customer.timezone)
    reference = payment_requests.reference_of(payment)
    amount_input = format_for_input(payment.amount_minor, payment.currency, current_locale.get())
    values = form or {"paid_on": today.isoformat(), "amount": amount_input}
    context: dict[str, Any] = {
        "access": access,
        "customer": access.customer,
        "today": today,
        "payment": payment,
        "declared": payment.status is PaymentRequestStatus.DECLARED,
        "confirmed": payment.status is PaymentRequestStatus.CONFIRMED,
        "settlement": payment_requests.settlement_preview(
            payment_requests.request_invoices(db, payment), payment.amount_minor
        ),
        "iban": format_iban(settings.company.iban),
        "iban_compact": "".join(settings.company.iban.split()).upper(),
        "bic": settings.company.bic,
        "beneficiary": settings.company.legal_name,
        "amount_input": amount_input,
        "reference": format_creditor_reference(reference),
        "reference_compact": reference,
        "has_qr": payment.currency == "EUR" and bool(settings.company.iban),
        "error": error_message(error) if error else None,
        "error_key": error,
        "form": values,
    }
    return render(request, "portal/transfer.html", context, status_code=status_code)


def partial_policy(settings: Settings) -> payment_requests.PartialPolicy:
    return payment_requests.PartialPolicy(
        allowed=settings.partial_payments, minimum_minor=settings.partial_payment_minimum_minor
    )


def prepare_from_form(
    request: Request,
    db: Session,
    access: PortalAccess,
    form: FormData,
    method: PaymentMethod,
) -> tuple[PaymentRequest | None, str | None]:
    """The payment request the choice form asks for, or the key of what is wrong with it.

    The form sends the chosen invoices (``invoice``, repeated) and, optionally, an amount
    (``amount``, empty for everything remaining on them).
    """
    settings: Settings = request.app.state.settings
    selected = _ints(list(form.getlist("invoice")))
    if selected is None:
        return None, PaymentRequestError.UNKNOWN_INVOICE
    raw_amount = form.get("amount")
    amount: int | None = None
    if isinstance(raw_amount, str) and raw_amount.strip():
        currency = payment_requests.selection_currency(db, access.customer, selected)
        try:
            amount = parse_amount(raw_amount, currency or settings.company.currency)
        except ValueError:
            return None, PAY_AMOUNT_UNREADABLE
    policy = partial_policy(settings)
    raw_plan = form.get("plan")
    if isinstance(raw_plan, str) and raw_plan.isdigit() and amount is not None:
        # An instalment of the debtor's payment plan: its amount is agreed, whatever the
        # partial-payment policy says.
        due = cases.next_instalment(db, access.customer.id, int(raw_plan))
        if due is not None and due.amount_minor == amount and set(due.invoice_ids) == set(selected):
            policy = payment_requests.PartialPolicy(allowed=True, minimum_minor=1)
    try:
        payment = payment_requests.prepare_request(
            db,
            access.customer,
            access.invoice_ids,
            selected,
            method,
            amount_minor=amount,
            policy=policy,
        )
    except PaymentRequestError as exc:
        return None, exc.key
    return payment, None


def choice_error_page(
    request: Request, db: Session, access: PortalAccess, form: FormData, error: str
) -> Response:
    """The home page again, with the choice as it was sent and what is wrong with it."""
    raw_amount = form.get("amount")
    context = home_context(
        request,
        db,
        access,
        pay_selected=[v for v in form.getlist("invoice") if isinstance(v, str)],
        pay_amount=raw_amount if isinstance(raw_amount, str) else "",
    )
    context["pay_error"] = error_message(error)
    return render(request, "portal/home.html", context, status_code=400)


async def start_transfer(request: Request) -> Response:
    form = await request.form()
    return await run_in_threadpool(_start_transfer, request, form)


def _start_transfer(request: Request, form: FormData) -> Response:
    settings: Settings = request.app.state.settings
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        if not settings.company.iban:
            return choice_error_page(request, db, access, form, TRANSFER_UNAVAILABLE)
        payment, error = prepare_from_form(request, db, access, form, PaymentMethod.TRANSFER)
        if payment is None:
            return choice_error_page(request, db, access, form, error or "")
        return RedirectResponse(f"/pay/transfer/{payment.id}", status_code=303)


def transfer_page(request: Request) -> Response:
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        payment = _load_request(request, db, access)
        return _transfer_page(request, db, access, payment)


def transfer_qr(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            raise HTTPException(404)
        use_language(choose_language(request, access))
        payment = _load_request(request, db, access)
        try:
            payload = epc_payload(
                name=settings.company.legal_name,
                iban=settings.company.iban,
                bic=settings.company.bic or None,
                amount_minor=payment.amount_minor,
                currency=payment.currency,
                reference=payment_requests.reference_of(payment),
            )
            svg = epc_qr_svg(payload, title=_("QR code to pay by bank transfer"))
        except TransferError:
            raise HTTPException(404) from None
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"Cache-Control": "no-store", "Vary": "Cookie, Accept-Language"},
    )


async def declare_transfer(request: Request) -> Response:
    form = await request.form()
    return await run_in_threadpool(_declare_transfer, request, form)


def _declare_transfer(request: Request, form: FormData) -> Response:
    settings: Settings = request.app.state.settings
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        payment = _load_request(request, db, access)
        raw_date = form.get("paid_on")
        raw_amount = form.get("amount")
        values = {
            "paid_on": raw_date if isinstance(raw_date, str) else "",
            "amount": raw_amount if isinstance(raw_amount, str) else "",
        }
        today = clock.today_in(access.customer.timezone)
        error: str | None = None
        try:
            paid_on = dt.date.fromisoformat(values["paid_on"].strip())
        except ValueError:
            error = DATE_UNREADABLE
        if error is None:
            try:
                amount = parse_amount(values["amount"], payment.currency)
            except ValueError:
                error = AMOUNT_UNREADABLE
        if error is None:
            try:
                # Checks everything before changing anything: an error leaves no trace.
                payment_requests.declare_transfer(
                    db, payment, paid_on, amount, today, settings.transfer_grace_days
                )
            except PaymentRequestError as exc:
                error = exc.key
        if error is None:
            return RedirectResponse(f"/pay/transfer/{payment.id}", status_code=303)
        return _transfer_page(
            request, db, access, payment, error=error, form=values, status_code=400
        )


routes = [
    Route("/pay/transfer", start_transfer, methods=["POST"], name="pay_transfer"),
    Route("/pay/transfer/{request_id:int}", transfer_page, name="transfer"),
    Route("/pay/transfer/{request_id:int}/qr.svg", transfer_qr, name="transfer_qr"),
    Route(
        "/pay/transfer/{request_id:int}/declare",
        declare_transfer,
        methods=["POST"],
        name="transfer_declare",
    ),
]
