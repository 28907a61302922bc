"""Provider webhooks: signature first, then each event applied exactly once."""

from __future__ import annotations

import logging

from sqlalchemy.exc import DataError, IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from portal.payments import stripe_events
from portal.payments.stripe_gateway import InvalidWebhook, StripeGateway
from portal.web.limits import WEBHOOK_MAX_BYTES
from portal.web.rendering import unit_of_work

log = logging.getLogger(__name__)

# RequestBodyLimit refuses larger bodies first; checked here too for a direct call.
MAX_BODY_BYTES = WEBHOOK_MAX_BYTES


async def stripe_webhook(request: Request) -> Response:
    gateway: StripeGateway | None = request.app.state.stripe
    if gateway is None:
        return PlainTextResponse("Stripe is not configured", status_code=404)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return PlainTextResponse("payload too large", status_code=413)
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return PlainTextResponse("payload too large", status_code=413)
    try:
        event = gateway.verify_webhook(body, request.headers.get("stripe-signature"))
    except InvalidWebhook as exc:
        log.warning("refused a Stripe webhook: %s", exc)
        return PlainTextResponse("invalid signature", status_code=400)
    return await run_in_threadpool(_apply, request, event)


def _apply(request: Request, event: dict[str, object]) -> Response:
    try:
        with unit_of_work(request) as db:
            outcome = stripe_events.apply_event(db, event)
    except IntegrityError:
        # A twin delivery applied it first (the unique event id, or the unique payment).
        return JSONResponse({"received": True, "outcome": stripe_events.DUPLICATE})
    except stripe_events.MalformedEvent as exc:
        # Signed by Stripe but not the shape Relance reads: nothing was stored (the
        # transaction rolled back); Stripe shows the 400 on the endpoint's page.
        log.warning("refused a Stripe event %r: %s", event.get("id"), exc)
        return PlainTextResponse("malformed event", status_code=400)
    except DataError:
        # A value the database refuses (out of range, too long): the event is not one
        # Relance can store, and nothing was.
        log.error("refused a Stripe event %r: a value out of range", event.get("id"), exc_info=True)
        return PlainTextResponse("malformed event", status_code=400)
    except stripe_events.NotYetApplicable:
        # Stripe retries failed deliveries: by then the payment it refers to is recorded.
        return JSONResponse({"received": False, "outcome": "retry later"}, status_code=409)
    # A recorded payment owes a receipt (payments.receipt_pending): the worker sends it,
    # so the answer to Stripe never waits on SMTP.
    return JSONResponse({"received": True, "outcome": outcome.result})


routes = [
    Route("/webhooks/stripe", stripe_webhook, methods=["POST"], name="stripe_webhook"),
]
