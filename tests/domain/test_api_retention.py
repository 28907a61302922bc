"""Stored idempotent answers and finished webhook deliveries are pruned after their
retention; what is still owed is kept."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.api import keys
from portal.api.models import IdempotentRequest
from portal.api.retention import prune
from portal.company.models import Company
from portal.settings import ApiSettings
from portal.users.models import Role
from portal.users.service import create_user
from portal.webhooks.models import (
    DeliveryAttempt,
    DeliveryStatus,
    OutgoingEvent,
    WebhookDelivery,
    WebhookEndpoint,
)

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
SETTINGS = ApiSettings(idempotency_hours=24, webhook_retention_days=30)


def _answer(db: Session, key_id: int, key: str, age: dt.timedelta) -> None:
    db.add(
        IdempotentRequest(
            api_key_id=key_id,
            key=key,
            fingerprint="f",
            status_code=200,
            body="{}",
            created_at=NOW - age,
        )
    )


def _event(db: Session, company: Company, name: str, fanned: dt.timedelta | None) -> OutgoingEvent:
    event = OutgoingEvent(
        company_id=company.id,
        event_id=f"evt_{name}",
        type="invoice.paid",
        occurred_at=NOW,
        data={},
        fanned_out_at=None if fanned is None else NOW - fanned,
    )
    db.add(event)
    db.flush()
    return event


def _delivery(
    db: Session,
    event: OutgoingEvent,
    endpoint: WebhookEndpoint,
    status: DeliveryStatus,
    age: dt.timedelta,
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        event_id=event.id,
        endpoint_id=endpoint.id,
        status=status,
        attempts=1,
        next_attempt_at=NOW - age,
        created_at=NOW - age,
    )
    db.add(delivery)
    db.flush()
    db.add(DeliveryAttempt(delivery_id=delivery.id, attempted_at=NOW - age, status_code=500))
    return delivery


def _endpoint(db: Session, company: Company, url: str, *, enabled: bool) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        company_id=company.id,
        url=url,
        events=["invoice.paid"],
        secret="whsec_x",
        enabled=enabled,
        created_at=NOW,
    )
    db.add(endpoint)
    db.flush()
    return endpoint


@pytest.mark.parametrize("batch", [2, 5_000])
def test_finished_deliveries_and_old_answers_go_what_is_owed_stays(
    db: Session, session_factory: sessionmaker[Session], company: Company, batch: int
) -> None:
    clock.freeze(NOW)
    admin = create_user(db, "admin@relance.example", Role.ADMIN, "x" * 20)
    db.flush()
    key_id = keys.authenticate(
        db, keys.create_key(db, company.id, name="ERP", scope="write", user_id=admin.id).secret
    ).key_id  # type: ignore[union-attr]
    for n in range(3):
        _answer(db, key_id, f"old-{n}", dt.timedelta(hours=25))
    _answer(db, key_id, "fresh", dt.timedelta(hours=23))
    endpoint = _endpoint(db, company, "https://erp.example/hooks", enabled=True)
    old, recent = dt.timedelta(days=31), dt.timedelta(days=29)
    kept = {
        "recent-success": _delivery(
            db, _event(db, company, "a", old), endpoint, DeliveryStatus.SUCCEEDED, recent
        ),
        "old-pending": _delivery(
            db, _event(db, company, "b", old), endpoint, DeliveryStatus.PENDING, old
        ),
    }
    gone = [
        _delivery(db, _event(db, company, "c", old), endpoint, DeliveryStatus.SUCCEEDED, old),
        _delivery(db, _event(db, company, "d", old), endpoint, DeliveryStatus.FAILED, old),
        _delivery(db, _event(db, company, "e", old), endpoint, DeliveryStatus.SUCCEEDED, old),
    ]
    shared = _event(db, company, "f", old)  # one delivery gone, one still owed
    gone.append(_delivery(db, shared, endpoint, DeliveryStatus.SUCCEEDED, old))
    other = _endpoint(db, company, "https://crm.example/hooks", enabled=False)
    kept["owed-to-disabled"] = _delivery(db, shared, other, DeliveryStatus.PENDING, old)
    _event(db, company, "g", old)  # fanned out to nobody, long ago
    _event(db, company, "h", None)  # not fanned out yet: the worker still owes it
    db.commit()

    pruned = prune(session_factory, SETTINGS, NOW, batch=batch)

    assert (pruned.idempotent_requests, pruned.deliveries, pruned.events) == (3, 4, 4)
    assert list(db.scalars(select(IdempotentRequest.key))) == ["fresh"]
    assert set(db.scalars(select(WebhookDelivery.id))) == {d.id for d in kept.values()}
    assert set(db.scalars(select(DeliveryAttempt.delivery_id))) == {d.id for d in kept.values()}
    assert set(db.scalars(select(OutgoingEvent.event_id))) == {"evt_a", "evt_b", "evt_f", "evt_h"}
    again = prune(session_factory, SETTINGS, NOW, batch=batch)
    assert (again.idempotent_requests, again.deliveries, again.events) == (0, 0, 0)
