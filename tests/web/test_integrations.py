"""Back office, admins only: API keys (shown once, revoked) and webhook endpoints (added,
refused towards internal addresses, their delivery log and redeliver), without JavaScript."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.api.models import ApiKey
from portal.company.models import Company
from portal.settings import ApiSettings, Settings
from portal.timeline.models import Actor
from portal.timeline.service import record
from portal.users import service as users
from portal.users.models import Role
from portal.users.service import create_user
from portal.webhooks.delivery import deliver_due
from portal.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from portal.webhooks.transport import Connections
from tests.webhook_receiver import webhook_receiver

PASSWORD = "correct horse battery staple"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, api=ApiSettings(webhook_allowed_networks=("127.0.0.0/8",)))


@pytest.fixture(autouse=True)
def _cheap_hashing() -> Iterator[None]:
    previous = users.set_password_hasher(
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    yield
    users.set_password_hasher(previous)


def _log_in(client: TestClient, db: Session, role: Role) -> None:
    email = f"{role.value}@relance.example"
    create_user(db, email, role, PASSWORD)
    db.commit()
    client.app.state.login_failure_delay = 0  # type: ignore[attr-defined]
    answer = client.post("/admin/login", data={"email": email, "password": PASSWORD})
    assert answer.status_code == 303, answer.text


def test_an_admin_creates_a_key_sees_it_once_and_revokes_it(
    client: TestClient, db: Session
) -> None:
    _log_in(client, db, Role.ADMIN)
    page = client.get("/admin/api-keys")
    assert page.status_code == 200
    assert "Créer une clé" in page.text
    created = client.post("/admin/api-keys", data={"name": "Nightly ERP sync", "scope": "write"})
    assert created.status_code == 201
    secret = re.search(r'<code id="new-key">(rk_[^<]+)</code>', created.text)
    assert secret is not None
    key = db.scalars(select(ApiKey)).one()
    assert key.secret_digest != secret.group(1)
    assert secret.group(1) not in str(key.__dict__)
    again = client.get("/admin/api-keys")
    assert secret.group(1) not in again.text
    assert f"rk_{key.prefix}_" in again.text
    api = {"Authorization": f"Bearer {secret.group(1)}"}
    assert client.get("/api/v1/customers", headers=api).status_code == 200
    revoked = client.post(f"/admin/api-keys/{key.id}/revoke")
    assert revoked.status_code == 303
    assert client.get("/api/v1/customers", headers=api).status_code == 401
    blank = client.post("/admin/api-keys", data={"name": " ", "scope": "write"})
    assert blank.status_code == 400
    assert 'id="key-name-error"' in blank.text


def test_only_admins_manage_keys_and_webhooks(client: TestClient, db: Session) -> None:
    _log_in(client, db, Role.CREDIT_MANAGER)
    for path in ("/admin/api-keys", "/admin/webhooks"):
        assert client.get(path).status_code == 403
    assert client.post("/admin/api-keys", data={"name": "x", "scope": "write"}).status_code == 403


def test_an_endpoint_is_added_its_log_shows_each_attempt_and_redelivers(
    client: TestClient, db: Session, company: Company, session_factory: object
) -> None:
    _log_in(client, db, Role.ADMIN)
    refused = client.post(
        "/admin/webhooks",
        data={
            "url": "https://169.254.169.254/latest",
            "events": ["invoice.paid"],
            "description": "",
        },
    )
    assert refused.status_code == 400
    assert 'id="hook-url-error"' in refused.text
    with webhook_receiver() as receiver:
        added = client.post(
            "/admin/webhooks",
            data={
                "url": receiver.url,
                "events": ["promise.made", "link.opened"],
                "description": "CRM",
            },
        )
        assert added.status_code == 303
        endpoint = db.scalars(select(WebhookEndpoint)).one()
        assert endpoint.events == ["promise.made", "link.opened"]
        receiver.secret = endpoint.secret
        record(db, company_id=company.id, action="promise.made", actor=Actor.DEBTOR)
        db.commit()
        connections = Connections(5)
        try:
            deliver_due(
                session_factory,
                ApiSettings(webhook_allowed_networks=("127.0.0.0/8",)),  # type: ignore[arg-type]
                connections,
            )
            assert receiver.types() == ["promise.made"]
            page = client.get(added.headers["location"])
            assert "promise.made" in page.text
            assert "HTTP 204" in page.text
            delivery = db.scalars(select(WebhookDelivery)).one()
            again = client.post(f"/admin/webhooks/{endpoint.id}/deliveries/{delivery.id}/redeliver")
            assert again.status_code == 303
            db.refresh(delivery)
            assert delivery.status is DeliveryStatus.PENDING
            deliver_due(
                session_factory,
                ApiSettings(webhook_allowed_networks=("127.0.0.0/8",)),  # type: ignore[arg-type]
                connections,
            )
            assert receiver.ids() == [receiver.ids()[0]] * 2  # the same event id, twice
        finally:
            connections.close()
    disabled = client.post(
        f"/admin/webhooks/{endpoint.id}",
        data={
            "url": endpoint.url,
            "events": ["promise.made"],
            "description": "CRM",
        },
    )
    assert disabled.status_code == 303
    db.refresh(endpoint)
    assert not endpoint.enabled
    assert endpoint.events == ["promise.made"]
