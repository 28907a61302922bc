"""Friendly, translated error pages; never a trace."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from portal.access.service import PortalAccess
from portal.i18n import gettext_ as _
from portal.web.api import problems
from portal.web.context import choose_language, current_access, use_language
from portal.web.limits import API_BODY_MAX_BYTES
from portal.web.rendering import read_unit_of_work, render

log = logging.getLogger(__name__)

# The integrators' API answers every error as application/problem+json, never a page.
API_PREFIX = "/api/"


def is_api(path: str) -> bool:
    return path.startswith(API_PREFIX)


def _api_problem_texts(status: int) -> tuple[str, str, str]:
    if status == 404:
        return "not-found", _("Not found."), _("Nothing exists at this address.")
    if status == 405:
        return (
            "method-not-allowed",
            _("This method is not allowed here."),
            _("See the Allow header for the methods this address takes."),
        )
    if status == 413:
        return (
            "too-large",
            _("The body is too large."),
            _("Send at most %(kib)d KiB.", kib=API_BODY_MAX_BYTES // 1024),
        )
    if status == 503:
        return "busy", _("The service is busy."), _("Try again in a moment.")
    return "server-error", _("Something went wrong on our side."), _("Try again later.")


def api_problem(request: Request, status: int, headers: dict[str, str] | None = None) -> Response:
    """The problem document for an error the API's own handlers did not answer: an
    unknown path or method, a body too large, a crash, an overloaded worker."""
    use_language(choose_language(request))
    status = status if status in (404, 405, 413, 503) else 500
    kind, title, detail = _api_problem_texts(status)
    return problems.problem(status, kind, title, detail, headers=headers)


def _session_of(request: Request) -> PortalAccess | None:
    """The debtor's session if there is one, so the page keeps their language and menu."""
    try:
        with read_unit_of_work(request) as db:
            return current_access(request, db)
    except Exception:  # an error page must render even when the database fails
        log.warning("error page rendered without the session", exc_info=True)
        return None


def _error_page(request: Request, status: int) -> Response:
    access = _session_of(request)
    use_language(choose_language(request, access))
    template = "errors/404.html" if status in (404, 405) else "errors/error.html"
    return render(request, template, {"access": access, "status": status}, status_code=status)


def busy_page(request: Request) -> Response:
    """A 503 page, or problem for the API.

    The worker has as many requests in flight as it takes (web.overload).

        No database, and rendered once per language: under overload a refusal must cost the
        worker next to nothing, or refusing starves the requests it admitted.
    """
    if is_api(request.url.path):
        return api_problem(request, 503, {"Retry-After": "1"})
    language = choose_language(request)
    pages: dict[str, HTMLResponse] = request.app.state.busy_pages
    page = pages.get(language)
    if page is None:
        use_language(language)
        # As seen from the home page (the language switch returns there), for any path.
        home = Request(
            {
                "type": "http",
                "method": "GET",
                "path": "/",
                "query_string": b"",
                "headers": [],
                "app": request.app,
            }
        )
        page = pages[language] = render(home, "errors/busy.html", {"access": None})
    return Response(page.body, status_code=503, headers=dict(page.headers))


async def http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if is_api(request.url.path):
        headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else None
        return api_problem(request, status, headers)
    return await run_in_threadpool(_error_page, request, status)


async def server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if is_api(request.url.path):
        return api_problem(request, 500)
    return await run_in_threadpool(_error_page, request, 500)


async def too_large(scope: Scope, receive: Receive, send: Send) -> None:
    """413, translated, for a body over its route's limit (``RequestBodyLimit``).

    Rendered on the event loop without the database: the request is refused before any
    of it is read. The connection closes after the answer so the rest is never read.
    """
    request = Request(scope, receive)
    response: Response
    if scope["path"].startswith("/webhooks/"):
        response = PlainTextResponse("payload too large", status_code=413)
    elif is_api(scope["path"]):
        response = api_problem(request, 413)
    else:
        use_language(choose_language(request))
        response = render(
            request, "errors/too_large.html", {"access": None, "status": 413}, status_code=413
        )
    response.headers["Connection"] = "close"
    await response(scope, receive, send)
