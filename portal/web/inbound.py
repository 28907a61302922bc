"""What the providers tell us about contacts: texts received (POST /webhooks/sms/inbound,
Twilio's form and signature: "STOP" opts the number out) and delivery status
notifications (POST /webhooks/email/dsn, the raw RFC 3464 message, authenticated with a
bearer secret, for a mail server's pipe or a mailbox reader)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from portal.reminders.preferences import opt_out_of_texts, record_bounces
from portal.settings import Settings
from portal.web.limits import WEBHOOK_MAX_BYTES
from portal.web.rendering import unit_of_work

log = logging.getLogger(__name__)


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's X-Twilio-Signature: HMAC-SHA1 of the URL followed by each parameter's name
    and value in name order, base64."""
    data = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


async def sms_inbound(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    if not settings.sms.auth_token:
        return PlainTextResponse("SMS provider not configured", status_code=404)
    form = await request.form(max_files=0, max_fields=50)
    params = {key: value for key, value in form.items() if isinstance(value, str)}
    url = settings.base_url.rstrip("/") + request.url.path
    expected = twilio_signature(settings.sms.auth_token, url, params)
    if not hmac.compare_digest(expected, request.headers.get("x-twilio-signature", "")):
        return PlainTextResponse("invalid signature", status_code=403)
    return await run_in_threadpool(
        _opt_out, request, params.get("From", "")[:32], params.get("Body", "")[:1600]
    )


def _opt_out(request: Request, phone: str, body: str) -> Response:
    with unit_of_work(request) as db:
        changed = opt_out_of_texts(db, request.app.state.company_id, phone, body)
    if changed:
        log.info("%s contact(s) opted out of texts", changed)
    # An empty TwiML answer: no automatic reply from us (the carrier confirms STOP).
    return Response("<Response/>", media_type="application/xml")


async def email_dsn(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    secret = settings.dsn_secret
    if not secret:
        return PlainTextResponse("not configured", status_code=404)
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), secret.encode()):
        return PlainTextResponse("unauthorized", status_code=401)
    body = await request.body()
    if len(body) > WEBHOOK_MAX_BYTES:
        return PlainTextResponse("payload too large", status_code=413)
    return await run_in_threadpool(_bounces, request, body)


def _bounces(request: Request, raw: bytes) -> Response:
    with unit_of_work(request) as db:
        bounces = record_bounces(db, request.app.state.company_id, raw)
    return PlainTextResponse(f"{len(bounces)} bounced\n")


routes = [
    Route("/webhooks/sms/inbound", sms_inbound, methods=["POST"], name="sms_inbound"),
    Route("/webhooks/email/dsn", email_dsn, methods=["POST"], name="email_dsn"),
]
