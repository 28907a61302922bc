"""The floor for bench/webhooks.py: the least a webhook endpoint can do and still be correct.

A bare Starlette app (no middleware, no ORM) with one endpoint that verifies Stripe's
signature, claims the event id with ``INSERT … ON CONFLICT DO NOTHING`` and, when the claim
is new, updates the payment request the event names, in one transaction, in the thread
pool (capped like the portal's, ``PORTAL_REQUEST_THREADS``). Served by uvicorn exactly as
the app is: whatever the portal spends beyond it is the cost of recording a payment,
allocating it, the timeline and the receipt owed.

    uvicorn --factory --app-dir bench webhook_floor:asgi
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import stripe
from anyio import to_thread
from sqlalchemy import Engine, Table, bindparam, update
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from portal import clock
from portal.db import conflict_insert, make_engine
from portal.payments.models import PaymentRequest, PaymentRequestStatus, WebhookEvent

_events: Table = WebhookEvent.__table__  # type: ignore[assignment]
_requests: Table = PaymentRequest.__table__  # type: ignore[assignment]


def asgi() -> Starlette:
    secret = os.environ["PORTAL_STRIPE_WEBHOOK_SECRET"]
    engine: Engine = make_engine(os.environ["PORTAL_DATABASE_URL"])
    claim = (
        conflict_insert(engine.dialect.name, _events)
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(_events.c.id)
    )
    settle = (
        update(_requests)
        .where(_requests.c.id == bindparam("request_id"))
        .values(status=PaymentRequestStatus.CONFIRMED)
    )

    def apply(event: dict[str, Any]) -> Response:
        request_id = int(event["data"]["object"]["metadata"]["payment_request"])
        with engine.begin() as connection:
            claimed = connection.execute(
                claim,
                {
                    "provider": "stripe",
                    "event_id": event["id"],
                    "event_type": event["type"],
                    "outcome": "applied",
                    "received_at": clock.now(),
                },
            ).first()
            if claimed is None:
                return JSONResponse({"received": True, "outcome": "duplicate"})
            connection.execute(settle, {"request_id": request_id})
        return JSONResponse({"received": True, "outcome": "applied"})

    async def webhook(request: Request) -> Response:
        body = await request.body()
        try:
            stripe.WebhookSignature.verify_header(
                body.decode("utf-8"), request.headers.get("stripe-signature", ""), secret, 300
            )
        except (stripe.SignatureVerificationError, UnicodeDecodeError):
            return PlainTextResponse("invalid signature", status_code=400)
        return await run_in_threadpool(apply, json.loads(body))

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        threads = int(os.environ.get("PORTAL_REQUEST_THREADS", "4"))
        to_thread.current_default_thread_limiter().total_tokens = threads
        yield
        engine.dispose()

    return Starlette(
        routes=[
            Route("/webhooks/stripe", webhook, methods=["POST"]),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )
