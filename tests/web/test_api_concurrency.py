"""The API against a real database, as several workers share it: twins of one request
with the same Idempotency-Key never change anything twice (409 while the first runs on
PostgreSQL; on SQLite the twin waits and gets the first answer), and the rate limit of a
key is counted once for every app instance."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from portal import migrate
from portal.api import keys
from portal.company.service import sync_company
from portal.db import make_engine, make_session_factory, transaction
from portal.payments.models import Payment
from portal.settings import Settings
from portal.users.models import Role
from portal.users.service import create_user
from portal.web.api import framework, money
from portal.web.api.ratelimit import RateLimiter
from portal.web.app import create_app
from tests.conftest import backends, fresh_database_url
from tests.factories import make_customer, make_invoice

PREFIX = "/api/v1"
WAIT = 30  # seconds an event may take before the test fails (never slept)
PAYMENT = {
    "customer_reference": "C-LIVE",
    "amount_minor": 5_000,
    "currency": "EUR",
    "method": "transfer",
    "reference": "VIR-1",
    "received_on": "2026-11-20",
}


@dataclass(frozen=True)
class LiveDatabase:
    backend: str
    settings: Settings
    key: str

    def client(self) -> TestClient:
        client = TestClient(create_app(self.settings), base_url="http://testserver")
        client.headers["Authorization"] = f"Bearer {self.key}"
        return client

    def payments(self) -> int:
        engine = make_engine(self.settings.database_url)
        try:
            with engine.connect() as connection:
                return int(connection.scalar(select(func.count()).select_from(Payment)) or 0)
        finally:
            engine.dispose()


@pytest.fixture(params=backends())
def live(
    request: pytest.FixtureRequest, tmp_path: Path, settings: Settings
) -> Iterator[LiveDatabase]:
    url, drop = fresh_database_url(request.param, tmp_path)
    engine = make_engine(url)
    migrate.upgrade(url, engine=engine)
    live_settings = replace(settings, database_url=url)
    with transaction(make_session_factory(engine)) as db:
        company = sync_company(db, live_settings.company)
        admin = create_user(db, "admin@relance.example", Role.ADMIN, "x" * 20)
        db.flush()
        secret = keys.create_key(db, company.id, name="ERP", scope="write", user_id=admin.id)
        customer = make_customer(db, company, reference="C-LIVE")
        make_invoice(db, customer, number="F-LIVE", amount_minor=10_000)
    engine.dispose()
    yield LiveDatabase(request.param, live_settings, secret.secret)
    drop()


class Gate:
    """Holds the first call of ``target`` until released, and says when it got there."""

    def __init__(self, target: Callable[..., Any]) -> None:
        self.target = target
        self.reached = threading.Event()
        self.release = threading.Event()
        self._first = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._first.acquire(blocking=False):
            self.reached.set()
            assert self.release.wait(WAIT), "never released"
        return self.target(*args, **kwargs)


def _in_thread(call: Callable[[], httpx.Response]) -> tuple[threading.Thread, list[httpx.Response]]:
    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.append(call()), daemon=True)
    thread.start()
    return thread, answers


def test_twins_with_one_idempotency_key_change_nothing_twice(
    live: LiveDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(money.record_offline_payment)
    monkeypatch.setattr(money, "record_offline_payment", gate)
    entered = threading.Event()
    authenticate = framework.authenticate

    def noting(*args: Any) -> Any:
        if gate.reached.is_set():
            entered.set()  # the twin has started while the first is held
        return authenticate(*args)

    monkeypatch.setattr(framework, "authenticate", noting)
    headers = {"Idempotency-Key": "pay-1"}
    with live.client() as client:
        send = lambda: client.post(f"{PREFIX}/payments", json=PAYMENT, headers=headers)  # noqa: E731
        first, first_answer = _in_thread(send)
        assert gate.reached.wait(WAIT)
        if live.backend == "postgresql":
            twin = send()  # does not wait: the first holds the key
            assert twin.status_code == 409, twin.text
            assert twin.headers["content-type"] == "application/problem+json"
            assert twin.json()["type"].endswith("/idempotency-key-in-flight")
            assert twin.headers["Retry-After"] == "1"
            gate.release.set()
        else:
            second, second_answer = _in_thread(send)
            assert entered.wait(WAIT)
            gate.release.set()  # the twin waits for the first's write lock, then reads
            second.join(WAIT)
            (twin,) = second_answer
            assert twin.status_code == 201, twin.text
            assert twin.headers["Idempotent-Replayed"] == "true"
        first.join(WAIT)
        (original,) = first_answer
        assert original.status_code == 201, original.text
        retry = send()
        assert (retry.status_code, retry.text) == (201, original.text)
        other = client.post(
            f"{PREFIX}/payments", json={**PAYMENT, "amount_minor": 1}, headers=headers
        )
        assert other.status_code == 422
    assert live.payments() == 1


def test_the_rate_limit_is_shared_by_every_app_instance(live: LiveDatabase) -> None:
    now = [6_000_000.0 + 15]
    with live.client() as one, live.client() as two:
        for client in (one, two):
            client.app.state.api_rate_limiter = RateLimiter(4, clock=lambda: now[0])  # type: ignore[attr-defined]
        answers = [c.get(f"{PREFIX}/invoices").status_code for c in (one, two, one, two)]
        assert answers == [200, 200, 200, 200]
        refused = [two.get(f"{PREFIX}/invoices"), one.get(f"{PREFIX}/invoices")]
        assert [r.status_code for r in refused] == [429, 429]
        assert refused[0].headers["Retry-After"] == "45"
        now[0] += 45  # the next minute: a new count, for both
        assert [c.get(f"{PREFIX}/invoices").status_code for c in (two, one)] == [200, 200]
