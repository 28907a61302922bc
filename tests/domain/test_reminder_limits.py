"""The engine's faults found over 90 days: call steps that stop everything, pauses that
resume at the furthest step; and the company's limits: the cap per 30 days, quiet periods,
the freeze."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.cases import service as cases
from portal.cases.service import AgreementInfo
from portal.company.models import Company
from portal.customers.models import RiskSegment
from portal.reminders import manual, planning
from portal.reminders.models import Channel, MessageStatus, ReminderTask, TaskStatus
from portal.reminders.outbox import deliver_due
from portal.reminders.policy import CAP_WINDOW, load_policy, save_limits, set_frozen
from portal.reminders.quiet import QuietPeriodError, parse_quiet_periods
from portal.reminders.scenarios import ScenarioBook, parse_scenarios
from portal.reminders.tasks import list_tasks
from portal.reminders.worker import calendar_for
from portal.settings import Settings
from portal.timeline.models import TimelineEvent
from portal.users.models import Role, User
from portal.users.service import create_user
from tests.factories import make_customer, make_invoice
from tests.reminders_helpers import at, book, context, invoice_ids, messages, reminder_settings


@pytest.fixture
def rs(settings: Settings, tmp_path: Path) -> Settings:
    return reminder_settings(settings, tmp_path)


def run(db: Session, company: Company, s: Settings) -> planning.RunResult:
    db.commit()
    policy = load_policy(db, company.id, s.reminders)
    return planning.run(db, company.id, book(s), calendar_for(s), policy=policy)


def deliver(session_factory: sessionmaker[Session], db: Session, s: Settings, **kw: Any) -> int:
    db.commit()
    count = deliver_due(session_factory, context(s, **kw), "worker-test")
    db.expire_all()
    return count


def manager(db: Session) -> User:
    existing = db.scalar(select(User).where(User.email == "cm@relance.example"))
    return existing or create_user(
        db, "cm@relance.example", Role.CREDIT_MANAGER, "a-long-password-1"
    )


# --- 9. an open call task holds its invoices for a while, not everything -------------------


def test_an_open_call_holds_its_invoices_only_and_later_invoices_follow_their_steps(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company, strategic=True, risk_segment=RiskSegment.LOW)
    called = make_invoice(db, customer, due_in_days=-4)
    run(db, company, rs)
    deliver(session_factory, db, rs)
    [task] = db.scalars(select(ReminderTask).where(ReminderTask.customer_id == customer.id))
    at("2026-03-12 10:00")
    later = make_invoice(db, customer, due_in_days=4)  # falls due later: its courtesy email
    assert run(db, company, rs).enqueued == 1
    courtesy = messages(db, customer.id)[-1]
    assert (courtesy.step, courtesy.channel) == ("courtesy", Channel.EMAIL)
    assert invoice_ids(db, courtesy.id) == {later.id}
    assert called.id not in invoice_ids(db, courtesy.id)
    [row] = list_tasks(db, company.id, TaskStatus.OPEN)
    assert not row.overdue
    assert task.status is TaskStatus.OPEN


def test_a_call_left_open_past_the_wait_lets_the_scenario_go_on_and_shows_overdue(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, due_in_days=-15)
    run(db, company, rs)
    deliver(session_factory, db, rs)
    assert messages(db, customer.id)[-1].step == "call-15"
    at("2026-03-16 10:00")  # the formal notice is not reached yet (day 21)
    assert run(db, company, rs).enqueued == 0
    at("2026-03-25 10:00")  # day 30: the call is 15 days old, past the 7-day wait
    [row] = list_tasks(db, company.id, TaskStatus.OPEN, call_wait_days=rs.reminders.call_wait_days)
    assert row.overdue
    assert run(db, company, rs).enqueued == 1
    notice = messages(db, customer.id)[-1]
    assert (notice.step, notice.channel) == ("formal-notice-30", Channel.LETTER)
    assert invoice_ids(db, notice.id) == {invoice.id}


def test_a_longer_configured_wait_keeps_the_call_steps_invoices_waiting(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    patient = dataclasses.replace(
        rs, reminders=dataclasses.replace(rs.reminders, call_wait_days=60)
    )
    at("2026-03-10 10:00")
    customer = make_customer(db, company)
    make_invoice(db, customer, due_in_days=-15)
    run(db, company, patient)
    deliver(session_factory, db, patient)
    at("2026-03-25 10:00")
    assert run(db, company, patient).enqueued == 0


# --- 10. a pause that ends resumes at the next step; the broken promise is named ----------------


def test_a_broken_promise_resumes_at_the_next_step_and_says_the_promise_was_not_kept(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company, language="en")
    invoice = make_invoice(db, customer, due_in_days=-1)
    run(db, company, rs)
    deliver(session_factory, db, rs, any_time=True)
    assert messages(db, customer.id)[-1].step == "overdue-1"
    promised = dt.date(2026, 3, 20)
    cases.promise_to_pay(
        db,
        customer,
        None,
        [invoice.id],
        promised_date=promised,
        today=dt.date(2026, 3, 11),
        policy=rs.cases,
        agreement=AgreementInfo("127.0.0.1", "test"),
    )
    at("2026-03-16 10:00")
    assert run(db, company, rs).enqueued == 0  # paused by the promise
    at("2026-03-30 10:00")  # day 21: the furthest step reached is the call (15)
    db.commit()
    assert cases.check_commitments(db, dt.date(2026, 3, 30), rs.cases).broken
    assert run(db, company, rs).enqueued == 1
    resumed = messages(db, customer.id)[-1]
    assert resumed.step == "overdue-8"  # the next step, not the call
    deliver(session_factory, db, rs, any_time=True)
    db.refresh(resumed)
    assert resumed.status is MessageStatus.SENT
    assert resumed.channel is Channel.SMS  # no mobile number: the email said it
    assert "You promised to pay by 20 Mar 2026" in (resumed.body_text or "")
    assert "You promised to pay by" in (resumed.body_html or "")
    # Only the first message after the broken promise says so.
    at("2026-04-06 10:00")
    run(db, company, rs)
    deliver(session_factory, db, rs, any_time=True)
    following = messages(db, customer.id)[-1]
    assert following.id != resumed.id
    assert "You promised" not in (following.body_text or "")


# --- 11. the cap --------------------------------------------------------------------------------


def test_the_cap_stops_planning_and_sending_past_four_messages_in_30_days(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    tight = dataclasses.replace(rs, reminders=dataclasses.replace(rs.reminders, monthly_cap=1))
    at("2026-03-10 10:00")
    customer = make_customer(db, company)
    make_invoice(db, customer, due_in_days=-1)
    assert run(db, company, tight).enqueued == 1
    deliver(session_factory, db, tight)
    at("2026-03-20 10:00")  # overdue-8 is due and past the gap, but the cap is reached
    assert run(db, company, tight).enqueued == 0
    assert run(db, company, rs).enqueued == 1  # with the default cap of 4 it goes
    # At send time: the cap lowered meanwhile cancels it.
    db.commit()
    deliver(session_factory, db, tight)
    last = messages(db, customer.id)[-1]
    assert last.status is MessageStatus.CANCELLED
    event = db.scalar(
        select(TimelineEvent)
        .where(TimelineEvent.action == "reminder.cancelled")
        .order_by(TimelineEvent.id.desc())
    )
    assert event is not None
    assert event.details["reason"] == "monthly_cap"


def test_the_back_office_cap_and_quiet_periods_override_the_settings(
    db: Session, company: Company, rs: Settings
) -> None:
    user = manager(db)
    assert load_policy(db, company.id, rs.reminders).monthly_cap == 4
    save_limits(
        db, company.id, user.id, monthly_cap="2", quiet_periods="08-01..08-31, 12-24..01-01"
    )
    policy = load_policy(db, company.id, rs.reminders)
    assert policy.monthly_cap == 2
    assert policy.is_quiet(dt.date(2026, 8, 15))
    assert policy.is_quiet(dt.date(2027, 1, 1))
    assert not policy.is_quiet(dt.date(2026, 9, 1))
    assert policy.quiet_until(dt.date(2026, 12, 30)) == dt.date(2027, 1, 2)
    from portal.changes import FieldErrors

    with pytest.raises(FieldErrors) as refused:
        save_limits(db, company.id, user.id, monthly_cap="0", quiet_periods="August")
    assert set(refused.value.errors) == {"monthly_cap", "quiet_periods"}
    assert load_policy(db, company.id, rs.reminders).monthly_cap == 2  # unchanged


@pytest.mark.parametrize("text", ["08-01", "13-01..13-05", "02-30..03-01", "x..y"])
def test_quiet_periods_are_checked(text: str) -> None:
    with pytest.raises(QuietPeriodError):
        parse_quiet_periods(text)


# --- 12. quiet periods and the freeze ----------------------------------------------------------


def test_nothing_is_planned_in_a_quiet_period_and_a_message_due_then_waits(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    user = manager(db)
    at("2026-07-31 10:00")
    customer = make_customer(db, company)
    make_invoice(db, customer, due_in_days=-1)
    run(db, company, rs)  # planned on the last day before August
    save_limits(db, company.id, user.id, monthly_cap="4", quiet_periods="08-01..08-31")
    at("2026-08-03 10:00")
    assert deliver(session_factory, db, rs) == 0
    [message] = messages(db, customer.id)
    assert message.status is MessageStatus.PENDING
    assert message.next_attempt_at.date() == dt.date(2026, 9, 1)
    make_invoice(db, make_customer(db, company), due_in_days=-1)
    assert run(db, company, rs).enqueued == 0
    at("2026-09-01 10:00")
    assert deliver(session_factory, db, rs) == 1


def test_the_freeze_stops_planning_and_sending_until_thawed(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    user = manager(db)
    at("2026-03-10 10:00")
    customer = make_customer(db, company)
    make_invoice(db, customer, due_in_days=-1)
    run(db, company, rs)
    set_frozen(db, company.id, user.id, frozen=True, reason="Billing error in March")
    assert deliver(session_factory, db, rs) == 0
    other = make_customer(db, company)
    make_invoice(db, other, due_in_days=-1)
    assert run(db, company, rs).enqueued == 0
    assert messages(db, customer.id)[0].status is MessageStatus.PENDING
    set_frozen(db, company.id, user.id, frozen=False, reason="")
    assert deliver(session_factory, db, rs) == 1
    assert run(db, company, rs).enqueued == 1
    events = list(
        db.scalars(
            select(TimelineEvent.action).where(TimelineEvent.subject_type == "reminder_policy")
        )
    )
    assert events == ["reminders.frozen", "reminders.unfrozen"]


# --- the property: the cap is never exceeded ----------------------------------------------------

TEMPLATE_OF = {
    Channel.EMAIL: "reminder_overdue",
    Channel.SMS: "reminder_overdue",
    Channel.LETTER: "formal_notice",
    Channel.TASK: "call",
}
STEPS = st.lists(
    st.tuples(st.integers(-10, 40), st.sampled_from(list(Channel))),
    min_size=2,
    max_size=6,
    unique_by=lambda step: step[0],
)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("run"), st.just(0)),
        st.tuples(st.just("send"), st.just(0)),
        st.tuples(st.just("manual"), st.integers(0, 2)),
        st.tuples(st.just("days"), st.integers(1, 6)),
        st.tuples(st.just("done"), st.just(0)),
    ),
    min_size=10,
    max_size=40,
)


def _book(steps: list[tuple[int, Channel]], gap: int) -> ScenarioBook:
    return parse_scenarios(
        {
            "min_gap_days": gap,
            "segments": dict.fromkeys(("low", "medium", "high", "strategic"), "s"),
            "scenarios": {
                "s": {
                    "steps": [
                        {
                            "key": f"k{days}",
                            "days": days,
                            "channel": str(c),
                            "template": TEMPLATE_OF[c],
                        }
                        for days, c in steps
                    ]
                }
            },
        }
    )


@hsettings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=STEPS, gap=st.integers(0, 3), cap=st.integers(1, 3), operations=OPERATIONS)
def test_no_customer_ever_gets_more_than_the_cap_in_any_30_days(
    db: Session,
    company: Company,
    rs: Settings,
    session_factory: sessionmaker[Session],
    steps: list[tuple[int, Channel]],
    gap: int,
    cap: int,
    operations: list[tuple[str, int]],
) -> None:
    outer = db.begin_nested()
    try:
        at("2026-03-10 10:00")
        scenarios = _book(steps, gap)
        capped = dataclasses.replace(
            rs, reminders=dataclasses.replace(rs.reminders, monthly_cap=cap)
        )
        user = manager(db)
        customer = make_customer(db, company)
        customer.contacts[0].phone = "+33611111111"
        for due in (-40, -12, -3, 2, 9):
            make_invoice(db, customer, due_in_days=due)
        tokens = iter(f"{n:016x}" for n in range(1, 1000))
        refusals: set[str] = set()
        for operation, value in operations:
            if operation == "run":
                db.commit()
                planning.run(
                    db,
                    company.id,
                    scenarios,
                    calendar_for(capped),
                    policy=load_policy(db, company.id, capped.reminders),
                )
            elif operation == "send":
                deliver(session_factory, db, capped, any_time=True)
            elif operation == "manual":
                try:
                    manual.queue(
                        db,
                        customer,
                        user_id=user.id,
                        policy=load_policy(db, company.id, capped.reminders),
                        token=next(tokens),
                        channel=("email", "sms", "letter")[value],
                        template="reminder_overdue",
                        subject="Your invoices",
                        text="Please pay: {link}",
                    )
                except manual.ManualError as refused:
                    refusals.add(refused.key)
            elif operation == "done":
                for task in db.scalars(
                    select(ReminderTask).where(ReminderTask.status == TaskStatus.OPEN)
                ):
                    task.status = TaskStatus.DONE
            else:
                clock.freeze(clock.now() + dt.timedelta(days=value))
            db.flush()
        sent = sorted(
            m.sent_at
            for m in messages(db, customer.id)
            if m.status is MessageStatus.SENT and m.channel is not Channel.TASK and m.sent_at
        )
        for index, moment in enumerate(sent):
            window = [s for s in sent[: index + 1] if s >= moment - CAP_WINDOW]
            assert len(window) <= cap, (sent, cap, operations)
        assert refusals <= {"cap_reached", "nothing_due"}
    finally:
        clock.freeze(None)
        if outer.is_active:
            outer.rollback()
