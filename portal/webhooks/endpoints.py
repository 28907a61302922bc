"""Registering, changing and watching webhook endpoints (admins, in the back office)."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Collection, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.changes import FieldErrors, Problems
from portal.i18n import gettext_ as _
from portal.timeline.models import Actor
from portal.timeline.service import record
from portal.webhooks import ssrf
from portal.webhooks.events import EVENT_TYPES
from portal.webhooks.models import (
    DeliveryAttempt,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)

DESCRIPTION_MAX = 200


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def url_problem(reason: str) -> str:
    return {
        ssrf.UnsafeUrl.SCHEME: _("Enter an https:// address."),
        ssrf.UnsafeUrl.FORM: _("Enter a web address such as https://erp.example.com/hooks."),
        ssrf.UnsafeUrl.UNRESOLVED: _("This address's host name does not resolve."),
        ssrf.UnsafeUrl.INTERNAL: _(
            "This address leads to a private or local network: webhooks go to public addresses."
        ),
    }[reason]


def _validate(
    url: str, events: Collection[str], description: str, allowed: Sequence[str]
) -> tuple[str, list[str], str]:
    problems = Problems()
    try:
        url = ssrf.check_url(url, allowed)
    except ssrf.UnsafeUrl as refused:
        problems.add("url", url_problem(refused.reason))
    chosen = [e for e in EVENT_TYPES if e in set(events)]
    if not chosen or len(chosen) != len(set(events)):
        problems.add("events", _("Choose at least one event."))
    description = description.strip()
    if len(description) > DESCRIPTION_MAX:
        problems.add(
            "description", _("Keep it to %(max)d characters at most.", max=DESCRIPTION_MAX)
        )
    problems.check()
    return url, chosen, description


def _event(session: Session, endpoint: WebhookEndpoint, action: str, user_id: int) -> None:
    record(
        session,
        company_id=endpoint.company_id,
        actor=Actor.USER,
        actor_id=str(user_id),
        action=action,
        subject_type="webhook_endpoint",
        subject_id=endpoint.id,
        details={"url": endpoint.url, "events": list(endpoint.events)},
    )


def create_endpoint(
    session: Session,
    company_id: int,
    *,
    url: str,
    events: Collection[str],
    description: str,
    user_id: int,
    allowed: Sequence[str] = (),
) -> WebhookEndpoint:
    """A new enabled endpoint with a fresh secret. Raises ``FieldErrors``."""
    url, chosen, description = _validate(url, events, description, allowed)
    endpoint = WebhookEndpoint(
        company_id=company_id,
        url=url,
        events=chosen,
        description=description,
        secret=new_secret(),
        enabled=True,
        created_at=clock.now(),
    )
    session.add(endpoint)
    session.flush()
    _event(session, endpoint, "webhook.registered", user_id)
    return endpoint


def update_endpoint(
    session: Session,
    endpoint: WebhookEndpoint,
    *,
    url: str,
    events: Collection[str],
    description: str,
    enabled: bool,
    user_id: int,
    allowed: Sequence[str] = (),
) -> None:
    url, chosen, description = _validate(url, events, description, allowed)
    endpoint.url, endpoint.events, endpoint.description = url, chosen, description
    if enabled and not endpoint.enabled:
        endpoint.failing_since = None
        endpoint.disabled_at = None
    elif not enabled and endpoint.enabled:
        endpoint.disabled_at = clock.now()
    endpoint.enabled = enabled
    _event(session, endpoint, "webhook.updated", user_id)


def get_endpoint(session: Session, company_id: int, endpoint_id: int) -> WebhookEndpoint | None:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    return endpoint if endpoint is not None and endpoint.company_id == company_id else None


def list_endpoints(session: Session, company_id: int) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.company_id == company_id)
            .order_by(WebhookEndpoint.id)
        )
    )


def recent_deliveries(
    session: Session, endpoint_id: int, limit: int = 100
) -> list[tuple[WebhookDelivery, list[DeliveryAttempt]]]:
    """The endpoint's latest deliveries, newest first, each with its attempts."""
    deliveries = list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )
    attempts: dict[int, list[DeliveryAttempt]] = {d.id: [] for d in deliveries}
    if deliveries:
        for attempt in session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(attempts))
            .order_by(DeliveryAttempt.id)
        ):
            attempts[attempt.delivery_id].append(attempt)
    return [(d, attempts[d.id]) for d in deliveries]


def redeliver(session: Session, endpoint: WebhookEndpoint, delivery_id: int, user_id: int) -> bool:
    """Send this delivery again as soon as the worker can (one more attempt at least)."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise FieldErrors({"delivery": _("This delivery does not exist.")})
    from portal.webhooks.delivery import MAX_ATTEMPTS

    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = clock.now()
    delivery.claimed_until = None
    delivery.attempts = min(delivery.attempts, MAX_ATTEMPTS - 1)
    _event(session, endpoint, "webhook.redelivered", user_id)
    return True


def disable_failing(session: Session, days: int) -> list[WebhookEndpoint]:
    """Disable the enabled endpoints whose every attempt failed for ``days`` days."""
    cutoff = clock.now() - dt.timedelta(days=days)
    failing = list(
        session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.enabled,
                WebhookEndpoint.failing_since.is_not(None),
                WebhookEndpoint.failing_since < cutoff,
            )
        )
    )
    for endpoint in failing:
        endpoint.enabled = False
        endpoint.disabled_at = clock.now()
        record(
            session,
            company_id=endpoint.company_id,
            actor=Actor.SYSTEM,
            action="webhook.disabled",
            subject_type="webhook_endpoint",
            subject_id=endpoint.id,
            details={
                "url": endpoint.url,
                "failing_since": endpoint.failing_since.isoformat()
                if endpoint.failing_since
                else None,
            },
        )
    return failing


def pending_count(session: Session, endpoint_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.status == DeliveryStatus.PENDING,
            )
        )
        or 0
    )


__all__ = [
    "create_endpoint",
    "disable_failing",
    "get_endpoint",
    "list_endpoints",
    "new_secret",
    "pending_count",
    "recent_deliveries",
    "redeliver",
    "update_endpoint",
]
