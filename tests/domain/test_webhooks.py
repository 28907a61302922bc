"""Outgoing webhooks: events written with their change, fanned out, signed per Standard
Webhooks (checked by the library on a loopback receiver), retried with backoff, refused
towards internal addresses, endpoints disabled after days of failure."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.changes import FieldErrors
from portal.company.models import Company
from portal.mail.sender import Mailer
from portal.payments.offline import record_offline_payment
from portal.settings import ApiSettings, Settings
from portal.templating import make_environment
from portal.timeline.models import Actor
from portal.timeline.service import record
from portal.users.models import Role
from portal.users.service import create_user
from portal.webhooks import delivery, endpoints, ssrf
from portal.webhooks.models import (
    DeliveryAttempt,
    DeliveryStatus,
    OutgoingEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from portal.webhooks.transport import Connections
from portal.webhooks.worker import check_health
from tests.factories import make_customer, make_invoice
from tests.webhook_receiver import Receiver, webhook_receiver

LOOPBACK = ("127.0.0.0/8",)
API = ApiSettings(webhook_allowed_networks=LOOPBACK, webhook_timeout_seconds=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture
def connections() -> Iterator[Connections]:
    pool = Connections(5)
    yield pool
    pool.close()


def _endpoint(
    db: Session, company: Company, receiver: Receiver, events: list[str]
) -> WebhookEndpoint:
    admin = create_user(db, f"hooks{len(events)}@relance.example", Role.ADMIN, "x" * 20)
    endpoint = endpoints.create_endpoint(
        db,
        company.id,
        url=receiver.url,
        events=events,
        description="ERP",
        user_id=admin.id,
        allowed=LOOPBACK,
    )
    receiver.secret = endpoint.secret
    db.commit()
    return endpoint


def _pay(db: Session, company: Company, amount: int = 10_000) -> None:
    customer = make_customer(db, company, reference="C-42")
    make_invoice(db, customer, amount_minor=10_000, number="F-42")
    db.commit()
    record_offline_payment(
        db,
        customer,
        amount_minor=amount,
        currency="EUR",
        method="transfer",
        reference="VIR-1",
        received_on=clock.now().date(),
        actor=Actor.SYSTEM,
    )
    db.commit()


def _deliver_all(factory: sessionmaker[Session], connections: Connections) -> int:
    total = 0
    while attempted := delivery.deliver_due(factory, API, connections):
        total += attempted
    return total


def test_a_payment_is_announced_signed_and_verified_by_the_standard_library(
    db: Session,
    company: Company,
    session_factory: sessionmaker[Session],
    receiver: Receiver,
    connections: Connections,
) -> None:
    _endpoint(db, company, receiver, ["payment.succeeded", "invoice.paid"])
    _pay(db, company)
    events = list(db.scalars(select(OutgoingEvent).order_by(OutgoingEvent.id)))
    assert [e.type for e in events] == ["payment.succeeded", "invoice.paid"]
    assert _deliver_all(session_factory, connections) == 2
    assert receiver.refused == []
    assert sorted(receiver.types()) == ["invoice.paid", "payment.succeeded"]
    assert sorted(receiver.ids()) == sorted(e.event_id for e in events)  # webhook-id = event id
    paid = next(r.payload for r in receiver.received if r.payload["type"] == "invoice.paid")
    assert paid["data"]["number"] == "F-42"
    assert paid["data"]["customer"]["reference"] == "C-42"
    statuses = set(db.scalars(select(WebhookDelivery.status)))
    assert statuses == {DeliveryStatus.SUCCEEDED}
    assert _deliver_all(session_factory, connections) == 0  # nothing twice


def test_events_are_written_with_their_change_and_only_while_someone_listens(
    db: Session,
    company: Company,
    receiver: Receiver,
) -> None:
    record(db, company_id=company.id, action="promise.made", actor=Actor.DEBTOR)
    db.flush()
    assert db.scalar(select(func.count()).select_from(OutgoingEvent)) == 0  # no endpoint
    _endpoint(db, company, receiver, ["promise.made"])
    with db.begin_nested() as nested:
        record(db, company_id=company.id, action="promise.made", actor=Actor.DEBTOR)
        db.flush()
        assert db.scalar(select(func.count()).select_from(OutgoingEvent)) == 1
        nested.rollback()  # the change rolled back: its event too
    assert db.scalar(select(func.count()).select_from(OutgoingEvent)) == 0
    record(db, company_id=company.id, action="note.added", actor=Actor.USER)  # not announced
    record(db, company_id=company.id, action="link.opened", actor=Actor.DEBTOR)
    db.flush()
    assert list(db.scalars(select(OutgoingEvent.type))) == ["link.opened"]


def test_a_failing_receiver_is_retried_with_growing_delays(
    db: Session,
    company: Company,
    session_factory: sessionmaker[Session],
    receiver: Receiver,
    connections: Connections,
) -> None:
    answers = iter([500, 503])
    receiver.answer = lambda _id: next(answers, 204)
    _endpoint(db, company, receiver, ["payment.succeeded"])
    # Near the real time: the receiver's library refuses signatures more than 5 minutes off.
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=2)
    clock.freeze(start)
    _pay(db, company)
    assert _deliver_all(session_factory, connections) == 1  # 500: due again in a minute
    row = db.scalars(select(WebhookDelivery)).one()
    db.refresh(row)
    assert (row.status, row.attempts, row.last_status_code) == (DeliveryStatus.PENDING, 1, 500)
    assert row.next_attempt_at == start + dt.timedelta(minutes=1)
    clock.freeze(start + dt.timedelta(seconds=59))
    assert _deliver_all(session_factory, connections) == 0  # not yet
    clock.freeze(start + dt.timedelta(minutes=1))
    assert _deliver_all(session_factory, connections) == 1  # 503: four minutes more
    db.refresh(row)
    assert row.next_attempt_at == start + dt.timedelta(minutes=5)
    endpoint = db.scalars(select(WebhookEndpoint)).one()
    db.refresh(endpoint)
    assert endpoint.failing_since == start
    clock.freeze(start + dt.timedelta(minutes=5))
    assert _deliver_all(session_factory, connections) == 1
    db.refresh(row)
    db.refresh(endpoint)
    assert (row.status, row.attempts) == (DeliveryStatus.SUCCEEDED, 3)
    assert endpoint.failing_since is None
    codes = list(db.scalars(select(DeliveryAttempt.status_code).order_by(DeliveryAttempt.id)))
    assert codes == [500, 503, 204]
    assert receiver.types() == ["payment.succeeded"]


def test_the_retries_span_about_three_days() -> None:
    waits = [delivery.retry_delay(n) for n in range(1, delivery.MAX_ATTEMPTS)]
    assert waits[:3] == [dt.timedelta(minutes=1), dt.timedelta(minutes=4), dt.timedelta(minutes=16)]
    assert all(a <= b for a, b in itertools.pairwise(waits))
    assert dt.timedelta(days=2.5) < sum(waits, dt.timedelta()) < dt.timedelta(days=3.5)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "https://127.0.0.1/hooks",
        "https://localhost/hooks",
        "https://10.1.2.3/hooks",
        "https://192.168.1.10/hooks",
        "https://172.16.0.5/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
        "https://[fe80::1]/hooks",
        "https://0.0.0.0/hooks",
    ],
)
def test_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(ssrf.UnsafeUrl):
        ssrf.check_url(url)


def test_public_https_and_allowlisted_loopback_are_accepted() -> None:
    assert ssrf.resolve("https://93.184.215.14/x").address == "93.184.215.14"
    assert ssrf.check_url("http://127.0.0.1:9/x", LOOPBACK) == "http://127.0.0.1:9/x"
    for bad in ("ftp://93.184.215.14/", "https://user:pw@93.184.215.14/", "http://93.184.215.14/"):
        with pytest.raises(ssrf.UnsafeUrl):
            ssrf.check_url(bad)


def test_registering_an_internal_url_is_a_field_error(db: Session, company: Company) -> None:
    admin = create_user(db, "ssrf@relance.example", Role.ADMIN, "x" * 20)
    with pytest.raises(FieldErrors) as refused:
        endpoints.create_endpoint(
            db,
            company.id,
            url="https://169.254.169.254/",
            events=["invoice.paid"],
            description="",
            user_id=admin.id,
        )
    assert set(refused.value.errors) == {"url"}


def test_delivery_checks_the_address_again(
    db: Session,
    company: Company,
    session_factory: sessionmaker[Session],
    receiver: Receiver,
    connections: Connections,
) -> None:
    """Allowed when registered, internal at delivery (the allowlist changed, or DNS now
    points inside): nothing is posted, the attempt says why."""
    _endpoint(db, company, receiver, ["payment.succeeded"])
    _pay(db, company)
    strict = ApiSettings(webhook_allowed_networks=())
    assert delivery.deliver_due(session_factory, strict, connections) == 1
    assert receiver.received == []
    attempt = db.scalars(select(DeliveryAttempt)).one()
    assert (attempt.status_code, attempt.error) == (None, "refused: internal")


def test_an_endpoint_failing_for_days_is_disabled_and_the_admins_told(
    db: Session,
    company: Company,
    session_factory: sessionmaker[Session],
    receiver: Receiver,
    settings: Settings,
    tmp_path: Path,
) -> None:
    endpoint = _endpoint(db, company, receiver, ["payment.succeeded"])
    now = clock.now()
    endpoint.failing_since = now - dt.timedelta(days=4)
    db.commit()
    spool = tmp_path / "mail"
    mailer = Mailer(settings.smtp, spool)
    assert check_health(session_factory, settings, make_environment(), mailer) == 0
    endpoint.failing_since = now - dt.timedelta(
        days=settings.api.webhook_disable_after_days, hours=1
    )
    db.commit()
    assert check_health(session_factory, settings, make_environment(), mailer) == 1
    db.refresh(endpoint)
    assert not endpoint.enabled
    assert endpoint.disabled_at is not None
    sent = [p.read_text() for p in spool.glob("*.eml")]
    assert len(sent) == 1
    assert receiver.url in sent[0]
    assert "hooks1@relance.example" in sent[0]
    _pay(db, company)  # nothing is stored for a company without an enabled endpoint
    assert db.scalar(select(func.count()).select_from(OutgoingEvent)) == 0


def test_every_event_an_endpoint_may_choose_is_announced_by_some_change() -> None:
    from portal.webhooks.events import ACTION_EVENTS, EVENT_TYPES

    announced = set(ACTION_EVENTS.values()) | {"invoice.paid"}  # invoice.paid: payments.writes
    assert announced == set(EVENT_TYPES)
    assert len(EVENT_TYPES) == 14
