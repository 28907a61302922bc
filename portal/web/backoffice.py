"""The back office (/admin): login, sessions, roles, the customer list and file, link actions.

Users log in with an email and a password (``portal.users.service``); the
session lives in ``user_sessions`` behind its own cookie (``relance_admin``,
``SameSite=Strict``), never the debtor's: a portal session does not open any
page here. Every handler asks ``require_role`` first, which answers with the
login page (no session) or a 403 page (wrong role).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace
from typing import Any
from urllib.parse import unquote, urlencode

from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import clock, i18n
from portal.backoffice import queries
from portal.cases.service import customer_cases
from portal.cockpit.customer import customer_cockpit
from portal.invoices.credit_notes import customer_credit_notes
from portal.links import service as links
from portal.links.service import FreshLink
from portal.mail.sender import Mailer, compose
from portal.reminders.policy import load_policy
from portal.settings import Settings
from portal.timeline.models import Actor
from portal.timeline.service import record
from portal.users import sessions, totp
from portal.users.models import Role, User
from portal.users.sessions import CurrentUser
from portal.web.context import choose_language, use_language
from portal.web.rendering import client_ip, is_htmx, render, unit_of_work

log = logging.getLogger(__name__)

PREFIX = "/admin"
LOGIN_PATH = f"{PREFIX}/login"
# The development outbox viewer (web/reminders.py): a back-office page outside /admin.
DEV_OUTBOX_PATH = "/dev/outbox"
# Who may act on a customer's links; viewers only read.
EDITORS = (Role.ADMIN, Role.CREDIT_MANAGER)
NOTICES = (
    "link-sent",
    "no-email",
    "revoked",
    "note",
    "pause",
    "resume",
    "pause-invoice",
    "resume-invoice",
    # Data entry (backoffice_customers, backoffice_invoices, backoffice_payments).
    "customer-created",
    "customer-saved",
    "contact-saved",
    "contact-removed",
    "invoice-created",
    "invoice-saved",
    "invoice-cancelled",
    "credit-note-issued",
    "credit-note-cancelled",
    "payment-recorded",
    "payment-known",
    "segment",
    # Manual actions (backoffice_reminders).
    "reminder-queued",
    "call-logged",
    "follow-up",
)
FORM_FIELD_MAX = 2048


# --- cookie and current user ------------------------------------------------------------------


def admin_cookie_name(settings: Settings) -> str:
    # Not the debtor's cookie: a portal session never reaches the back office.
    return "__Host-relance_admin" if settings.secure_cookies else "relance_admin"


def set_admin_cookie(response: Response, settings: Settings, secret: str) -> None:
    response.set_cookie(
        admin_cookie_name(settings),
        secret,
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
        path="/",
    )


def clear_admin_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        admin_cookie_name(settings),
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )


def current_user(request: Request, db: Session) -> CurrentUser | None:
    settings: Settings = request.app.state.settings
    secret = request.cookies.get(admin_cookie_name(settings))
    return sessions.load_session(db, secret, dt.timedelta(minutes=settings.session_idle_minutes))


def _use_language(request: Request) -> None:
    # Users have no language of their own yet: their cookie, then the browser's.
    use_language(choose_language(request))


def _login_redirect(request: Request) -> Response:
    target = LOGIN_PATH
    if request.method == "GET" and request.url.path != PREFIX:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = f"{LOGIN_PATH}?{urlencode({'next': path})}"
    if is_htmx(request):
        # htmx would swap the login page into a fragment; ask it to load the page instead.
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def require_session(request: Request, db: Session, *roles: Role) -> CurrentUser | Response:
    """Like ``require_role``, but the session as well as the user."""
    _use_language(request)
    current = current_user(request, db)
    if current is None:
        return _login_redirect(request)
    # The freeze switch shows on every back-office page while it is on.
    request.state.reminder_freeze = load_policy(db, request.app.state.company_id)
    if not current.has_role(*roles):
        return render(request, "backoffice/forbidden.html", _context(current.user), status_code=403)
    return current


def require_role(request: Request, db: Session, *roles: Role) -> User | Response:
    """The logged-in user if their role is one of ``roles`` (any role when none is given).

    Otherwise a response to return as is: a redirect to the login page without
    a live session, the 403 page for a role that may not do this. Call it first,
    inside the request's unit of work::

        user = require_role(request, db, Role.ADMIN, Role.CREDIT_MANAGER)
        if isinstance(user, Response):
            return user
    """
    current = require_session(request, db, *roles)
    return current if isinstance(current, Response) else current.user


def safe_admin_next(target: str | None) -> str:
    """Only back-office paths: never an open redirect, never the portal, never the login."""
    if not target or "\\" in target or target.startswith("//"):
        return PREFIX
    path = target.split("?", 1)[0]
    staff_path = any(path == p or path.startswith(f"{p}/") for p in (PREFIX, DEV_OUTBOX_PATH))
    if not staff_path or path == LOGIN_PATH:
        return PREFIX
    if any(segment in (".", "..") for segment in unquote(path).split("/")):
        return PREFIX  # /admin/../ would leave the back office once the browser resolves it
    return target


# --- rendering helpers ------------------------------------------------------------------------


def _format_when(timezone: str) -> Any:
    def when(value: dt.datetime) -> str:
        # Unambiguous for colleagues anywhere: "1 Dec 2026, 14:30", never "12/1/26".
        return i18n.format_moment_plainly(value, i18n.regional(i18n.current_locale.get()), timezone)

    return when


def _context(user: User | None, **values: Any) -> dict[str, Any]:
    return {"access": None, "user": user, "editors": EDITORS, **values}


def _field(form: Any, name: str, limit: int = FORM_FIELD_MAX) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


# --- logout and account ----------------------------------------------------------------------


def logout(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    with unit_of_work(request) as db:
        current = current_user(request, db)
        if current is not None:
            sessions.log_out(
                db, current, company_id=request.app.state.company_id, client_ip=client_ip(request)
            )
    response = RedirectResponse(f"{LOGIN_PATH}?logged_out=1", status_code=303)
    clear_admin_cookie(response, settings)
    return response


def logout_everywhere(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    with unit_of_work(request) as db:
        user = require_role(request, db)
        if isinstance(user, Response):
            return user
        sessions.log_out_everywhere(
            db, user, company_id=request.app.state.company_id, client_ip=client_ip(request)
        )
    response = RedirectResponse(f"{LOGIN_PATH}?logged_out=everywhere", status_code=303)
    clear_admin_cookie(response, settings)
    return response


def account(request: Request) -> Response:
    with unit_of_work(request) as db:
        current = require_session(request, db)
        if isinstance(current, Response):
            return current
        return account_page(request, db, current)


ACCOUNT_NOTICES = ("totp-enabled", "totp-disabled", "totp-disable-failed", "password-changed")


def account_page(
    request: Request,
    db: Session,
    current: CurrentUser,
    *,
    totp_secret: str | None = None,
    totp_failed: bool = False,
    password_error: str | None = None,
    status_code: int = 200,
) -> Response:
    """The user's account: password, open sessions, log out everywhere, the second factor."""
    settings: Settings = request.app.state.settings
    live = sessions.open_sessions(
        db, current.user, dt.timedelta(minutes=settings.session_idle_minutes)
    )
    setup: dict[str, str] | None = None
    if not current.user.totp_secret:
        from portal.web.backoffice_users import totp_qr_svg

        secret = totp_secret or totp.new_totp_secret()
        uri = totp.totp_uri(secret, current.user.email, settings.company.name)
        setup = {"secret": secret, "qr": totp_qr_svg(uri)}
    notice = request.query_params.get("done")
    return render(
        request,
        "backoffice/account.html",
        _context(
            current.user,
            sessions=live,
            this_session=current.session_id,
            when=_format_when(settings.company.timezone),
            totp_setup=setup,
            totp_failed=totp_failed,
            password_error=password_error,
            notice=notice if notice in ACCOUNT_NOTICES else None,
        ),
        status_code=status_code,
    )


