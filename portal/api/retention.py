"""What the API and the webhooks keep only for a while: stored idempotent answers (after
``PORTAL_API_IDEMPOTENCY_HOURS``) and webhook deliveries that are done, delivered or failed
for good (after ``PORTAL_WEBHOOK_RETENTION_DAYS``), with their attempts and the events
that no delivery refers to any more. A delivery still owed (pending, or waiting on a
disabled endpoint) and an event not yet fanned out are never removed.

Each step deletes at most ``batch`` rows in its own transaction, so pruning a large backlog
never holds long locks; ``prune`` runs them until nothing is left. ``portal worker`` runs it
every minute (``webhooks.worker``), ``portal prune-api`` on demand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from portal import clock
from portal.api.models import IdempotentRequest
from portal.settings import ApiSettings
from portal.webhooks.models import DeliveryStatus, OutgoingEvent, WebhookDelivery

BATCH = 5_000


@dataclass(frozen=True)
class Pruned:
    idempotent_requests: int
    deliveries: int
    events: int


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def prune_idempotent_requests(session: Session, cutoff: dt.datetime, batch: int = BATCH) -> int:
    ids = select(IdempotentRequest.id).where(IdempotentRequest.created_at < cutoff).limit(batch)
    return _count(session.execute(delete(IdempotentRequest).where(IdempotentRequest.id.in_(ids))))


def prune_deliveries(session: Session, cutoff: dt.datetime, batch: int = BATCH) -> int:
    """Deliveries done (delivered, or failed after every attempt) before ``cutoff``; their
    attempts go with them (``ON DELETE CASCADE``). Both statuses set ``next_attempt_at``
    to the time they ended, which the due index covers."""
    ids = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status.in_([DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED]),
            WebhookDelivery.next_attempt_at < cutoff,
        )
        .limit(batch)
    )
    return _count(session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids))))


def prune_events(session: Session, cutoff: dt.datetime, batch: int = BATCH) -> int:
    """Events fanned out before ``cutoff`` that no delivery refers to any more."""
    owed = exists().where(WebhookDelivery.event_id == OutgoingEvent.id)
    ids = select(OutgoingEvent.id).where(OutgoingEvent.fanned_out_at < cutoff, ~owed).limit(batch)
    return _count(session.execute(delete(OutgoingEvent).where(OutgoingEvent.id.in_(ids))))


def prune(
    session_factory: Callable[[], Session],
    settings: ApiSettings,
    now: dt.datetime | None = None,
    batch: int = BATCH,
) -> Pruned:
    now = now or clock.now()
    answers_cutoff = now - dt.timedelta(hours=settings.idempotency_hours)
    webhooks_cutoff = now - dt.timedelta(days=settings.webhook_retention_days)
    totals = []
    for step, cutoff in (
        (prune_idempotent_requests, answers_cutoff),
        (prune_deliveries, webhooks_cutoff),
        (prune_events, webhooks_cutoff),
    ):
        total = 0
        while True:
            with session_factory() as session, session.begin():
                removed = step(session, cutoff, batch)
            total += removed
            if removed < batch:
                break
        totals.append(total)
    return Pruned(*totals)
