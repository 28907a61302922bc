"""Page rendering: full pages, or one named block for htmx requests."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from jinja2_fragments import render_block
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from portal import i18n


def is_htmx(request: Request) -> bool:
    headers = request.headers
    return (
        headers.get("hx-request") == "true"
        and headers.get("hx-boosted") != "true"
        and headers.get("hx-history-restore-request") != "true"
    )


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    block: str | None = None,
    background: BackgroundTask | None = None,
) -> HTMLResponse:
    """Render ``template``; an htmx request for ``block`` gets only that block."""
    state = request.app.state
    env = state.templates
    access = context.get("access")
    # Dates as written where the reader is: the customer's country in the portal, the
    # company's in the back office (i18n.regional).
    customer = getattr(access, "customer", None)
    i18n.current_region.set(getattr(customer, "country", "") or state.settings.company.country)
    host = getattr(access, "embed_origin", None) or context.get("embed_host")
    full_context = {
        "request": request,
        "settings": state.settings,
        # Set by the back office's session check (web.backoffice.require_session).
        "reminder_freeze": getattr(request.state, "reminder_freeze", None),
        "company": state.settings.company,
        "locale": i18n.current_locale.get(),
        "languages": state.settings.languages,
        "htmx_available": state.htmx_available,
        "lookup_enabled": state.site.lookup_enabled,
        # The company's look (branding.service.Look) and its texts in this language.
        "look": state.site.look,
        "brand_texts": state.site.look.texts_for(i18n.current_locale.get()),
        "brand_version": state.site.look_version,
        **context,
        # Inside the widget on the company's website: compact layout (base.html).
        "embedded": host is not None,
        "embed_host": host,
    }
    if block is not None and is_htmx(request):
        html = render_block(env, template, block, full_context)
    else:
        html = env.get_template(template).render(full_context)
    response = HTMLResponse(html, status_code=status_code, background=background)
    response.headers["Vary"] = "HX-Request, Cookie, Accept-Language"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = i18n.current_locale.get()
    return response


@contextmanager
def unit_of_work(request: Request) -> Iterator[Session]:
    """One transaction per request: committed before the response leaves."""
    with request.app.state.session_factory() as session, session.begin():
        yield session


PageHandler = Callable[[Request, Session], Response]


def page_view(handler: PageHandler) -> Callable[[Request], Awaitable[Response]]:
    """A page view: ``handler(request, db)`` reads through ``db`` (autocommit, as
    read_unit_of_work) and renders, without ever holding up the worker's other requests.

    It runs on the event loop over the asyncio engine (psycopg's async mode on PostgreSQL,
    aiosqlite on a SQLite file): SQLAlchemy runs the handler in a greenlet and every
    statement awaits its answer, so a page view waiting on a lock leaves the loop serving
    the rest. With an in-memory database or a session factory given (as in the tests) it
    runs in the thread pool, like any plain handler.
    """

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        factory: async_sessionmaker[AsyncSession] | None = (
            request.app.state.async_read_session_factory
        )
        if factory is None:
            return await run_in_threadpool(_in_read_session, handler, request)
        # First come, first served: as many page views at once as the pool has connections,
        # the others waiting in order (asyncio's semaphore is FIFO). Left to the pool's queue,
        # under load a few page views lost every race for a connection and waited seconds.
        async with request.app.state.page_view_turns, factory() as session:
            response = await session.run_sync(lambda db: handler(request, db))
            # The connection is in autocommit: what the handler executed is stored already, and
            # a COMMIT would only cost a trip to the database. ORM changes still need a flush.
            await session.flush()
            return response

    return endpoint


def _in_read_session(handler: PageHandler, request: Request) -> Response:
    with read_unit_of_work(request) as db:
        return handler(request, db)


@contextmanager
def read_unit_of_work(request: Request) -> Iterator[Session]:
    """For page views: no transaction around the reads (see db.make_read_engine)."""
    with request.app.state.read_session_factory() as session:
        yield session
        session.commit()


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None
