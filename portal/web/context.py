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


def set_session_cookie(
    response: Response, settings: Settings, secret: str, *, embedded: bool = False
) -> None:
    """``SameSite=Lax`` at the top level. In the widget (a frame on another site) a Lax
    cookie is never sent back: the embedded session's cookie is partitioned by the host
    site (CHIPS), ``SameSite=None; Secure; Partitioned`` (Chromium counts
    ``http://localhost`` as secure, so development and tests on loopback work too)."""
    if embedded:
        name = session_cookie_name(settings)
        attributes = "HttpOnly; Path=/; SameSite=None; Secure"
        response.raw_headers.append(
            (b"set-cookie", f"{name}={secret}; {attributes}; Partitioned".encode("latin-1"))
        )
        return
    response.set_cookie(
        session_cookie_name(settings),
        secret,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


def set_unpartitioned_frame_cookie(response: Response, settings: Settings, secret: str) -> None:
    """After the Storage Access API granted the frame its own cookies: a plain
    ``SameSite=None; Secure`` cookie, which the grant lets through."""
    name = session_cookie_name(settings)
    response.raw_headers.append(
        (b"set-cookie", f"{name}={secret}; HttpOnly; Path=/; SameSite=None; Secure".encode())
    )


def clear_session_cookie(response: Response, settings: Settings, *, embedded: bool = False) -> None:
    if embedded:
        name = session_cookie_name(settings)
        expired = "Max-Age=0; HttpOnly; Path=/; SameSite=None; Secure"
        response.raw_headers.append((b"set-cookie", f'{name}=""; {expired}; Partitioned'.encode()))
        response.raw_headers.append((b"set-cookie", f'{name}=""; {expired}'.encode()))
        return
    response.delete_cookie(
        session_cookie_name(settings),
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )


def embed_host(request: Request, raw: object) -> str | None:
    """The host site a widget page talks to, if it is allowed (else None: a top-level page)."""
    if not isinstance(raw, str) or not raw or len(raw) > 200:
        return None
    origin = raw.rstrip("/").lower()
    return origin if request.app.state.site.allows_host(origin) else None


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
