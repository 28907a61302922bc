"""The worker's share of webhooks: a thread of ``portal worker`` that delivers the outbox
as it fills, and once a minute disables endpoints failing for days (emailing the admins,
after the commit) and prunes what the API and the webhooks keep past their retention."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from jinja2 import Environment
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.api import retention
from portal.mail.sender import Mailer, compose
from portal.settings import Settings
from portal.users.models import Role, User
from portal.webhooks.delivery import deliver_due
from portal.webhooks.endpoints import disable_failing
from portal.webhooks.transport import Connections

log = logging.getLogger(__name__)

HEALTH_EVERY_SECONDS = 60.0


def check_health(
    session_factory: Callable[[], Session],
    settings: Settings,
    templates: Environment,
    mailer: Mailer,
) -> int:
    """Disable endpoints failing for ``webhook_disable_after_days``; email every active
    admin about each, after the commit. Returns how many were disabled."""
    with session_factory() as session, session.begin():
        disabled = [
            (e.url, e.failing_since)
            for e in disable_failing(session, settings.api.webhook_disable_after_days)
        ]
        admins = (
            list(session.scalars(select(User).where(User.role == Role.ADMIN, User.is_active)))
            if disabled
            else []
        )
        recipients = [(a.email, a.name or a.email) for a in admins]
    domain = settings.base_url.split("//")[-1].split(":")[0]
    for url, since in disabled:
        for address, person in recipients:
            message = compose(
                templates,
                "webhook_disabled",
                address,
                settings.default_language,
                domain,
                language=settings.default_language,
                company=settings.company,
                person=person,
                url=url,
                since=since,
                days=settings.api.webhook_disable_after_days,
                manage_url=f"{settings.base_url}/admin/webhooks",
            )
            try:
                mailer.send(message)
            except Exception:  # the endpoint stays disabled; the log says who was not told
                log.exception("could not email %s about the disabled webhook %s", address, url)
    return len(disabled)


def run_webhooks_worker(
    session_factory: Callable[[], Session],
    settings: Settings,
    templates: Environment,
    mailer: Mailer,
    stop: threading.Event,
) -> None:
    connections = Connections(settings.api.webhook_timeout_seconds)
    last_health = 0.0
    try:
        while not stop.is_set():
            try:
                while not stop.is_set() and deliver_due(session_factory, settings.api, connections):
                    pass
                if time.monotonic() - last_health >= HEALTH_EVERY_SECONDS:
                    check_health(session_factory, settings, templates, mailer)
                    retention.prune(session_factory, settings.api)
                    last_health = time.monotonic()
            except Exception:  # a database hiccup must not end the worker; try again later
                log.exception("webhook delivery round failed")
            stop.wait(settings.api.webhook_poll_seconds)
    finally:
        connections.close()


def start_thread(
    session_factory: Callable[[], Session], settings: Settings, stop: threading.Event
) -> threading.Thread:
    from portal.templating import make_environment

    thread = threading.Thread(
        target=run_webhooks_worker,
        args=(
            session_factory,
            settings,
            make_environment(),
            Mailer(settings.smtp, settings.mail_spool_dir),
            stop,
        ),
        name="webhooks",
        daemon=True,
    )
    thread.start()
    return thread
