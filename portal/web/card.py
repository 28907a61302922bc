"""Paying by card: a Stripe PaymentIntent per attempt, confirmed in the browser by Stripe.js.

The server creates the PaymentIntent (with an idempotency key derived from what is paid)
after the request's transaction commits, and never sees a card number. The page mounts
Stripe's Payment Element; Stripe sends the debtor back to the same page, which shows the
real state (read from the database, else from Stripe) and polls until the webhook has
recorded the payment.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.access.service import PortalAccess
from portal.customers.models import Customer
from portal.i18n import gettext_ as _
from portal.payments import card
from portal.payments import requests as payment_requests
from portal.payments.card import CardState
from portal.payments.models import PaymentMethod, PaymentRequest, PaymentRequestStatus
from portal.payments.stripe_gateway import (
    GatewayRefused,
    GatewayUnavailable,
    IntentState,
    StripeGateway,
)
from portal.settings import Settings, StripeSettings
from portal.web.context import choose_language, current_access, use_language
from portal.web.middleware import content_security_policy
from portal.web.payments import CARD_UNAVAILABLE, choice_error_page, prepare_from_form
from portal.web.portal import _no_session
from portal.web.rendering import render, unit_of_work

log = logging.getLogger(__name__)

# Stripe.js and what it talks to; added to the card page's Content-Security-Policy.
STRIPE_FRAMES = ("https://js.stripe.com", "https://hooks.stripe.com")
STRIPE_CONNECT = ("https://api.stripe.com", "https://m.stripe.network")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def card_page_csp(stripe: StripeSettings, frame_ancestors: tuple[str, ...]) -> str:
    script = _origin(stripe.js_url)
    connect = {script, *STRIPE_CONNECT}
    if stripe.api_base:
        connect.add(_origin(stripe.api_base))
    return content_security_policy(
        frame_ancestors,
        script=[script],
        img=["https://*.stripe.com"],
        connect=sorted(connect),
        frames=sorted({script, *STRIPE_FRAMES}),
    )


def _gateway(request: Request) -> StripeGateway | None:
    gateway: StripeGateway | None = request.app.state.stripe
    return gateway


async def start_card(request: Request) -> Response:
    form = await request.form()
    return await run_in_threadpool(_start_card, request, form)


def _start_card(request: Request, form: FormData) -> Response:
    gateway = _gateway(request)
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        if gateway is None:
            return choice_error_page(request, db, access, form, CARD_UNAVAILABLE)
        payment, error = prepare_from_form(request, db, access, form, PaymentMethod.CARD)
        if payment is None:
            return choice_error_page(request, db, access, form, error or "")
        payment_id = payment.id
    # After the commit: the PaymentIntent is created by the page, once, with its key.
    return RedirectResponse(f"/pay/card/{payment_id}", status_code=303)


def _load(request: Request, db: Session, access: PortalAccess) -> PaymentRequest:
    request_id: int = request.path_params["request_id"]
    found = payment_requests.get_request(db, access.customer.id, request_id, access.invoice_ids)
    if found is None or found.method is not PaymentMethod.CARD:
        raise HTTPException(404)
    return found


def _ensure_intent(
    request: Request, gateway: StripeGateway, request_id: int
) -> tuple[IntentState | None, str | None]:
    """The attempt's PaymentIntent: retrieved if known, else created (idempotently) and
    remembered. Returns (intent, problem); problem is "unreachable" or "refused"."""
    with unit_of_work(request) as db:
        payment = db.get(PaymentRequest, request_id)
        assert payment is not None
        customer = db.get(Customer, payment.customer_id)
        assert customer is not None
        customer_reference = customer.reference
    # Sessions keep loaded values after closing (expire_on_commit=False): no provider call
    # happens inside a transaction.
    try:
        if payment.provider_reference:
            return gateway.retrieve_intent(payment.provider_reference), None
        if payment.status is not PaymentRequestStatus.OPEN:
            return None, None
        intent = gateway.create_intent(payment, customer_reference=customer_reference)
    except GatewayUnavailable:
        log.warning("Stripe unreachable for payment request %s", request_id, exc_info=True)
        return None, "unreachable"
    except GatewayRefused:
        log.error("Stripe refused payment request %s", request_id, exc_info=True)
        return None, "refused"
    with unit_of_work(request) as db:
        current = db.get(PaymentRequest, request_id, with_for_update=True)
        assert current is not None
        if current.provider_reference is None and current.attempt == payment.attempt:
            card.attach_intent(db, current, intent)
    return intent, None


def _page_context(
    request: Request,
    db: Session,
    access: PortalAccess,
    payment: PaymentRequest,
    intent: IntentState | None,
    problem: str | None,
) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    state = card.state_of(payment, intent)
    settlement = payment_requests.settlement_preview(
        payment_requests.request_invoices(db, payment), payment.amount_minor
    )
    return {
        "access": access,
        "customer": access.customer,
        "payment": payment,
        "state": state.value,
        "problem": problem,
        "failure": _failure_message(intent, payment) if state is CardState.FAILED else None,
        "intent": intent,
        "stripe_js_url": settings.stripe.js_url,
        "publishable_key": settings.stripe.publishable_key,
        "return_url": f"{settings.base_url}/pay/card/{payment.id}",
        "transfer_available": bool(settings.company.iban),
        "settlement": settlement,
        "partial": payment.amount_minor < sum(line.invoice.remaining_minor for line in settlement),
    }


def _failure_message(intent: IntentState | None, payment: PaymentRequest) -> str:
    code = (intent.failure_code if intent else None) or payment.failure_code
    if code in ("card_declined", "generic_decline", "do_not_honor"):
        return _("Your bank declined the payment. Nothing was charged.")
    if code == "insufficient_funds":
        return _("Your bank declined the payment (insufficient funds). Nothing was charged.")
    if code in ("expired_card",):
        return _("The card has expired. Nothing was charged.")
    if code in ("incorrect_cvc", "invalid_cvc"):
        return _("The security code was not accepted. Nothing was charged.")
    if code == "payment_intent_authentication_failure":
        return _("The payment was not authenticated with your bank. Nothing was charged.")
    return _("The payment did not go through. Nothing was charged.")


def card_page(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    gateway = _gateway(request)
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        payment = _load(request, db, access)
        payment_id = payment.id
        confirmed = payment.status is PaymentRequestStatus.CONFIRMED
    intent: IntentState | None = None
    problem: str | None = None
    if not confirmed:
        if gateway is None:
            problem = "refused"
        else:
            intent, problem = _ensure_intent(request, gateway, payment_id)
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        payment = _load(request, db, access)
        context = _page_context(request, db, access, payment, intent, problem)
        response = render(request, "portal/card.html", context, block="card_status")
    response.headers["Content-Security-Policy"] = card_page_csp(
        settings.stripe, request.app.state.site.ancestors()
    )
    return response


async def retry_card(request: Request) -> Response:
    await request.form()
    return await run_in_threadpool(_retry_card, request)


def _retry_card(request: Request) -> Response:
    gateway = _gateway(request)
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        payment = _load(request, db, access)
        known = payment.provider_reference
        payment_id = payment.id
    if gateway is not None and known:
        try:
            intent = gateway.retrieve_intent(known)
        except (GatewayUnavailable, GatewayRefused):
            intent = None
        # A declined PaymentIntent takes another try itself; only a cancelled one is replaced.
        if intent is not None and intent.status == "canceled":
            with unit_of_work(request) as db:
                locked = db.get(PaymentRequest, payment_id, with_for_update=True)
                assert locked is not None
                if locked.provider_reference == known:
                    card.new_attempt(db, locked)
    return RedirectResponse(f"/pay/card/{payment_id}", status_code=303)


routes = [
    Route("/pay/card", start_card, methods=["POST"], name="pay_card"),
    Route("/pay/card/{request_id:int}", card_page, name="card"),
    Route("/pay/card/{request_id:int}/retry", retry_card, methods=["POST"], name="card_retry"),
]
