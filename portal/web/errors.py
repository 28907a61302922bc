"""Friendly, translated error pages; never a trace."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from portal.access.service import PortalAccess
from portal.web.context import choose_language, current_access, use_language
from portal.web.rendering import read_unit_of_work, render

log = logging.getLogger(__name__)


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
    """The worker has as many requests in flight as it takes (web.overload).

    No database, and rendered once per language: under overload a refusal must cost the
    worker next to nothing, or refusing starves the requests it admitted.
    """
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
    return await run_in_threadpool(_error_page, request, status)


async def server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
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
    else:
        use_language(choose_language(request))
        response = render(
            request, "errors/too_large.html", {"access": None, "status": 413}, status_code=413
        )
    response.headers["Connection"] = "close"
    await response(scope, receive, send)
