"""Exactly once under concurrency: two workers at once, and a worker killed mid-run.

These tests commit for real, so each gets its own freshly migrated database.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from portal.company.service import sync_company
from portal.db import make_session_factory
from portal.reminders import planning
from portal.reminders.models import MessageStatus, ReminderMessage
from portal.reminders.outbox import deliver_due
from portal.reminders.worker import calendar_for
from portal.settings import Settings
from tests.conftest import TEST_SECRET
from tests.factories import make_customer, make_invoice
from tests.mail_sink import free_port
from tests.reminders_helpers import book, context, reminder_settings

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 60.0


def _seed(factory: sessionmaker[Session], settings: Settings, customers: int) -> int:
    with factory() as db:
        company = sync_company(db, settings.company)
        for _ in range(customers):
            customer = make_customer(db, company)
            make_invoice(db, customer, due_in_days=-2)
            make_invoice(db, customer, due_in_days=-3)
        db.commit()
        result = planning.run(db, company.id, book(settings), calendar_for(settings), any_time=True)
        db.commit()
        return result.enqueued


class Sink:
    """Keeps every message by Message-ID; optionally acts on the n-th DATA."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.lock = threading.Lock()
        self.on_data: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import email

        message_id = str(email.message_from_bytes(envelope.content)["Message-ID"])
        if self.on_data is not None and self.on_data(message_id) == "drop":
            return "451 4.3.0 try again later"
        with self.lock:
            self.received.append(message_id)
        return "250 OK"


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def _statuses(factory: sessionmaker[Session]) -> Counter[MessageStatus]:
    with factory() as db:
        return Counter(db.scalars(select(ReminderMessage.status)))


def _message_ids(factory: sessionmaker[Session]) -> set[str]:
    with factory() as db:
        return {
            f"<reminder-{m.id}.{m.cycle}@testserver>" for m in db.scalars(select(ReminderMessage))
        }


def test_two_workers_never_send_a_message_twice(
    real_db: tuple[str, Engine], settings: Settings, tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    _url, engine = real_db
    handler, port = sink
    s = reminder_settings(settings, tmp_path, port)
    factory = make_session_factory(engine)
    count = _seed(factory, s, 40)
    assert count == 40
    errors: list[BaseException] = []

    start = threading.Barrier(2)

    def work(name: str) -> None:
        try:
            ctx = context(s, any_time=True)
            start.wait()
            while deliver_due(factory, ctx, name, limit=3):
                pass
        except BaseException as error:  # reported by the test below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_SECONDS)
    assert errors == []
    assert _statuses(factory) == Counter({MessageStatus.SENT: count})
    assert Counter(handler.received) == Counter(dict.fromkeys(_message_ids(factory), 1))
    with factory() as db:  # both workers took part
        assert set(db.scalars(select(ReminderMessage.claimed_by))) == {"w0", "w1"}


def _worker(url: str, smtp_port: int, tmp_path: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(
        PORTAL_DATABASE_URL=url,
        PORTAL_ENVIRONMENT="development",
        PORTAL_SECRET_KEYS=TEST_SECRET,
        PORTAL_BASE_URL="http://testserver",
        PORTAL_SMTP_HOST="127.0.0.1",
        PORTAL_SMTP_PORT=str(smtp_port),
        PORTAL_SMTP_SECURITY="none",
        PORTAL_SMTP_TIMEOUT_SECONDS="1",
        PORTAL_SMS_TIMEOUT_SECONDS="1",
        PORTAL_REMINDER_LEASE_SECONDS="2",
        PORTAL_REMINDER_POLL_SECONDS="0.1",
        PORTAL_REMINDER_LETTERS_DIR=str(tmp_path / "letters"),
        PYTHONPATH=str(ROOT),
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "portal.cli", "worker", "--no-plan", "--send-now"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait(
    condition: Any, what: str, log: Path, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen in time\n{log.read_text(errors='replace')[-4000:]}")


def test_a_killed_worker_loses_nothing_and_repeats_only_an_accepted_unrecorded_send(
    real_db: tuple[str, Engine], settings: Settings, tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    """Kill 1 hits while the SMTP server still reads the message (not accepted): it is sent
    once, later. Kill 2 hits after the server kept the message but before the worker heard
    the 250 and recorded it: that one message arrives twice, with the same Message-ID (the
    documented at-least-once boundary of SMTP). Nothing is ever lost."""
    url, engine = real_db
    handler, port = sink
    s = dataclasses.replace(settings, base_url="http://testserver")
    factory = make_session_factory(engine)
    count = _seed(factory, reminder_settings(s, tmp_path), 12)
    log = tmp_path / "worker.log"
    process: dict[str, subprocess.Popen[bytes]] = {}
    seen = Counter[str]()
    killed: dict[str, str] = {}

    def on_data(message_id: str) -> str | None:
        seen[message_id] += 1
        total = sum(seen.values())
        if total == 3 and "before" not in killed:  # kill before accepting: not delivered
            killed["before"] = message_id
            process["current"].kill()
            return "drop"
        # Keep it, then kill before the 250. Never the first kill's message: retried after its
        # lease, it may well be the one in flight by now, and it would then arrive twice.
        if total >= 8 and "after" not in killed and message_id != killed.get("before"):
            killed["after"] = message_id
            with handler.lock:
                handler.received.append(message_id)
            process["current"].kill()
            return "drop"
        return None

    handler.on_data = on_data
    process["current"] = _worker(url, port, tmp_path, log)
    _wait(lambda: "before" in killed, "the first kill", log, process["current"])
    process["current"].wait(10)
    process["current"] = _worker(url, port, tmp_path, log)
    _wait(lambda: "after" in killed, "the second kill", log, process["current"])
    process["current"].wait(10)
    process["current"] = _worker(url, port, tmp_path, log)
    try:
        _wait(
            lambda: _statuses(factory)[MessageStatus.SENT] == count,
            "every message sent",
            log,
            process["current"],
        )
    finally:
        process["current"].terminate()
        process["current"].wait(10)
    received = Counter(handler.received)
    assert set(received) == _message_ids(factory)  # nothing lost
    assert received[killed["before"]] == 1
    assert received[killed["after"]] == 2  # the same Message-ID twice: recognisable
    assert sum(received.values()) == count + 1
    assert _statuses(factory) == Counter({MessageStatus.SENT: count})
