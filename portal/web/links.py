"""Opening signed links, and asking for a fresh one."""

from __future__ import annotations

import logging
import re

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.i18n import gettext_ as _
from portal.links import service as links
from portal.links.errors import LinkRejected, TooManyRequests
from portal.links.tokens import LinkExpired, LinkInvalid, LinkSigner
from portal.mail.sender import Mailer, compose
from portal.settings import Settings
from portal.web.context import choose_language, set_session_cookie, use_language
from portal.web.rendering import client_ip, render, unit_of_work

log = logging.getLogger(__name__)

EMAIL_SHAPE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
REJECTION_STATUS = {"invalid": 400, "expired": 410, "revoked": 410}


def open_link(request: Request) -> Response:
    token: str = request.path_params["token"]
    state = request.app.state
    rejected: LinkRejected | None = None
    with unit_of_work(request) as db:
        # A refusal is caught inside the transaction so its timeline event is kept.
        try:
            opened = links.open_link(
                db,
                state.signer,
                token,
                client_ip=client_ip(request),
                user_agent=request.headers.get("user-agent"),
            )
        except LinkRejected as refusal:
            rejected = refusal
    if rejected is not None:
        return _rejected_page(request, rejected)
    # A clean URL: the token must not linger in the history or leak through Referer.
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(response, state.settings, opened.session_secret)
    return response


def _customer_language(request: Request, customer_id: int | None) -> str | None:
    if customer_id is None:
        return None
    from portal.customers.models import Customer

    with unit_of_work(request) as db:
        customer = db.get(Customer, customer_id)
        return customer.language if customer else None


def _rejected_page(request: Request, rejected: LinkRejected) -> Response:
    use_language(
        choose_language(
            request, customer_language=_customer_language(request, rejected.customer_id)
        )
    )
    return render(
        request,
        "links/rejected.html",
        {
            "access": None,
            "reason": rejected.reason,
            "token": request.path_params.get("token", ""),
            "errors": {},
            "email": "",
        },
        status_code=REJECTION_STATUS[rejected.reason],
    )


def _hint_from_token(signer: LinkSigner, token: str) -> int | None:
    """The customer named by an authentic (even expired) token; None for anything else."""
    if not token:
        return None
    try:
        return signer.verify(token).customer_id
    except LinkExpired as expired:
        return expired.claims.customer_id
    except LinkInvalid:
        return None


async def fresh_link(request: Request) -> Response:
    form = await request.form()
    email = str(form.get("email") or "").strip()
    token = str(form.get("token") or "")[:100]
    return await run_in_threadpool(_fresh_link, request, email, token)


def _fresh_link(request: Request, email: str, token: str) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    hint = _hint_from_token(state.signer, token)
    use_language(choose_language(request, customer_language=_customer_language(request, hint)))
    if len(email) > 254 or not EMAIL_SHAPE.match(email):
        return render(
            request,
            "links/rejected.html" if token else "portal/welcome.html",
            {
                "access": None,
                "reason": "request",
                "token": token,
                "email": email,
                "errors": {"email": _("Enter an email address such as name@example.com.")},
            },
            status_code=400,
        )
    client = client_ip(request) or "unknown"
    try:
        with unit_of_work(request) as db:
            to_send = links.request_fresh_link(
                db,
                state.signer,
                settings.base_url,
                company_id=state.company_id,
                email=email,
                client=client,
                limit_per_hour=settings.fresh_link_limit_per_hour,
                customer_hint=hint,
            )
    except TooManyRequests:
        return render(request, "links/too_many.html", {"access": None}, status_code=429)

    mailer: Mailer = state.mailer

    def send_after_commit() -> None:
        for item in to_send:
            message = compose(
                state.templates,
                "fresh_link",
                item.email,
                item.language,
                settings.base_url.split("//")[-1].split(":")[0],
                sender_name=settings.company.name,
                company=state.site.look.identity(settings.company),
                link=item,
                settings=settings,
            )
            try:
                mailer.send(message)
            except OSError:
                log.exception("could not send a fresh link")

    return render(
        request,
        "links/fresh_sent.html",
        {"access": None, "email": email},
        background=BackgroundTask(send_after_commit) if to_send else None,
    )


routes = [
    # "path": a respelled token with "/" gets the rejected-link page too, not a bare 404.
    Route("/l/{token:path}", open_link, name="open_link"),
    Route("/fresh-link", fresh_link, methods=["POST"], name="fresh_link"),
]
