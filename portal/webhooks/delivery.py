"""Delivering the outbox: fan out, claim, post (signed), record. At least once.

1. *Fan out* (one transaction): events not yet fanned out get one ``webhook_deliveries``
   row per enabled endpoint subscribed to their type, and their ``body`` (the JSON sent on
   every attempt, so a retry carries the same bytes and the same ``webhook-id``).
2. *Claim* (one transaction): due deliveries of enabled endpoints, ``FOR UPDATE SKIP
   LOCKED`` on PostgreSQL, leased until ``claimed_until``. A worker killed after this
   point leaves its deliveries to be claimed again once the lease ends: nothing is lost,
   and the receiver may see an event twice (same ``webhook-id``: deduplicate on it).
3. *Post*, after the commit: signed per Standard Webhooks (``standardwebhooks``), to the
   address ``ssrf.resolve`` checked.
4. *Record* (one transaction): each attempt in ``webhook_attempts``; success ends the
   delivery, failure schedules the next attempt (``retry_delay``) or, after the last one,
   marks it failed. Only a delivery still leased to this claim is updated.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from portal import clock
from portal.customers.models import Customer
from portal.reminders.models import take_write_lock
from portal.settings import ApiSettings
from portal.webhooks import ssrf
from portal.webhooks.models import (
    DeliveryAttempt,
    DeliveryStatus,
    OutgoingEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from portal.webhooks.transport import Answer, Connections

# Attempt n (1-based) failed: wait 1 min, 4 min, 16 min, ~1 h, ~4 h, then 12 h each time.
# Twelve attempts span about three days and a quarter (``sum(retry_delay(n))``).
MAX_ATTEMPTS = 12
FIRST_DELAY = dt.timedelta(minutes=1)
LONGEST_DELAY = dt.timedelta(hours=12)
FAN_OUT_BATCH = 500

_deliveries = cast(Table, WebhookDelivery.__table__)


def retry_delay(attempts: int) -> dt.timedelta:
    """How long after its ``attempts``-th failure a delivery is tried again."""
    delay: dt.timedelta = FIRST_DELAY * 4 ** (attempts - 1)
    return min(delay, LONGEST_DELAY)


def _lock(session: Session, query: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    take_write_lock(session)
    return query


def event_body(event: OutgoingEvent, reference: str | None) -> str:
    """The JSON an endpoint receives for ``event`` (Standard Webhooks' type/timestamp/data)."""
    data: dict[str, Any] = {
        "customer": None
        if event.customer_id is None
        else {"id": event.customer_id, "reference": reference},
        "subject": None
        if event.subject_type is None
        else {"type": event.subject_type, "id": event.subject_id},
        **event.data,
    }
    return json.dumps(
        {
            "id": event.event_id,
            "type": event.type,
            "timestamp": event.occurred_at.isoformat(),
            "data": data,
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def fan_out(session: Session, limit: int = FAN_OUT_BATCH) -> int:
    """Give the events not yet fanned out their deliveries and body; returns how many."""
    events = list(
        session.scalars(
            _lock(
                session,
                select(OutgoingEvent)
                .where(OutgoingEvent.fanned_out_at.is_(None))
                .order_by(OutgoingEvent.id)
                .limit(limit),
            )
        )
    )
    if not events:
        return 0
    now = clock.now()
    endpoints = list(session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.enabled)))
    customer_ids = {e.customer_id for e in events if e.customer_id is not None}
    references = (
        dict(
            session.execute(
                select(Customer.id, Customer.reference).where(Customer.id.in_(customer_ids))
            ).all()
        )
        if customer_ids
        else {}
    )
    rows = []
    for event in events:
        event.body = event_body(event, references.get(event.customer_id or 0))
        event.fanned_out_at = now
        for endpoint in endpoints:
            if endpoint.company_id == event.company_id and event.type in endpoint.events:
                rows.append(
                    {
                        "event_id": event.id,
                        "endpoint_id": endpoint.id,
                        "status": DeliveryStatus.PENDING,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                )
    session.flush()
    if rows:
        session.execute(_deliveries.insert(), rows)
    return len(events)


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    attempts: int
    url: str
    secret: str
    event_id: str
    body: str
    lease: dt.datetime


def claim(session: Session, limit: int, lease_seconds: int) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries (pending, due, not leased or lease over)."""
    now = clock.now()
    query = (
        select(
            WebhookDelivery.id,
            WebhookDelivery.attempts,
            WebhookDelivery.event_id,
            WebhookDelivery.endpoint_id,
        )
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            (WebhookDelivery.claimed_until.is_(None)) | (WebhookDelivery.claimed_until < now),
            WebhookEndpoint.enabled,
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=WebhookDelivery, skip_locked=True)
    else:
        take_write_lock(session)
    due = session.execute(query).all()
    if not due:
        return []
    lease = now + dt.timedelta(seconds=lease_seconds)
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_([d.id for d in due]))
        .values(claimed_until=lease)
        .execution_options(synchronize_session=False)
    )
    endpoints = {
        e.id: e
        for e in session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.id.in_({d.endpoint_id for d in due}))
        )
    }
    bodies = {
        row.id: (row.event_id, row.body or "")
        for row in session.execute(
            select(OutgoingEvent.id, OutgoingEvent.event_id, OutgoingEvent.body).where(
                OutgoingEvent.id.in_({d.event_id for d in due})
            )
        )
    }
    return [
        Claimed(
            d.id,
            d.attempts,
            endpoints[d.endpoint_id].url,
            endpoints[d.endpoint_id].secret,
            *bodies[d.event_id],
            lease,
        )
        for d in due
    ]


def signed_headers(secret: str, event_id: str, body: str, at: dt.datetime) -> dict[str, str]:
    """The Standard Webhooks headers: ``webhook-id`` (the event's id, the same on every
    attempt), ``webhook-timestamp`` (seconds) and ``webhook-signature`` (``v1,<base64>``)."""
    signature = Webhook(secret).sign(msg_id=event_id, timestamp=at, data=body)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def post_all(
    claimed: Sequence[Claimed], settings: ApiSettings, connections: Connections
) -> list[Answer]:
    """Post each claimed delivery (outside any transaction); one answer each."""
    answers = []
    for item in claimed:
        try:
            target = ssrf.resolve(item.url, settings.webhook_allowed_networks)
        except ssrf.UnsafeUrl as refused:
            answers.append(Answer(None, f"refused: {refused.reason}", 0))
            continue
        headers = signed_headers(item.secret, item.event_id, item.body, clock.now())
        answers.append(connections.post(target, item.body.encode(), headers))
    return answers


_RECORD = (
    update(_deliveries)
    .where(_deliveries.c.id == bindparam("d_id"), _deliveries.c.claimed_until == bindparam("lease"))
    .values(
        status=bindparam("status"),
        attempts=bindparam("attempts"),
        next_attempt_at=bindparam("next_at"),
        claimed_until=None,
        last_status_code=bindparam("code"),
        delivered_at=bindparam("delivered"),
    )
)


def record(session: Session, claimed: Sequence[Claimed], answers: Sequence[Answer]) -> None:
    """Write each attempt and what it means for its delivery and endpoint."""
    now = clock.now()
    updates = []
    attempts = []
    for item, answer in zip(claimed, answers, strict=True):
        count = item.attempts + 1
        if answer.ok:
            status, next_at = DeliveryStatus.SUCCEEDED, now
        elif count >= MAX_ATTEMPTS:
            status, next_at = DeliveryStatus.FAILED, now
        else:
            status, next_at = DeliveryStatus.PENDING, now + retry_delay(count)
        updates.append(
            {
                "d_id": item.delivery_id,
                "lease": item.lease,
                "status": status,
                "attempts": count,
                "next_at": next_at,
                "code": answer.status_code,
                "delivered": now if answer.ok else None,
            }
        )
        attempts.append(
            {
                "delivery_id": item.delivery_id,
                "attempted_at": now,
                "status_code": answer.status_code,
                "error": answer.error[:300],
                "duration_ms": answer.duration_ms,
            }
        )
    session.execute(_RECORD, updates)
    session.execute(cast(Table, DeliveryAttempt.__table__).insert(), attempts)
    ids = {item.delivery_id for item in claimed}
    by_delivery = dict(
        session.execute(
            select(WebhookDelivery.id, WebhookDelivery.endpoint_id).where(
                WebhookDelivery.id.in_(ids)
            )
        ).all()
    )
    succeeded = {by_delivery[i.delivery_id] for i, a in zip(claimed, answers, strict=True) if a.ok}
    failed = {by_delivery[i.delivery_id] for i, a in zip(claimed, answers, strict=True)} - succeeded
    if succeeded:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_(succeeded))
            .values(failing_since=None)
            .execution_options(synchronize_session=False)
        )
    if failed:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_(failed), WebhookEndpoint.failing_since.is_(None))
            .values(failing_since=now)
            .execution_options(synchronize_session=False)
        )


def deliver_due(
    session_factory: Callable[[], Session],
    settings: ApiSettings,
    connections: Connections,
    *,
    limit: int = 100,
) -> int:
    """One round: fan out new events, claim, post, record. Returns deliveries attempted."""
    with session_factory() as session, session.begin():
        fan_out(session)
    with session_factory() as session, session.begin():
        claimed = claim(session, limit, settings.webhook_lease_seconds)
    if not claimed:
        return 0
    answers = post_all(claimed, settings, connections)
    with session_factory() as session, session.begin():
        record(session, claimed, answers)
    return len(claimed)
