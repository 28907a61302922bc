"""A worker killed with SIGKILL in the middle of a delivery loses no event: the next
worker sends it once the lease ends. What the killed worker had posted but not yet
recorded arrives twice, with the same webhook-id (the receiver's deduplication key)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.company.service import sync_company
from portal.db import make_session_factory
from portal.payments.offline import record_offline_payment
from portal.settings import Settings
from portal.timeline.models import Actor
from portal.users.models import Role
from portal.users.service import create_user
from portal.webhooks import endpoints
from portal.webhooks.models import DeliveryStatus, OutgoingEvent, WebhookDelivery
from tests.conftest import TEST_SECRET
from tests.factories import make_customer, make_invoice
from tests.webhook_receiver import Receiver, webhook_receiver

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 60.0
EVENTS = 12


def _seed(factory: sessionmaker[Session], settings: Settings, receiver: Receiver) -> set[str]:
    with factory() as db:
        company = sync_company(db, settings.company)
        admin = create_user(db, "ops@relance.example", Role.ADMIN, "x" * 20)
        endpoint = endpoints.create_endpoint(
            db,
            company.id,
            url=receiver.url,
            events=["payment.succeeded"],
            description="",
            user_id=admin.id,
            allowed=("127.0.0.0/8",),
        )
        receiver.secret = endpoint.secret
        for n in range(EVENTS):
            customer = make_customer(db, company)
            make_invoice(db, customer)
            db.flush()
            record_offline_payment(
                db,
                customer,
                amount_minor=1_000,
                currency="EUR",
                method="cheque",
                reference=f"CHQ-{n}",
                received_on=clock.now().date(),
                actor=Actor.SYSTEM,
            )
        db.commit()
        return set(db.scalars(select(OutgoingEvent.event_id)))


def _worker(url: str, tmp_path: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(
        PORTAL_DATABASE_URL=url,
        PORTAL_ENVIRONMENT="development",
        PORTAL_SECRET_KEYS=TEST_SECRET,
        PORTAL_BASE_URL="http://testserver",
        PORTAL_MAIL_SPOOL_DIR=str(tmp_path / "mail"),
        PORTAL_REMINDER_POLL_SECONDS="0.1",
        PORTAL_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
        PORTAL_WEBHOOK_LEASE_SECONDS="2",
        PORTAL_WEBHOOK_POLL_SECONDS="0.05",
        PYTHONPATH=str(ROOT),
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "portal.cli", "worker", "--no-plan"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait(condition: Any, what: str, log: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen in time\n{log.read_text(errors='replace')[-4000:]}")


def _all_delivered(factory: sessionmaker[Session]) -> bool:
    with factory() as db:
        statuses = list(db.scalars(select(WebhookDelivery.status)))
    return len(statuses) == EVENTS and set(statuses) == {DeliveryStatus.SUCCEEDED}


def test_a_worker_killed_mid_delivery_loses_no_event(
    real_db: tuple[str, Engine], settings: Settings, tmp_path: Path
) -> None:
    url, engine = real_db
    factory = make_session_factory(engine)
    log = tmp_path / "worker.log"
    process: dict[str, subprocess.Popen[bytes]] = {}
    posted_before_kill: list[str] = []
    killed: dict[str, str] = {}
    with webhook_receiver() as receiver:
        event_ids = _seed(factory, settings, receiver)
        assert len(event_ids) == EVENTS

        def answer(webhook_id: str) -> int:
            if "id" not in killed:
                if len(posted_before_kill) == 3:  # the fourth post: kill before answering
                    killed["id"] = webhook_id
                    process["current"].kill()
                    return 500
                posted_before_kill.append(webhook_id)
            return 204

        receiver.answer = answer
        process["current"] = _worker(url, tmp_path, log)
        _wait(lambda: "id" in killed, "the kill", log, process["current"])
        process["current"].wait(10)
        process["current"] = _worker(url, tmp_path, log)
        try:
            _wait(lambda: _all_delivered(factory), "every delivery", log, process["current"])
        finally:
            process["current"].terminate()
            process["current"].wait(10)
        received = Counter(receiver.ids())
    assert receiver.refused == []
    assert set(received) == event_ids  # nothing lost
    assert received[killed["id"]] == 1  # the post cut by the kill came once, later
    twice = {i for i, n in received.items() if n > 1}
    assert twice <= set(posted_before_kill)  # posted, not yet recorded: the only repeats
