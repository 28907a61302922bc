"""Per-request facts shared by the portal handlers: the session and the language."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from portal import i18n
from portal.access.service import PortalAccess, load_access, load_access_and_open_invoices
from portal.invoices.service import InvoiceLine
from portal.settings import Settings

LANGUAGE_COOKIE = "relance_lang"


def session_cookie_name(settings: Settings) -> str:
    # The __Host- prefix pins the cookie to this host over HTTPS.
    return "__Host-relance_session" if settings.secure_cookies else "relance_session"


def current_access(request: Request, db: Session) -> PortalAccess | None:
    settings: Settings = request.app.state.settings
    secret = request.cookies.get(session_cookie_name(settings))
    return load_access(db, secret, dt.timedelta(minutes=settings.session_idle_minutes))


def current_access_and_open_invoices(
    request: Request, db: Session
) -> tuple[PortalAccess | None, list[InvoiceLine]]:
    """current_access() and the customer's open invoices, in one database round trip."""
    settings: Settings = request.app.state.settings
    secret = request.cookies.get(session_cookie_name(settings))
    idle = dt.timedelta(minutes=settings.session_idle_minutes)
    return load_access_and_open_invoices(db, secret, idle)


def choose_language(
    request: Request, access: PortalAccess | None = None, customer_language: str | None = None
) -> str:
    """Session choice, then the customer's language, then the browser's, then the default."""
    settings: Settings = request.app.state.settings
    supported = settings.languages
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    candidates = (
        # In a session: the session's choice, then the customer's language.
        (access.language, access.customer.language, chosen)
        if access
        # Outside one: what this visitor chose, then the language of the customer a link named.
        else (chosen, customer_language)
    )
    for candidate in candidates:
        if (language := i18n.normalise(candidate, supported)) is not None:
            return language
    return (
        i18n.negotiate(request.headers.get("accept-language"), supported)
        or settings.default_language
    )


def use_language(language: str) -> None:
    """Set the language for the rest of this request (templates, messages)."""
    i18n.current_locale.set(language)


def set_session_cookie(response: Response, settings: Settings, secret: str) -> None:
    response.set_cookie(
        session_cookie_name(settings),
        secret,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        session_cookie_name(settings),
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )


def safe_next(target: str | None, default: str = "/") -> str:
    """Only local paths: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def remember_language(response: Response, settings: Settings, language: str) -> None:
    """The chosen language outlives the session (the welcome and logged-out pages use it)."""
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=365 * 86400,
        samesite="lax",
        secure=settings.secure_cookies,
        httponly=True,
    )