# --- customers --------------------------------------------------------------------------------


def _page_number(raw: str | None) -> int:
    try:
        return max(1, min(int(raw or "1"), 1_000_000))
    except ValueError:
        return 1


def customers(request: Request) -> Response:
    """The customers with their balances: search, sort, pages."""
    state = request.app.state
    settings: Settings = state.settings
    params = request.query_params
    with unit_of_work(request) as db:
        user = require_role(request, db)
        if isinstance(user, Response):
            return user
        page = queries.customer_balances(
            db,
            state.company_id,
            company_timezone=settings.company.timezone,
            search=params.get("q", ""),
            sort=params.get("sort", queries.SORTS[0]),
            page=_page_number(params.get("page")),
        )
        return render(
            request,
            "backoffice/customers.html",
            _context(
                user,
                result=page,
                sorts=queries.SORTS,
            ),
            block="customer_table",
        )


def _not_found(request: Request, user: User) -> Response:
    return render(request, "backoffice/not_found.html", _context(user), status_code=404)


def customer_detail(request: Request) -> Response:
    customer_id: int = request.path_params["customer_id"]
    with unit_of_work(request) as db:
        user = require_role(request, db)
        if isinstance(user, Response):
            return user
        return customer_page(request, db, user, customer_id)


def customer_page(
    request: Request,
    db: Session,
    user: User,
    customer_id: int,
    *,
    desk_error: str | None = None,
) -> Response:
    """A customer's file: contacts, open items, cases, pauses, notes and the timeline."""
    state = request.app.state
    settings: Settings = state.settings
    file = queries.customer_file(db, state.company_id, customer_id)
    if file is None:
        return _not_found(request, user)
    notice = request.query_params.get("done")
    return render(
        request,
        "backoffice/customer.html",
        _context(
            user,
            file=file,
            customer=file.customer,
            cases=customer_cases(db, customer_id),
            credit_notes=customer_credit_notes(db, customer_id),
            owner=db.get(User, file.customer.owner_user_id)
            if file.customer.owner_user_id
            else None,
            paused_ids={i.id for i in file.open_invoices if i.id in file.paused_invoice_ids},
            notice=notice if notice in NOTICES else None,
            desk_error=desk_error,
            when=_format_when(settings.company.timezone),
            cockpit=customer_cockpit(
                db, state.company_id, customer_id, clock.today_in(settings.company.timezone)
            ),
        ),
        status_code=400 if desk_error else 200,
    )


