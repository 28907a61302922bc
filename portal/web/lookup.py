""" "Pay an invoice" without a link: POST /lookup, from the welcome page and the widget.

Every answer that depends on the database takes the same time (``LOOKUP_ANSWER_SECONDS``,
counted from the request's arrival, ``app.state.lookup_answer_seconds`` in tests), and a
miss has one answer whatever was wrong: the number, the amount, the reference or the
postcode. See portal/embed/lookup.py for the throttle and the timeline.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import i18n
from portal.access.service import digest
from portal.company.models import Company
from portal.embed.lookup import LookupForm, LookupOutcome, check_form, lookup
from portal.i18n import gettext_ as _
from portal.settings import Settings
from portal.web.context import (
    choose_language,
    embed_host,
    set_session_cookie,
    use_language,
)
from portal.web.embed import embedded_redirect
from portal.web.login import wait_text
from portal.web.rendering import client_ip, render, unit_of_work

# Longer than a lookup takes on a busy server, so that every answer waits the same.
LOOKUP_ANSWER_SECONDS = 0.5


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip()[:200] if isinstance(value, str) else ""


def _messages() -> dict[str, str]:
    return {
        "number": _("Enter the invoice number, as printed on the invoice."),
        "amount": _("Enter the amount due, such as 120.50."),
        "proof": _("Enter the amount due, or both your customer reference and your postcode."),
        "result": _(
            "We could not find an open invoice matching what you typed. Check the invoice "
            "number and the amount due, or your customer reference and postcode."
        ),
    }


def _page(
    request: Request,
    host: str | None,
    form: LookupForm,
    errors: dict[str, str],
    status_code: int,
) -> Response:
    messages = _messages()
    context = {
        "access": None,
        "embed_host": host,
        "lookup": asdict(form),
        "lookup_errors": {field: messages.get(reason, reason) for field, reason in errors.items()},
    }
    return render(request, "portal/welcome.html", context, status_code=status_code)


def _lookup(request: Request, form: LookupForm, host: str | None) -> LookupOutcome | None:
    state = request.app.state
    settings: Settings = state.settings
    with unit_of_work(request) as db:
        company = db.get(Company, state.company_id)
        if company is None or not company.lookup_enabled:
            return None
        return lookup(
            db,
            form,
            company_id=state.company_id,
            throttle_secret=settings.secret_keys[0],
            client_ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            embed_origin=host,
        )


async def lookup_invoice(request: Request) -> Response:
    started = anyio.current_time()
    posted = await request.form(max_files=0, max_fields=10)
    host = embed_host(request, posted.get("host"))
    settings: Settings = request.app.state.settings
    raw_language = posted.get("lang")
    asked = i18n.normalise(
        raw_language if isinstance(raw_language, str) else None, settings.languages
    )
    use_language(asked if host and asked else choose_language(request))
    form = LookupForm(
        invoice_number=_field(posted, "invoice_number"),
        amount=_field(posted, "amount"),
        reference=_field(posted, "reference"),
        postcode=_field(posted, "postcode"),
    )
    errors = check_form(form)
    if errors:  # about the shape of what was typed only: the same for every invoice
        return _page(request, host, form, errors, 400)
    outcome = await run_in_threadpool(_lookup, request, form, host)
    floor = float(getattr(request.app.state, "lookup_answer_seconds", LOOKUP_ANSWER_SECONDS))
    await anyio.sleep(max(0.0, floor - (anyio.current_time() - started)))
    if outcome is None:
        raise HTTPException(404)  # switched off by the company
    if outcome.retry_after is not None:
        wait = outcome.retry_after
        message = _("Too many attempts. Try again in %(wait)s.", wait=wait_text(wait))
        response = _page(request, host, form, {"result": message}, 429)
        response.headers["Retry-After"] = str(math.ceil(wait.total_seconds()))
        return response
    if outcome.secret is None:
        return _page(request, host, form, {"result": "result"}, 400)
    if host is not None:
        return embedded_redirect(request, digest(outcome.secret), host, outcome.secret)
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(response, request.app.state.settings, outcome.secret)
    return response


routes = [Route("/lookup", lookup_invoice, methods=["POST"], name="lookup")]
