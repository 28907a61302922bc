"""The app served for real (uvicorn, own database) next to localstripe and an SMTP sink.

Card payment tests need what a savepoint session cannot give: localstripe delivering
webhooks to a listening app, concurrent deliveries on separate connections, and a
receipt reaching an SMTP server. ``payment_world()`` starts all of it on loopback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import stripe
import uvicorn
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from portal import migrate
from portal.company.models import Company
from portal.company.service import sync_company
from portal.customers.models import Customer
from portal.db import make_engine, make_session_factory, transaction
from portal.links.service import issue_link
from portal.links.tokens import LinkSigner
from portal.mail.sender import Mailer
from portal.payments.receipts import deliver_pending
from portal.settings import Settings, load_settings
from portal.templating import make_environment
from portal.web.app import create_app
from tests.conftest import TEST_SECRET, fresh_database_url
from tests.mail_sink import Inbox, free_port, smtp_server
from tests.stripe_server import LocalStripe, localstripe_server, stripe_client

WEBHOOK_SECRET = "whsec_relance_test_secret"
START_DEADLINE_SECONDS = 15.0


@dataclass
class PaymentWorld:
    backend: str
    url: str
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    stripe: LocalStripe
    stripe_client: stripe.StripeClient
    inbox: Inbox
    company_id: int

    def session(self) -> Any:
        return transaction(self.sessions)

    def portal(self, customer: Customer) -> httpx.Client:
        """A browser-like client holding a portal session for ``customer``."""
        with transaction(self.sessions) as db:
            signer = LinkSigner(self.settings.secret_keys, self.settings.link_max_age_seconds)
            link = issue_link(db, signer, self.settings.base_url, db.merge(customer))
        client = httpx.Client(
            base_url=self.url,
            headers={"Sec-Fetch-Site": "same-origin"},
            follow_redirects=False,
            trust_env=False,
            timeout=30,
        )
        response = client.get(link.removeprefix(self.settings.base_url))
        assert response.status_code == 303, response.text
        return client

    def post_event(self, event: dict[str, Any], *, timestamp: int | None = None) -> httpx.Response:
        """Deliver ``event`` to the app's webhook endpoint, signed like Stripe signs."""
        body = json.dumps(event).encode()
        return httpx.post(
            f"{self.url}/webhooks/stripe",
            content=body,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": stripe_signature(body, WEBHOOK_SECRET, timestamp),
            },
            trust_env=False,
            timeout=30,
        )


def stripe_signature(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """Stripe's scheme: ``t=<unix time>,v1=<HMAC-SHA256 of "t.body">``."""
    stamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{stamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def world_settings(
    database_url: str, port: int, api_base: str, smtp_port: int, workdir: Path
) -> Settings:
    return load_settings(
        {
            "PORTAL_ENVIRONMENT": "test",
            "PORTAL_SECRET_KEYS": TEST_SECRET,
            "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
            "PORTAL_DATABASE_URL": database_url,
            "PORTAL_DOCUMENTS_DIR": str(workdir / "documents"),
            "PORTAL_STRIPE_SECRET_KEY": "sk_test_12345",
            "PORTAL_STRIPE_PUBLISHABLE_KEY": "pk_test_12345",
            "PORTAL_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "PORTAL_STRIPE_API_BASE": api_base,
            "PORTAL_STRIPE_JS_URL": f"{api_base}/js.stripe.com/v3/",
            "PORTAL_STRIPE_AUTOMATIC_PAYMENT_METHODS": "false",
            "PORTAL_SMTP_HOST": "127.0.0.1",
            "PORTAL_SMTP_PORT": str(smtp_port),
            "PORTAL_SMTP_SECURITY": "none",
            "PORTAL_PARTIAL_PAYMENT_MINIMUM": "10.00",
        }
    )


@contextmanager
def serve(settings: Settings, port: int) -> Iterator[None]:
    """uvicorn in a thread, one worker, until the block ends."""
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def receipts_worker(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[None]:
    """What ``portal worker`` does for receipts, in a thread: deliver owed ones, often."""
    env = make_environment()
    mailer = Mailer(settings.smtp, settings.mail_spool_dir)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.1):
            deliver_pending(sessions, env, mailer, settings)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@contextmanager
def payment_world(backend: str, workdir: Path) -> Iterator[PaymentWorld]:
    database_url, drop = fresh_database_url(backend, workdir)
    engine = make_engine(database_url)
    try:
        migrate.upgrade(database_url, engine=engine)
        with localstripe_server() as fake_stripe, smtp_server() as (inbox, smtp_port):
            port = free_port()
            settings = world_settings(database_url, port, fake_stripe.api_base, smtp_port, workdir)
            sessions = make_session_factory(engine)
            with transaction(sessions) as db:
                company: Company = sync_company(db, settings.company)
                company_id = company.id
            hook = f"app-{port}"
            with serve(settings, port), receipts_worker(settings, sessions):
                fake_stripe.configure_webhook(
                    f"{settings.base_url}/webhooks/stripe", WEBHOOK_SECRET, name=hook
                )
                try:
                    yield PaymentWorld(
                        backend,
                        settings.base_url,
                        settings,
                        engine,
                        sessions,
                        fake_stripe,
                        stripe_client(fake_stripe),
                        inbox,
                        company_id,
                    )
                finally:
                    fake_stripe.disable_webhook(hook)
    finally:
        engine.dispose()
        drop()