def _customer_redirect(customer_id: int, notice: str) -> str:
    return f"{PREFIX}/customers/{customer_id}?done={notice}"


def resend_link(request: Request) -> Response:
    """Issue a fresh link and email it to the primary contact, after the commit."""
    customer_id: int = request.path_params["customer_id"]
    state = request.app.state
    settings: Settings = state.settings
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        customer = queries.get_customer(db, state.company_id, customer_id)
        if customer is None:
            return _not_found(request, user)
        contact = customer.primary_contact
        if contact is None or not contact.email:
            return RedirectResponse(_customer_redirect(customer_id, "no-email"), status_code=303)
        url = links.issue_link(
            db,
            state.signer,
            settings.base_url,
            customer,
            actor=Actor.USER,
            actor_id=str(user.id),
            purpose="back-office",
        )
        record(
            db,
            company_id=customer.company_id,
            customer_id=customer.id,
            actor=Actor.USER,
            actor_id=str(user.id),
            action="link.emailed",
            subject_type="contact",
            subject_id=contact.id,
            details={"to": contact.email},
        )
        to_send = FreshLink(
            email=contact.email,
            name=contact.name,
            language=customer.language,
            url=url,
            customer_name=customer.name,
        )
    # The transaction has committed: only now may the email leave.
    return RedirectResponse(
        _customer_redirect(customer_id, "link-sent"),
        status_code=303,
        background=BackgroundTask(
            _send_link,
            state.templates,
            state.mailer,
            replace(settings, company=state.site.look.identity(settings.company)),
            to_send,
        ),
    )


def _send_link(templates: Any, mailer: Mailer, settings: Settings, link: FreshLink) -> None:
    message = compose(
        templates,
        "fresh_link",
        link.email,
        link.language,
        settings.base_url.split("//")[-1].split(":")[0],
        company=settings.company,
        link=link,
        settings=settings,
    )
    try:
        mailer.send(message)
    except OSError:
        log.exception("could not send a link from the back office")


def revoke_links(request: Request) -> Response:
    customer_id: int = request.path_params["customer_id"]
    state = request.app.state
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        customer = queries.get_customer(db, state.company_id, customer_id)
        if customer is None:
            return _not_found(request, user)
        links.revoke_links(db, customer, actor=Actor.USER, actor_id=str(user.id))
    return RedirectResponse(_customer_redirect(customer_id, "revoked"), status_code=303)


routes = [
    Route(f"{PREFIX}/customers", customers, name="admin_customers"),
    Route(f"{PREFIX}/logout", logout, methods=["POST"], name="admin_logout"),
    Route(
        f"{PREFIX}/logout-everywhere",
        logout_everywhere,
        methods=["POST"],
        name="admin_logout_everywhere",
    ),
    Route(f"{PREFIX}/account", account, name="admin_account"),
    Route(f"{PREFIX}/customers/{{customer_id:int}}", customer_detail, name="admin_customer"),
    Route(
        f"{PREFIX}/customers/{{customer_id:int}}/resend-link",
        resend_link,
        methods=["POST"],
        name="admin_resend_link",
    ),
    Route(
        f"{PREFIX}/customers/{{customer_id:int}}/revoke-links",
        revoke_links,
        methods=["POST"],
        name="admin_revoke_links",
    ),
]
