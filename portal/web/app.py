"""The ASGI application: create_app(settings) wires settings, database, templates and routes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from anyio import CapacityLimiter, to_thread
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Mount

from portal.assets import STATIC_DIR
from portal.assets import VENDOR_DIR as HTMX_DIR
from portal.company.service import sync_company
from portal.db import (
    ASYNC_POOL_SIZE,
    make_async_read_engine,
    make_engine,
    make_read_engine,
    make_session_factory,
    transaction,
)
from portal.embed.handoff import HandoffSigner
from portal.links.tokens import LinkSigner
from portal.mail.sender import Mailer
from portal.payments.stripe_gateway import StripeGateway
from portal.settings import Settings, load_settings
from portal.templating import make_environment
from portal.web import (
    backoffice,
    backoffice_branding,
    backoffice_customers,
    backoffice_embed,
    backoffice_invoices,
    backoffice_messages,
    backoffice_payments,
    backoffice_reminders,
    backoffice_scenario_book,
    backoffice_scenarios,
    backoffice_transfers,
    backoffice_users,
    bank,
    card,
    cases,
    casework,
    cockpit,
    embed,
    errors,
    imports,
    inbound,
    integrations,
    links,
    login,
    lookup,
    outbox,
    payments,
    portal,
    reminder_policy,
    reminders,
    system,
    webhooks,
)
from portal.web.api.framework import routes as api_routes
from portal.web.api.ratelimit import RateLimiter
from portal.web.limits import body_limits
from portal.web.middleware import CrossSiteRequestGuard, RequestBodyLimit, SecurityHeaders
from portal.web.overload import InFlightLimit
from portal.web.site_config import SiteConfig
from portal.web.static_files import VersionedStaticFiles

WEBHOOK_PREFIX = "/webhooks/"
# The API authenticates each request by its bearer key, never by a cookie: no CSRF to guard.
API_PREFIX = "/api/"
# Smaller answers gain less from gzip than its header costs.
GZIP_MINIMUM_BYTES = 500


def create_app(
    settings: Settings | None = None,
    session_factory: sessionmaker[Session] | None = None,
    *,
    freeze_after_startup: bool = False,
) -> Starlette:
    settings = settings or load_settings()
    settings.check()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engines = []
        factory = read_factory = session_factory
        async_engine = None
        if factory is None:
            engine = make_engine(settings.database_url)
            read_engine = make_read_engine(engine)
            engines = [read_engine, engine]
            factory = make_session_factory(engine)
            read_factory = make_session_factory(read_engine)
            async_engine = make_async_read_engine(engine)
        app.state.async_read_session_factory = (
            async_sessionmaker(async_engine, expire_on_commit=False) if async_engine else None
        )
        # Page views queue for the asyncio pool's connections in arrival order (see
        # rendering.page_view): the pool's own queue lets a newcomer take a connection
        # given back before the page views already waiting for one.
        app.state.page_view_turns = asyncio.Semaphore(ASYNC_POOL_SIZE)
        with transaction(factory) as db:
            company = sync_company(db, settings.company)
            company_id = company.id
            site.load(db, company_id)
        to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        app.state.health_limiter = CapacityLimiter(1)
        app.state.session_factory = factory
        app.state.read_session_factory = read_factory
        app.state.company_id = company_id
        if freeze_after_startup:
            # The engines, pools and caches built above live as long as the process, as
            # the modules do (asgi()): out of the cycle collector's full scans too.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            for each in engines:
                each.dispose()
            if async_engine is not None:
                await async_engine.dispose()

    site = SiteConfig(settings)
    middleware = [
        # Outermost: it compresses every answer, the refusals of the guards below included.
        # Pure ASGI, so a streamed body (CSV exports) is compressed chunk by chunk.
        Middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_BYTES),
        Middleware(SecurityHeaders, frame_ancestors=site, hsts=not settings.development),
        Middleware(
            InFlightLimit,
            limit=settings.max_requests_in_flight,
            latency_target=settings.slow_answer_ms / 1000,
            busy=errors.busy_page,
            exempt_prefixes=("/healthz", "/static/"),
        ),
        Middleware(
            RequestBodyLimit, limit_for=body_limits(settings).limit_for, refuse=errors.too_large
        ),
        Middleware(
            CrossSiteRequestGuard,
            allowed_origins=[settings.base_url],
            exempt_prefixes=[WEBHOOK_PREFIX, API_PREFIX],
        ),
    ]
    routes = [
        *outbox.routes,
        *system.routes,
        *links.routes,
        *embed.routes,
        *lookup.routes,
        *portal.routes,
        *payments.routes,
        *card.routes,
        *webhooks.routes,
        *inbound.routes,
        *login.routes,
        *cockpit.routes,
        *backoffice.routes,
        *backoffice_customers.routes,
        *backoffice_embed.routes,
        *backoffice_branding.routes,
        *backoffice_invoices.routes,
        *backoffice_payments.routes,
        *backoffice_transfers.routes,
        *bank.routes,
        *reminders.routes,
        *backoffice_scenario_book.routes,  # before the scenario pages: /history, /new, ...
        *backoffice_scenarios.routes,
        *backoffice_messages.routes,
        *backoffice_reminders.routes,
        *reminder_policy.routes,
        *cases.routes,
        *casework.routes,
        *backoffice_users.routes,
        *imports.routes,
        *api_routes(),
        *integrations.routes,
        Mount(
            "/static/vendor",
            app=VersionedStaticFiles(directory=HTMX_DIR, check_dir=False),
            name="vendor",
        ),
        Mount("/static", app=VersionedStaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(
        debug=False,
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            404: errors.http_error,
            405: errors.http_error,
            500: errors.server_error,
            Exception: errors.server_error,
        },
    )
    app.state.settings = settings
    app.state.site = site
    app.state.handoff = HandoffSigner(settings.secret_keys)
    app.state.templates = make_environment()
    app.state.signer = LinkSigner(settings.secret_keys, settings.link_max_age_seconds)
    app.state.mailer = Mailer(settings.smtp, settings.mail_spool_dir)
    app.state.mailer.sender_source = lambda: site.look.sender
    app.state.stripe = StripeGateway(settings.stripe) if settings.stripe.enabled else None
    app.state.api_rate_limiter = RateLimiter(settings.api.rate_per_minute)
    app.state.busy_pages = {}  # language -> the rendered 503 page (errors.busy_page)
    app.state.htmx_available = (HTMX_DIR / "htmx.min.js").is_file()
    # Seconds every failed back-office login waits before its answer (tests set 0).
    app.state.login_failure_delay = login.LOGIN_FAILURE_DELAY_SECONDS
    # Every "Pay an invoice" answer takes this long (web/lookup.py; tests set 0).
    app.state.lookup_answer_seconds = lookup.LOOKUP_ANSWER_SECONDS
    return app


def asgi() -> Starlette:
    """Entry point for ``uvicorn --factory portal.web.app:asgi``."""
    app = create_app(freeze_after_startup=True)
    # Everything imported so far lives as long as the process: keep it out of the cyclic
    # garbage collector's scans, which otherwise walk it again and again under load.
    gc.collect()
    gc.freeze()
    return app
