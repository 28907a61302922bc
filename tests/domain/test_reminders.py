"""The reminder engine: scenarios, scheduling, planning, pauses, send-time checks, retries,
tasks, letters and SMS."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import itertools
import json
import smtplib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.company.models import Company
from portal.customers.models import Contact, Customer, RiskSegment
from portal.holds.models import HoldKind
from portal.holds.service import place_hold, release_holds
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import PaymentMethod
from portal.payments.service import record_payment
from portal.reminders import planning
from portal.reminders.gsm import gsm7_length, to_gsm7
from portal.reminders.models import Channel, MessageStatus, ReminderTask, TaskStatus
from portal.reminders.outbox import deliver_due, letter_file
from portal.reminders.penalties import late_charges
from portal.reminders.policy import load_policy
from portal.reminders.scenarios import ScenarioError, load_scenarios, parse_scenarios
from portal.reminders.schedule import BusinessCalendar
from portal.reminders.sms import DeliveryError, Sms, TwilioSmsProvider
from portal.reminders.tasks import TaskError, complete_task
from portal.reminders.worker import calendar_for, run_if_due
from portal.settings import PROJECT_ROOT, Settings, SmsSettings
from portal.timeline.models import TimelineEvent
from tests.factories import make_customer, make_invoice
from tests.mail_sink import smtp_server, text_body
from tests.reminders_helpers import at, book, context, invoice_ids, messages, reminder_settings

PARIS = BusinessCalendar("FR")
_refs = itertools.count(1)


@pytest.fixture
def rs(settings: Settings, tmp_path: Path) -> Settings:
    return reminder_settings(settings, tmp_path)


def run(db: Session, company: Company, s: Settings) -> planning.RunResult:
    db.commit()
    return planning.run(db, company.id, book(s), calendar_for(s))


def deliver(session_factory: sessionmaker[Session], db: Session, s: Settings, **kw: Any) -> int:
    db.commit()
    count = deliver_due(session_factory, context(s, **kw), "worker-test")
    db.expire_all()
    return count


def pay(db: Session, customer: Customer, invoice: Invoice, amount: int | None = None) -> None:
    record_payment(
        db,
        customer,
        amount_minor=amount if amount is not None else invoice.remaining_minor,
        currency=invoice.currency,
        method=PaymentMethod.TRANSFER,
        provider="test",
        provider_reference=f"pay-{next(_refs)}",
        invoice_ids=[invoice.id],
    )


def actions(db: Session, customer_id: int) -> list[str]:
    return list(
        db.scalars(
            select(TimelineEvent.action)
            .where(TimelineEvent.customer_id == customer_id)
            .order_by(TimelineEvent.id)
        )
    )


# --- scenarios ---------------------------------------------------------------------------------


def test_the_default_french_scenarios_load_and_map_every_segment(rs: Settings) -> None:
    scenarios = book(rs)
    standard = scenarios.for_customer(None, "medium", False)
    assert [(s.days, s.channel) for s in standard.steps] == [
        (-5, Channel.EMAIL),
        (1, Channel.EMAIL),
        (8, Channel.SMS),
        (15, Channel.TASK),
        (30, Channel.LETTER),
    ]
    assert scenarios.for_customer(None, "high", False).name == "firm"
    strategic = scenarios.for_customer(None, "low", True)
    assert strategic.name == "strategic"
    assert Channel.TASK in {s.channel for s in strategic.steps}
    assert Channel.SMS not in {s.channel for s in strategic.steps}
    assert scenarios.for_customer("firm", "low", True).name == "firm"  # the override wins
    assert scenarios.min_gap_days == 5
    load_scenarios(PROJECT_ROOT / "portal" / "demo" / "scenarios.toml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["segments"].pop("high"), "must name a scenario"),
        (lambda d: d["segments"].update(low="nowhere"), "unknown scenarios"),
        (
            lambda d: d["scenarios"]["s"]["steps"].append(
                dict(d["scenarios"]["s"]["steps"][0], key="x")
            ),
            "same day",
        ),
        (lambda d: d["scenarios"]["s"]["steps"][0].update(template="nope"), "no email template"),
        (lambda d: d["scenarios"]["s"]["steps"][0].update(channel="fax"), r"steps\[0\].*fax"),
        (lambda d: d.update(min_gap_days=-1), "negative"),
    ],
)
def test_inconsistent_scenarios_are_refused_with_where(change: Any, message: str) -> None:
    data: dict[str, Any] = {
        "min_gap_days": 5,
        "segments": {"low": "s", "medium": "s", "high": "s", "strategic": "s"},
        "scenarios": {
            "s": {
                "steps": [
                    {"key": "a", "days": 1, "channel": "email", "template": "reminder_overdue"}
                ]
            }
        },
    }
    parse_scenarios(data)
    change(data)
    with pytest.raises(ScenarioError, match=message):
        parse_scenarios(data)


# --- business time -----------------------------------------------------------------------------


def _utc(local: str, zone: str) -> dt.datetime:
    return dt.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        ("2026-03-10 10:30", "Europe/Paris", "2026-03-10 10:30"),  # inside hours
        ("2026-03-10 07:00", "Europe/Paris", "2026-03-10 09:00"),  # before opening
        ("2026-03-10 18:00", "Europe/Paris", "2026-03-11 09:00"),  # closed: next morning
        ("2026-03-13 19:00", "Europe/Paris", "2026-03-16 09:00"),  # Friday night -> Monday
        ("2026-04-30 18:30", "Europe/Paris", "2026-05-04 09:00"),  # 1 May (Friday) is a holiday
        ("2026-12-24 20:00", "Europe/Paris", "2026-12-28 09:00"),  # Christmas, then a weekend
        ("2026-03-28 12:00", "Europe/Paris", "2026-03-30 09:00"),  # across the spring DST change
        ("2026-10-24 12:00", "Europe/Paris", "2026-10-26 09:00"),  # across the autumn change
        ("2026-03-07 12:00", "America/New_York", "2026-03-09 09:00"),  # US DST on 8 March
        (
            "2026-04-04 12:00",
            "Australia/Sydney",
            "2026-04-07 09:00",
        ),  # DST ends, Easter Monday 6 April is a French holiday
    ],
)
def test_messages_leave_on_business_days_within_hours_in_the_customers_timezone(
    now: str, zone: str, expected: str
) -> None:
    assert PARIS.next_send_time(_utc(now, zone), zone) == _utc(expected, zone)


def test_a_worker_waking_at_night_waits_for_the_morning(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company)
    make_invoice(db, customer, due_in_days=-2)
    run(db, company, rs)
    at("2026-03-13 21:30")  # the worker was down all week; it is Friday night now
    assert deliver(session_factory, db, rs) == 0
    [message] = messages(db, customer.id)
    assert message.status is MessageStatus.PENDING
    assert message.attempts == 0
    assert message.next_attempt_at == _utc("2026-03-16 09:00", "Europe/Paris")
    at("2026-03-16 09:00")
    assert deliver(session_factory, db, rs) == 1


def test_daylight_saving_keeps_the_wall_clock_hour() -> None:
    before = PARIS.next_send_time(_utc("2026-03-27 06:00", "Europe/Paris"), "Europe/Paris")
    after = PARIS.next_send_time(_utc("2026-03-30 06:00", "Europe/Paris"), "Europe/Paris")
    assert before.hour == 8
    assert after.hour == 7


@given(
    instant=st.datetimes(
        min_value=dt.datetime(2025, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=dt.datetime(2028, 12, 31),  # noqa: DTZ001
    ),
    zone=st.sampled_from(
        ["Europe/Paris", "America/New_York", "Australia/Sydney", "Indian/Reunion", "Asia/Tokyo"]
    ),
)
def test_the_send_time_is_the_first_business_instant(instant: dt.datetime, zone: str) -> None:
    after = instant.replace(tzinfo=dt.UTC)
    sent = PARIS.next_send_time(after, zone)
    local = sent.astimezone(ZoneInfo(zone))
    assert sent >= after
    assert PARIS.is_business_day(local.date())
    assert 9 <= local.hour < 18
    if sent > after:  # it waited: closed at `after`, and it leaves at the next opening
        before = after.astimezone(ZoneInfo(zone))
        assert not (PARIS.is_business_day(before.date()) and 9 <= before.hour < 18)
        assert (local.hour, local.minute, local.second) == (9, 0, 0)


# --- money: late charges, SMS length ------------------------------------------------------------


def test_late_charges_follow_l441_10_and_d441_5_per_invoice() -> None:
    charges = late_charges(100_000, "EUR", dt.date(2026, 1, 1), dt.date(2026, 1, 31), "4.15")
    # 1 000,00 EUR x 14.15 % x 30 / 365 = 11.630 -> 11,63 EUR; plus 40 EUR.
    assert (charges.days_late, charges.rate_basis_points) == (30, 1415)
    assert (charges.penalty_minor, charges.indemnity_minor) == (1163, 4000)
    assert (
        late_charges(
            100_000, "USD", dt.date(2026, 1, 1), dt.date(2026, 1, 31), "4.15"
        ).indemnity_minor
        == 0
    )
    assert (
        late_charges(100_000, "EUR", dt.date(2026, 1, 1), dt.date(2026, 1, 1), "4.15").total_minor
        == 0
    )
    # Rounded half up, in integers: 1 cent x 10 % x 1825 days / 365 = 0.5 cent -> 1.
    assert (
        late_charges(1, "EUR", dt.date(2021, 1, 1), dt.date(2025, 12, 31), "0").penalty_minor == 1
    )


def test_gsm7_counts_extended_characters_twice_and_replaces_the_rest() -> None:
    assert to_gsm7("Échéance dépassée : 12\u202f345,00\xa0€, bientôt") == (
        "Échéance dépassée : 12 345,00 €, bientot"
    )
    assert gsm7_length("€") == 2
    assert gsm7_length("é") == 1
    with pytest.raises(ValueError, match="GSM-7"):
        gsm7_length("ê")


# --- planning ----------------------------------------------------------------------------------


def test_one_consolidated_message_per_customer_with_remaining_amounts(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company)
    first = make_invoice(db, customer, due_in_days=-2, amount_minor=10_000)
    second = make_invoice(db, customer, due_in_days=-3, amount_minor=10_000)
    pay(db, customer, second, 2_500)
    make_invoice(db, customer, due_in_days=20)  # not due for any step yet
    other = make_customer(db, company)
    make_invoice(db, other, due_in_days=-1)

    assert run(db, company, rs).enqueued == 2
    [message] = messages(db, customer.id)
    assert (message.step, message.channel, message.cycle) == (
        "overdue-1",
        Channel.EMAIL,
        "2026-03-10",
    )
    assert invoice_ids(db, message.id) == {first.id, second.id}
    assert deliver(session_factory, db, rs) == 2
    db.refresh(message)
    assert message.status is MessageStatus.SENT
    body = message.body_text or ""
    assert first.number in body
    assert second.number in body
    assert "75,00\xa0€" in body
    assert "175,00\xa0€" in body
    assert "http://testserver/l/" in body
    assert actions(db, customer.id)[-3:] == ["reminder.queued", "link.issued", "reminder.sent"]


def test_a_second_run_the_same_day_adds_nothing_and_missed_steps_are_caught_up_once(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company)
    old = make_invoice(db, customer, due_in_days=-40)  # the system was down for weeks
    assert run(db, company, rs).enqueued == 1
    assert run(db, company, rs).enqueued == 0
    [message] = messages(db, customer.id)
    assert (message.step, message.channel) == ("formal-notice-30", Channel.LETTER)
    assert invoice_ids(db, message.id) == {old.id}
    at("2026-03-20 10:00")  # later runs never go back to the steps it skipped
    assert run(db, company, rs).enqueued == 0


def test_the_minimum_gap_holds_the_next_step_back(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company)
    make_invoice(db, customer, due_in_days=-1)
    assert run(db, company, rs).enqueued == 1
    deliver(session_factory, db, rs)
    at("2026-03-12 10:00")
    make_invoice(db, customer, due_in_days=-1)  # another invoice reaches its first step
    assert run(db, company, rs).enqueued == 0  # two days after the last message: too soon
    at("2026-03-16 10:00")
    assert run(db, company, rs).enqueued == 1  # six days after


@pytest.mark.parametrize(
    "pause",
    [
        "paid",
        "cancelled",
        "dispute",
        "payment_plan",
        "promise",
        "transfer_declared",
        "invoice_paused",
        "customer_paused",
    ],
)
def test_every_kind_of_pause_skips_the_invoice_when_planning_and_at_send_time(
    db: Session,
    company: Company,
    rs: Settings,
    session_factory: sessionmaker[Session],
    pause: str,
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company)
    kept = make_invoice(db, customer, due_in_days=-2)
    paused = make_invoice(db, customer, due_in_days=-3)
    alone = make_customer(db, company)
    alone_invoice = make_invoice(db, alone, due_in_days=-2)

    def apply(target_customer: Customer, invoice: Invoice) -> None:
        today = clock.today_in(target_customer.timezone)
        if pause == "paid":
            pay(db, target_customer, invoice)
        elif pause == "cancelled":
            invoice.status = InvoiceStatus.CANCELLED
        elif pause in ("dispute", "payment_plan", "promise"):
            place_hold(
                db,
                customer_id=target_customer.id,
                invoice_ids=[invoice.id],
                kind=HoldKind(pause),
                subject_type=pause,
                subject_id=invoice.id,
                until=today + dt.timedelta(days=10) if pause == "promise" else None,
            )
        elif pause == "transfer_declared":
            invoice.transfer_pending_until = today + dt.timedelta(days=3)
        elif pause == "invoice_paused":
            invoice.reminders_paused_until = today
        else:
            target_customer.reminders_paused_until = today
        db.flush()

    # At planning time.
    apply(customer, paused)
    run(db, company, rs)
    planned = messages(db, customer.id)
    if pause == "customer_paused":
        assert planned == []
    else:
        assert [invoice_ids(db, m.id) for m in planned] == [{kept.id}]

    # After planning, before sending: the message is cancelled, never sent.
    apply(alone, alone_invoice)
    deliver(session_factory, db, rs)
    [message] = messages(db, alone.id)
    assert message.status is MessageStatus.CANCELLED
    assert message.body_text is None
    assert "reminder.cancelled" in actions(db, alone.id)
    assert "reminder.sent" not in actions(db, alone.id)


def test_a_payment_after_planning_is_left_out_of_the_message(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company)
    due = make_invoice(db, customer, due_in_days=-2)
    settled = make_invoice(db, customer, due_in_days=-2)
    run(db, company, rs)
    pay(db, customer, settled)
    deliver(session_factory, db, rs)
    [message] = messages(db, customer.id)
    assert message.status is MessageStatus.SENT
    assert due.number in (message.body_text or "")
    assert settled.number not in (message.body_text or "")
    assert settled.number not in (message.body_html or "")
    assert invoice_ids(db, message.id) == {due.id}


def test_a_released_hold_lets_the_invoice_be_reminded_again(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, due_in_days=-2)
    run(db, company, rs)
    place_hold(
        db,
        customer_id=customer.id,
        invoice_ids=[invoice.id],
        kind=HoldKind.DISPUTE,
        subject_type="dispute",
        subject_id=1,
    )
    deliver(session_factory, db, rs)
    release_holds(db, subject_type="dispute", subject_id=1)
    at("2026-03-11 10:00")
    assert run(db, company, rs).enqueued == 1  # cancelled messages do not count for the gap


def test_segments_give_strategic_customers_a_call_and_the_scenario_waits_for_it(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company, strategic=True, risk_segment=RiskSegment.LOW)
    invoice = make_invoice(db, customer, due_in_days=-4)
    run(db, company, rs)
    deliver(session_factory, db, rs)
    [message] = messages(db, customer.id)
    assert (message.step, message.channel, message.status) == (
        "call-3",
        Channel.TASK,
        MessageStatus.SENT,
    )
    task = db.scalar(select(ReminderTask).where(ReminderTask.customer_id == customer.id))
    assert task is not None
    assert task.status is TaskStatus.OPEN
    at("2026-03-21 10:00")  # the next step (15 days) is reached, but the call is not done
    patient = dataclasses.replace(
        rs, reminders=dataclasses.replace(rs.reminders, call_wait_days=30)
    )
    db.commit()
    waiting = load_policy(db, company.id, patient.reminders)
    assert planning.run(db, company.id, book(rs), calendar_for(rs), policy=waiting).enqueued == 0
    complete_task(db, company.id, task.id, user_id=_user(db), note="Pays Friday")
    with pytest.raises(TaskError) as refused:
        complete_task(db, company.id, task.id, user_id=_user(db), note="")
    assert refused.value.key == "already_done"
    assert run(db, company, rs).enqueued == 1
    assert messages(db, customer.id)[-1].step == "call-15"
    assert invoice.id in invoice_ids(db, messages(db, customer.id)[-1].id)


def _user(db: Session) -> int:
    from portal.users.models import Role, User
    from portal.users.service import create_user

    existing = db.scalar(select(User.id).limit(1))
    if existing is not None:
        return int(existing)
    return create_user(db, "cm@relance.example", Role.CREDIT_MANAGER, "a-long-password-1").id


def test_a_per_customer_scenario_overrides_the_segment(
    db: Session, company: Company, rs: Settings
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company, reminder_scenario="firm")
    make_invoice(db, customer, due_in_days=-6)
    run(db, company, rs)
    [message] = messages(db, customer.id)
    assert (message.scenario, message.step) == ("firm", "overdue-5")


def test_plan_reads_only_and_uses_the_customers_today(
    db: Session, company: Company, rs: Settings
) -> None:
    # 23:30 in Paris on the 10th is already the 11th in Sydney.
    at("2026-03-10 23:30")
    paris = make_customer(db, company, timezone="Europe/Paris")
    sydney = make_customer(db, company, timezone="Australia/Sydney")
    due = clock.now().astimezone(ZoneInfo("Europe/Paris")).date() - dt.timedelta(days=1)
    make_invoice(db, paris, due_date=due)
    make_invoice(db, sydney, due_date=due)
    db.commit()
    planned = [
        m for page in planning.plan(db, company.id, book(rs), calendar_for(rs)) for m in page
    ]
    assert {m.customer_id: m.cycle for m in planned} == {
        paris.id: "2026-03-10",
        sydney.id: "2026-03-11",
    }
    assert messages(db) == []


def test_the_daily_run_happens_once_and_catches_up_once(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    at("2026-03-10 05:00")
    customer = make_customer(db, company)
    make_invoice(db, customer, due_in_days=-2)
    db.commit()
    assert run_if_due(session_factory, company.id, rs, book(rs)) is None  # before 06:00
    at("2026-03-10 07:00")
    first = run_if_due(session_factory, company.id, rs, book(rs))
    assert first is not None
    assert first.enqueued == 1
    assert run_if_due(session_factory, company.id, rs, book(rs)) is None


# --- delivery: SMTP, retries, bounces ----------------------------------------------------------


def test_a_reminder_arrives_by_smtp_with_a_stable_message_id(
    db: Session,
    company: Company,
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company, language="en", email="ap@example.com")
    invoice = make_invoice(db, customer, due_in_days=-2)
    with smtp_server() as (inbox, port):
        s = reminder_settings(settings, tmp_path, port)
        run(db, company, s)
        deliver(session_factory, db, s)
        [received] = inbox.wait_for(1)
    [message] = messages(db, customer.id)
    assert received["To"] == "ap@example.com"
    assert received["Message-ID"] == f"<reminder-{message.id}.2026-03-10@testserver>"
    assert received["Subject"] == "Relance Demo SAS · 1 invoice is overdue"
    text = text_body(received)
    assert invoice.number in text
    assert "http://testserver/l/" in text
    html = received.get_body(preferencelist=("html",))
    assert html is not None
    assert 'href="http://testserver/l/' in str(html.get_content())


def test_an_unreachable_server_is_retried_with_backoff_then_failed(
    db: Session,
    company: Company,
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    from tests.mail_sink import free_port

    s = reminder_settings(settings, tmp_path, free_port())  # nothing listens there
    at("2026-03-10 10:00")
    customer = make_customer(db, company)
    make_invoice(db, customer, due_in_days=-2)
    run(db, company, s)
    delays = []
    for _attempt in range(s.reminders.max_attempts):
        assert deliver(session_factory, db, s) == 1
        [message] = messages(db, customer.id)
        if message.status is MessageStatus.PENDING:
            delays.append((message.next_attempt_at - clock.now()).total_seconds())
            assert deliver(session_factory, db, s) == 0  # not before its time
            clock.freeze(message.next_attempt_at)
    assert delays == [60, 120, 240, 480]
    assert message.status is MessageStatus.FAILED
    assert actions(db, customer.id).count("reminder.retry") == 4
    assert actions(db, customer.id)[-1] == "reminder.failed"


class _Refusing:
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        return "550 5.1.1 No such user"


def test_a_refused_recipient_is_a_bounce_not_retried(
    db: Session,
    company: Company,
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    from aiosmtpd.controller import Controller

    from tests.mail_sink import free_port

    port = free_port()
    controller = Controller(_Refusing(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        s = reminder_settings(settings, tmp_path, port)
        at("2026-03-10 10:00")
        customer = make_customer(db, company)
        make_invoice(db, customer, due_in_days=-2)
        run(db, company, s)
        deliver(session_factory, db, s)
    finally:
        controller.stop()
    [message] = messages(db, customer.id)
    assert message.status is MessageStatus.BOUNCED
    assert "550" in (message.last_error or "")
    assert actions(db, customer.id)[-1] == "reminder.bounced"
    assert smtplib.SMTPRecipientsRefused  # the refusal type the outbox treats as final


# --- letters ----------------------------------------------------------------------------------


def test_the_formal_notice_is_a_pdf_with_penalties_and_indemnity_per_invoice(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(
        db,
        company,
        name="Retard & Fils",
        address_line1="12 rue des Lilas",
        address_line2="Bâtiment B",
        postcode="69003",
        city="Lyon",
    )
    invoice = make_invoice(
        db, customer, amount_minor=100_000, due_date=dt.date(2026, 2, 8), number="F-LATE-1"
    )
    usd = make_invoice(
        db, customer, amount_minor=50_000, due_date=dt.date(2026, 2, 8), currency="USD"
    )
    run(db, company, rs)
    deliver(session_factory, db, rs)
    [message] = messages(db, customer.id)
    assert (message.channel, message.status) == (Channel.LETTER, MessageStatus.SENT)
    text = "".join(
        page.extract_text()
        for page in PdfReader(io.BytesIO(letter_file(rs, message.id).read_bytes())).pages
    )
    assert "Mise en demeure" in text
    assert "Retard & Fils" in text
    # The postal address the letter goes to, in the window of the envelope.
    assert "12 rue des Lilas" in text
    assert "Bâtiment B" in text
    assert "69003 Lyon" in text
    assert invoice.number in text
    assert usd.number in text
    # 1 000 EUR, 30 days late at 14.15 %: 11,63 EUR of penalties, and 40 EUR of indemnity.
    assert "11,63" in text
    assert "40,00" in text
    assert "L441-10" in text
    assert "D441-5" in text
    assert "14,15" in text


def test_a_letter_abroad_names_the_country_in_the_letters_language(
    db: Session, company: Company
) -> None:
    from portal.reminders.render import postal_address

    customer = make_customer(
        db, company, address_line1="Rue Neuve 3", postcode="1000", city="Bruxelles", country="BE"
    )
    assert postal_address(customer, "FR", "fr") == ["Rue Neuve 3", "1000 Bruxelles", "Belgique"]
    assert postal_address(customer, "BE", "fr") == ["Rue Neuve 3", "1000 Bruxelles"]
    assert postal_address(make_customer(db, company), "FR", "fr") == []


# --- SMS --------------------------------------------------------------------------------------


class _Provider(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    status: ClassVar[int] = 201

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        type(self).received.append(
            {"path": self.path, "headers": dict(self.headers), "form": parse_qs(body)}
        )
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        answer = (
            {"sid": f"SM{len(type(self).received)}"}
            if type(self).status < 300
            else {"message": "no"}
        )
        self.wfile.write(json.dumps(answer).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def sms_server() -> Iterator[tuple[str, type[_Provider]]]:
    handler = type("Handler", (_Provider,), {"received": [], "status": 201})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _twilio(url: str) -> TwilioSmsProvider:
    return TwilioSmsProvider(
        SmsSettings(
            provider="twilio",
            api_url=url,
            account_sid="AC123",
            auth_token="tok",
            sender="+33700000000",
        )
    )


def test_sms_go_through_a_twilio_compatible_api_within_160_gsm7_characters(
    db: Session,
    company: Company,
    rs: Settings,
    session_factory: sessionmaker[Session],
    sms_server: tuple[str, type[_Provider]],
) -> None:
    url, handler = sms_server
    at("2026-03-10 10:00")
    customer = make_customer(
        db, company, name="Société Générale des Très Longs Noms de Sociétés Anonymes"
    )
    customer.contacts[0].phone = "+33611111111"
    for _ in range(3):
        make_invoice(db, customer, due_in_days=-9, amount_minor=123_456_78)
    run(db, company, rs)
    deliver(session_factory, db, rs, sms=_twilio(url))
    [message] = messages(db, customer.id)
    assert (message.channel, message.status) == (Channel.SMS, MessageStatus.SENT)
    [request] = handler.received
    assert request["path"] == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request["headers"]["Authorization"] == "Basic QUMxMjM6dG9r"
    assert request["headers"]["I-Twilio-Idempotency-Token"] == f"reminder-{message.id}"
    text = request["form"]["Body"][0]
    assert request["form"]["To"] == ["+33611111111"]
    assert gsm7_length(text) <= 160
    assert "http://testserver/l/" in text
    assert "3 factures impayées" in text
    assert message.external_id == "SM1"


def test_reminders_go_to_contacts_who_accept_the_channel(
    db: Session,
    company: Company,
    rs: Settings,
    session_factory: sessionmaker[Session],
    sms_server: tuple[str, type[_Provider]],
) -> None:
    url, handler = sms_server
    at("2026-03-10 10:00")
    texts = make_customer(db, company, email="boss@example.com")
    boss = texts.contacts[0]
    boss.phone, boss.accepts_sms = "+33611111111", False  # the primary refuses texts
    texts.contacts.append(Contact(name="Compta", phone="+33622222222", accepts_email=False))
    emails = make_customer(db, company, email="nosms@example.com")
    emails.contacts[0].phone = "+33633333333"
    emails.contacts[0].accepts_sms = False  # nobody accepts texts: the email says the same
    for customer in (texts, emails):
        make_invoice(db, customer, due_in_days=-9)
    run(db, company, rs)
    deliver(session_factory, db, rs, sms=_twilio(url))
    [text] = messages(db, texts.id)
    assert (text.channel, text.recipient) == (Channel.SMS, "+33622222222")
    assert [r["form"]["To"] for r in handler.received] == [["+33622222222"]]
    [fallback] = messages(db, emails.id)
    assert fallback.recipient == "nosms@example.com"
    assert fallback.status is MessageStatus.SENT


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (503, False), (429, False)])
def test_provider_errors_are_bounces_or_retries(
    sms_server: tuple[str, type[_Provider]], status: int, permanent: bool
) -> None:
    url, handler = sms_server
    handler.status = status
    with pytest.raises(DeliveryError) as error:
        _twilio(url).send(Sms("+33611111111", "Hello", "reminder-1"))
    assert error.value.permanent is permanent


# --- the property: never nag a payer ----------------------------------------------------------

OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "pay",
                "part_pay",
                "dispute",
                "release",
                "plan",
                "promise",
                "declare",
                "run",
                "send",
                "day",
            ]
        ),
        st.integers(min_value=0, max_value=3),
    ),
    min_size=1,
    max_size=25,
)


@hsettings(
    max_examples=25, deadline=None, suppress_health_check=list(__import__("hypothesis").HealthCheck)
)
@given(operations=OPERATIONS)
def test_no_message_ever_mentions_an_invoice_settled_or_paused_before_it_left(
    db: Session,
    company: Company,
    rs: Settings,
    session_factory: sessionmaker[Session],
    operations: list[tuple[str, int]],
) -> None:
    outer = db.begin_nested()
    try:
        at("2026-03-10 10:00")
        customer = make_customer(db, company)
        customer.contacts[0].phone = "+33611111111"
        invoices = [make_invoice(db, customer, due_in_days=d) for d in (-40, -9, -2, 3)]
        # What each invoice looked like when it stopped being remindable: (number, instant).
        stopped: dict[str, dt.datetime] = {}

        def note_stopped() -> None:
            today = clock.today_in(customer.timezone)
            from portal.holds.service import held_invoice_ids

            held = held_invoice_ids(db, [i.id for i in invoices], today)
            for invoice in invoices:
                db.refresh(invoice)
                if invoice.status is not InvoiceStatus.OPEN or invoice.id in held:
                    stopped.setdefault(invoice.number, clock.now())
                else:
                    stopped.pop(invoice.number, None)

        for operation, index in operations:
            invoice = invoices[index]
            today = clock.today_in(customer.timezone)
            if operation in ("pay", "part_pay") and invoice.remaining_minor:
                pay(db, customer, invoice, invoice.remaining_minor if operation == "pay" else 1_000)
            elif operation in ("dispute", "plan", "promise"):
                kind = {
                    "dispute": HoldKind.DISPUTE,
                    "plan": HoldKind.PAYMENT_PLAN,
                    "promise": HoldKind.PROMISE,
                }[operation]
                place_hold(
                    db,
                    customer_id=customer.id,
                    invoice_ids=[invoice.id],
                    kind=kind,
                    subject_type=operation,
                    subject_id=index,
                    until=today + dt.timedelta(days=4) if operation == "promise" else None,
                )
            elif operation == "release":
                for kind in ("dispute", "plan", "promise"):
                    release_holds(db, subject_type=kind, subject_id=index)
            elif operation == "declare":
                invoice.transfer_pending_until = today + dt.timedelta(days=2)
            elif operation == "run":
                db.flush()
                planning.run(db, company.id, book(rs), calendar_for(rs))
            elif operation == "send":
                db.commit()
                deliver_due(session_factory, context(rs), "prop")
                db.expire_all()
            else:
                clock.freeze(clock.now() + dt.timedelta(days=1 + index))
            db.flush()
            note_stopped()
            # Strictly ordered instants: what happened now is before anything sent next.
            clock.freeze(clock.now() + dt.timedelta(seconds=1))
            for message in messages(db, customer.id):
                if message.sent_at is None or message.status is not MessageStatus.SENT:
                    continue
                for number, since in stopped.items():
                    if since < message.sent_at:
                        assert number not in (message.body_text or ""), (number, operations)
    finally:
        clock.freeze(None)
        if outer.is_active:
            outer.rollback()
