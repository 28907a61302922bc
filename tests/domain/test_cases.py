"""Cases in the domain: plan policy and schedules, instalment coverage, holds, commitments."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.cases import attachments, policy
from portal.cases import service as cases
from portal.cases.attachments import AttachmentRejected, IncomingFile
from portal.cases.models import Agreement, CaseKind, CaseStatus
from portal.cases.service import AgreementInfo, CaseError
from portal.company.models import Company
from portal.customers.models import RiskSegment
from portal.holds.service import held_invoice_ids
from portal.invoices.models import InvoiceStatus
from portal.payments.models import PaymentMethod
from portal.payments.service import record_payment
from portal.settings import CaseSettings
from portal.timeline.models import TimelineEvent
from portal.users.models import Role, User
from tests.factories import make_customer, make_invoice

TODAY = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
POLICY = CaseSettings(
    plan_max_instalments=6,
    plan_max_days=180,
    plan_min_instalment_minor=5_000,
    plan_max_total_minor=1_000_000,
    plan_risk_segments=("low", "medium"),
    plan_grace_days=5,
    promise_max_days=30,
    promise_grace_days=3,
)
AGREED = AgreementInfo("203.0.113.7", "Mozilla/5.0 test")
_emails = itertools.count(1)


@pytest.fixture(autouse=True)
def _frozen() -> None:
    clock.freeze(NOW)


def _user(db: Session, role: Role = Role.CREDIT_MANAGER) -> User:
    user = User(
        email=f"cm{next(_emails)}@relance.example",
        password_hash="x",
        role=role,
        is_active=True,
        failed_logins=0,
        session_version=1,
        created_at=clock.now(),
    )
    db.add(user)
    db.flush()
    return user


def _actions(db: Session) -> list[str]:
    return list(db.scalars(select(TimelineEvent.action).order_by(TimelineEvent.id)))


# --- schedules and policy (pure) -------------------------------------------------------------


def test_add_months_keeps_the_day_or_takes_the_month_end() -> None:
    assert policy.add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert policy.add_months(dt.date(2026, 11, 15), 2) == dt.date(2027, 1, 15)
    assert policy.add_months(dt.date(2028, 1, 31), 1) == dt.date(2028, 2, 29)


@given(
    total=st.integers(min_value=1, max_value=10**10),
    count=st.integers(min_value=1, max_value=policy.HARD_MAX_INSTALMENTS),
)
def test_equal_instalments_add_up_exactly_and_differ_by_a_cent_at_most(
    total: int, count: int
) -> None:
    schedule = policy.build_schedule(total, TODAY, TODAY, count=count)
    amounts = [i.amount_minor for i in schedule]
    assert sum(amounts) == total
    assert max(amounts) - min(amounts) <= 1
    assert [i.seq for i in schedule] == list(range(1, len(schedule) + 1))
    assert all(a.due_date < b.due_date for a, b in itertools.pairwise(schedule))


@given(
    total=st.integers(min_value=1, max_value=10**7),
    monthly=st.integers(min_value=1, max_value=10**7),
)
def test_a_monthly_amount_pays_everything_with_a_smaller_last_instalment(
    total: int, monthly: int
) -> None:
    if -(-total // monthly) > policy.HARD_MAX_INSTALMENTS:
        with pytest.raises(policy.PlanError):
            policy.build_schedule(total, TODAY, TODAY, monthly_minor=monthly)
        return
    schedule = policy.build_schedule(total, TODAY, TODAY, monthly_minor=monthly)
    amounts = [i.amount_minor for i in schedule]
    assert sum(amounts) == total
    assert all(a == monthly for a in amounts[:-1])
    assert 0 < amounts[-1] <= monthly


def test_schedules_refuse_a_past_first_date_and_bad_counts() -> None:
    for kwargs, key in (
        ({"count": 0}, policy.PlanError.COUNT_INVALID),
        ({"count": 61}, policy.PlanError.COUNT_INVALID),
        ({"monthly_minor": 0}, policy.PlanError.MONTHLY_INVALID),
        ({}, policy.PlanError.COUNT_INVALID),
    ):
        with pytest.raises(policy.PlanError) as caught:
            policy.build_schedule(10_000, TODAY, TODAY, **kwargs)  # type: ignore[arg-type]
        assert caught.value.key == key
    with pytest.raises(policy.PlanError) as caught:
        policy.build_schedule(10_000, TODAY - dt.timedelta(days=1), TODAY, count=2)
    assert caught.value.key == policy.PlanError.FIRST_DATE_PAST


def _verdict(schedule: list[policy.ScheduledInstalment], total: int, **kw: object) -> set[str]:
    values: dict[str, object] = {
        "total_minor": total,
        "currency": "EUR",
        "risk_segment": "medium",
        "today": TODAY,
        "policy": POLICY,
        "company_currency": "EUR",
    } | kw
    return set(policy.evaluate(schedule, **values).violations)  # type: ignore[arg-type]


def test_policy_names_every_violation() -> None:
    ok = policy.build_schedule(60_000, TODAY, TODAY, count=6)
    assert _verdict(ok, 60_000) == set()
    assert policy.TOO_MANY_INSTALMENTS in _verdict(
        policy.build_schedule(70_000, TODAY, TODAY, count=7), 70_000
    )
    assert policy.TOO_LONG in _verdict(
        policy.build_schedule(60_000, TODAY + dt.timedelta(days=60), TODAY, count=6), 60_000
    )
    assert _verdict(policy.build_schedule(20_000, TODAY, TODAY, count=5), 20_000) == {
        policy.INSTALMENT_TOO_SMALL
    }
    # A remainder as the last instalment is fine.
    assert (
        _verdict(policy.build_schedule(52_000, TODAY, TODAY, monthly_minor=10_000), 52_000) == set()
    )
    big = policy.build_schedule(2_000_000, TODAY, TODAY, count=6)
    assert _verdict(big, 2_000_000) == {policy.TOTAL_TOO_HIGH}
    assert _verdict(ok, 60_000, risk_segment="high") == {policy.RISK_NOT_ALLOWED}
    assert _verdict(ok, 60_000, currency="USD") == {policy.CURRENCY_NOT_ALLOWED}


@given(
    amounts=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=12),
    paid=st.integers(min_value=0, max_value=2 * 10**7),
)
def test_payments_cover_instalments_in_order(amounts: list[int], paid: int) -> None:
    rows = [(i + 1, TODAY + dt.timedelta(days=30 * i), a) for i, a in enumerate(amounts)]
    states = policy.cover(rows, paid)
    assert sum(s.covered_minor for s in states) == min(paid, sum(amounts))
    # Never a partly covered instalment before an unpaid one: coverage is a prefix.
    seen_gap = False
    for state in states:
        if seen_gap:
            assert state.covered_minor == 0
        if not state.paid:
            seen_gap = True


# --- attachments -----------------------------------------------------------------------------


def test_attachment_type_comes_from_the_content_not_the_name(tmp_path: object) -> None:
    pdf = IncomingFile("../../etc/passwd.png", b"%PDF-1.7 rest")
    [checked] = attachments.check_files([pdf], 1000, 2)
    assert checked.content_type == "application/pdf"
    assert checked.filename == "passwd.pdf"
    for files, key in (
        ([IncomingFile("a.pdf", b"MZ\x90 not a pdf")], AttachmentRejected.WRONG_TYPE),
        ([IncomingFile("a.png", b"\x89PNG\r\n\x1a\n" + b"x" * 2000)], AttachmentRejected.TOO_LARGE),
        ([IncomingFile("a.jpg", b"\xff\xd8\xff")] * 3, AttachmentRejected.TOO_MANY),
        ([IncomingFile("a.jpg", b"")], AttachmentRejected.EMPTY),
    ):
        with pytest.raises(AttachmentRejected) as caught:
            attachments.check_files(files, 1000, 2)
        assert caught.value.key == key


def test_stored_files_are_found_only_by_the_names_we_made(tmp_path: object) -> None:
    from pathlib import Path

    directory = Path(str(tmp_path))
    [checked] = attachments.check_files([IncomingFile("x.png", b"\x89PNG\r\n\x1a\nabc")], 100, 1)
    name = attachments.store(directory, checked)
    assert attachments.stored_path(directory, name) == (directory / name).resolve()
    assert (directory / name).stat().st_mode & 0o777 == 0o600
    assert attachments.stored_path(directory, "../" + name) is None
    assert attachments.stored_path(directory, "a" * 30 + ".pdf") is None


def test_a_dispute_rolled_back_leaves_no_attachment_file(
    db: Session, company: Company, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, due_in_days=-10)
    db.commit()
    [checked] = attachments.check_files([IncomingFile("proof.pdf", b"%PDF-1.7 proof")], 100, 1)

    def dispute(work: Session) -> None:
        cases.open_dispute(
            work, work.merge(customer), None, [invoice.id], reason="not_received",
            message="Never came.", attachments=[checked], attachments_dir=tmp_path,
        )  # fmt: skip

    def dispute_then_fail() -> None:
        with session_factory() as work, work.begin():
            dispute(work)
            assert len(list(tmp_path.iterdir())) == 1  # written during the transaction
            raise RuntimeError("a failure after the dispute, before the commit")

    with pytest.raises(RuntimeError, match="before the commit"):
        dispute_then_fail()
    assert list(tmp_path.iterdir()) == []

    with session_factory() as work, work.begin():
        dispute(work)
    assert len(list(tmp_path.iterdir())) == 1  # committed: the file stays


# --- disputes --------------------------------------------------------------------------------


def test_a_dispute_holds_exactly_its_invoices_and_goes_to_the_owner(
    db: Session, company: Company
) -> None:
    owner = _user(db)
    customer = make_customer(db, company, owner_user_id=owner.id)
    disputed = make_invoice(db, customer)
    other = make_invoice(db, customer)
    case = cases.open_dispute(
        db, customer, None, [disputed.id], reason="wrong_amount", message="Price was 80."
    )
    assert case.status is CaseStatus.OPEN
    assert case.assignee_id == owner.id
    assert held_invoice_ids(db, [disputed.id, other.id], TODAY) == {disputed.id}
    assert "dispute.opened" in _actions(db)
    # The same dispute again (double submit) is the same case; an overlap is refused.
    again = cases.open_dispute(db, customer, None, [disputed.id], reason="other", message="x")
    assert again.id == case.id
    with pytest.raises(CaseError) as caught:
        cases.open_dispute(db, customer, None, [disputed.id, other.id], reason="other", message="x")
    assert caught.value.key == CaseError.ALREADY_IN_CASE


def test_dispute_input_errors_change_nothing(db: Session, company: Company) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer)
    foreign = make_invoice(db, make_customer(db, company))
    for kwargs, key in (
        ({"invoice_ids": [], "reason": "other", "message": "m"}, CaseError.EMPTY_SELECTION),
        (
            {"invoice_ids": [foreign.id], "reason": "other", "message": "m"},
            CaseError.UNKNOWN_INVOICE,
        ),
        (
            {"invoice_ids": [invoice.id], "reason": "bored", "message": "m"},
            CaseError.REASON_INVALID,
        ),
        (
            {"invoice_ids": [invoice.id], "reason": "other", "message": "  "},
            CaseError.MESSAGE_REQUIRED,
        ),
    ):
        with pytest.raises(CaseError) as caught:
            cases.open_dispute(db, customer, None, **kwargs)  # type: ignore[arg-type]
        assert caught.value.key == key
    assert cases.customer_cases(db, customer.id) == []
    assert held_invoice_ids(db, [invoice.id], TODAY) == set()


def test_round_robin_among_credit_managers_without_an_owner(db: Session, company: Company) -> None:
    first, second = _user(db), _user(db)
    _user(db, Role.VIEWER)
    customer = make_customer(db, company)
    assigned = []
    for _ in range(3):
        invoice = make_invoice(db, customer)
        case = cases.open_dispute(db, customer, None, [invoice.id], reason="other", message="m")
        assigned.append(case.assignee_id)
    assert assigned == [first.id, second.id, first.id]


@pytest.mark.parametrize(
    ("outcome", "amount", "status", "amount_after"),
    [
        ("cancel", None, InvoiceStatus.CANCELLED, 10_000),
        ("credit", 2_500, InvoiceStatus.OPEN, 7_500),
        ("adjust", 8_000, InvoiceStatus.OPEN, 8_000),
        ("credit", 10_000, InvoiceStatus.CANCELLED, 0),
    ],
)
def test_resolving_a_dispute_changes_the_invoice_and_releases_the_hold(
    db: Session,
    company: Company,
    outcome: str,
    amount: int | None,
    status: InvoiceStatus,
    amount_after: int,
) -> None:
    user = _user(db)
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, amount_minor=10_000)
    case = cases.open_dispute(db, customer, None, [invoice.id], reason="other", message="m")
    cases.resolve_dispute(
        db, case, user, outcome=outcome, note="", invoice_id=invoice.id, amount_minor=amount
    )
    assert case.status is CaseStatus.RESOLVED
    assert invoice.status is status
    assert invoice.amount_minor == amount_after
    assert held_invoice_ids(db, [invoice.id], TODAY) == set()
    past = {"cancel": "cancelled", "credit": "credited", "adjust": "adjusted"}[outcome]
    assert f"invoice.{past}" in _actions(db)


def test_rejecting_a_dispute_needs_a_reason_and_resumes_reminders(
    db: Session, company: Company
) -> None:
    user = _user(db)
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer)
    case = cases.open_dispute(db, customer, None, [invoice.id], reason="other", message="m")
    with pytest.raises(CaseError) as caught:
        cases.resolve_dispute(db, case, user, outcome="reject", note=" ")
    assert caught.value.key == CaseError.MESSAGE_REQUIRED
    for kwargs, key in (
        (
            {"outcome": "credit", "invoice_id": invoice.id, "amount_minor": 0},
            CaseError.AMOUNT_INVALID,
        ),
        (
            {"outcome": "adjust", "invoice_id": invoice.id, "amount_minor": 10_000},
            CaseError.AMOUNT_INVALID,
        ),
        ({"outcome": "cancel", "invoice_id": 999_999}, CaseError.INVOICE_NOT_IN_CASE),
        ({"outcome": "shrug"}, CaseError.OUTCOME_INVALID),
    ):
        with pytest.raises(CaseError) as caught:
            cases.resolve_dispute(db, case, user, note="", **kwargs)  # type: ignore[arg-type]
        assert caught.value.key == key
    assert case.status is CaseStatus.OPEN
    cases.resolve_dispute(db, case, user, outcome="reject", note="Delivered on 3 May.")
    assert case.status is CaseStatus.REJECTED
    assert invoice.status is InvoiceStatus.OPEN
    assert held_invoice_ids(db, [invoice.id], TODAY) == set()
    assert cases.thread(db, case.id)[-1].body == "Delivered on 3 May."


# --- plans -----------------------------------------------------------------------------------


def _propose(db: Session, customer: object, ids: list[int], **kw: object) -> object:
    values: dict[str, object] = {
        "first_date": TODAY + dt.timedelta(days=7),
        "today": TODAY,
        "policy": POLICY,
        "company_currency": "EUR",
        "agreement": AGREED,
        "count": 3,
    } | kw
    return cases.propose_plan(db, customer, None, ids, **values)  # type: ignore[arg-type]


def test_a_plan_within_policy_runs_at_once_with_holds_and_an_agreement(
    db: Session, company: Company
) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, amount_minor=30_000)
    case = _propose(db, customer, [invoice.id])
    assert case.status is CaseStatus.ACTIVE  # type: ignore[attr-defined]
    assert case.accepted_at == NOW  # type: ignore[attr-defined]
    assert [i.amount_minor for i in case.instalments] == [10_000] * 3  # type: ignore[attr-defined]
    assert held_invoice_ids(db, [invoice.id], TODAY) == {invoice.id}
    [agreement] = db.scalars(select(Agreement)).all()
    assert (agreement.client_ip, agreement.user_agent) == (AGREED.client_ip, AGREED.user_agent)
    assert agreement.agreed_at == NOW
    assert len(agreement.terms["instalments"]) == 3
    assert _actions(db)[-2:] == ["plan.proposed", "plan.accepted"]


def test_a_plan_outside_policy_is_reviewed_countered_and_accepted(
    db: Session, company: Company
) -> None:
    manager = _user(db)
    customer = make_customer(db, company, risk_segment=RiskSegment.HIGH)
    invoice = make_invoice(db, customer, amount_minor=30_000)
    case = _propose(db, customer, [invoice.id])
    assert case.status is CaseStatus.REVIEW  # type: ignore[attr-defined]
    assert case.answer_by == TODAY + dt.timedelta(days=POLICY.review_days)  # type: ignore[attr-defined]
    assert case.assignee_id == manager.id  # type: ignore[attr-defined]
    assert held_invoice_ids(db, [invoice.id], TODAY) == {invoice.id}
    cases.counter_propose(
        db,
        case,
        manager,
        first_date=TODAY + dt.timedelta(days=3),
        today=TODAY,
        count=2,  # type: ignore[arg-type]
    )
    assert case.status is CaseStatus.COUNTERED  # type: ignore[attr-defined]
    with pytest.raises(CaseError):
        cases.decide_plan(db, case, manager, accept=True)  # type: ignore[arg-type]
    cases.accept_counter_proposal(db, case, AGREED)  # type: ignore[arg-type]
    assert case.status is CaseStatus.ACTIVE  # type: ignore[attr-defined]
    assert [i.amount_minor for i in case.instalments] == [15_000, 15_000]  # type: ignore[attr-defined]
    assert len(db.scalars(select(Agreement)).all()) == 2


def test_rejecting_a_plan_releases_its_holds(db: Session, company: Company) -> None:
    manager = _user(db)
    customer = make_customer(db, company, risk_segment=RiskSegment.HIGH)
    invoice = make_invoice(db, customer, amount_minor=30_000)
    case = _propose(db, customer, [invoice.id])
    cases.decide_plan(db, case, manager, accept=False, note="Please call us.")  # type: ignore[arg-type]
    assert case.status is CaseStatus.REJECTED  # type: ignore[attr-defined]
    assert held_invoice_ids(db, [invoice.id], TODAY) == set()


def test_payments_after_acceptance_cover_instalments_and_complete_the_plan(
    db: Session, company: Company
) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, amount_minor=30_000)
    # Paid before the plan: does not count toward instalments (the plan is on what remained).
    case = _propose(db, customer, [invoice.id])
    nxt = cases.next_instalment(db, customer.id, case.id)  # type: ignore[attr-defined]
    assert nxt is not None
    assert (nxt.seq, nxt.amount_minor, nxt.invoice_ids) == (1, 10_000, [invoice.id])
    clock.freeze(NOW + dt.timedelta(days=8))
    record_payment(
        db,
        customer,
        amount_minor=14_000,
        currency="EUR",
        method=PaymentMethod.CARD,
        provider="stripe",
        provider_reference="pi_1",
    )
    states = cases.instalment_states(db, case)  # type: ignore[arg-type]
    assert [s.covered_minor for s in states] == [10_000, 4_000, 0]
    nxt = cases.next_instalment(db, customer.id, case.id)  # type: ignore[attr-defined]
    assert nxt is not None
    assert (nxt.seq, nxt.amount_minor) == (2, 6_000)
    record_payment(
        db,
        customer,
        amount_minor=16_000,
        currency="EUR",
        method=PaymentMethod.TRANSFER,
        provider="bank",
        provider_reference="tr_1",
    )
    result = cases.check_commitments(db, TODAY + dt.timedelta(days=9), POLICY)
    assert result.completed == [case.id]  # type: ignore[attr-defined]
    assert case.status is CaseStatus.COMPLETED  # type: ignore[attr-defined]
    assert held_invoice_ids(db, [invoice.id], TODAY) == set()
    assert cases.check_commitments(db, TODAY + dt.timedelta(days=9), POLICY).changed == 0


def test_a_missed_instalment_breaks_the_plan_after_the_grace_period_only(
    db: Session, company: Company
) -> None:
    manager = _user(db)
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, amount_minor=30_000)
    case = _propose(db, customer, [invoice.id])
    first_due = TODAY + dt.timedelta(days=7)
    last_grace_day = first_due + dt.timedelta(days=POLICY.plan_grace_days)
    assert cases.check_commitments(db, last_grace_day, POLICY).changed == 0
    assert case.status is CaseStatus.ACTIVE  # type: ignore[attr-defined]
    result = cases.check_commitments(db, last_grace_day + dt.timedelta(days=1), POLICY)
    assert result.broken == [case.id]  # type: ignore[attr-defined]
    assert case.status is CaseStatus.BROKEN  # type: ignore[attr-defined]
    assert case.assignee_id == manager.id  # type: ignore[attr-defined]
    assert held_invoice_ids(db, [invoice.id], last_grace_day) == set()
    events = _actions(db)
    assert cases.check_commitments(db, last_grace_day + dt.timedelta(days=2), POLICY).changed == 0
    assert _actions(db) == events  # idempotent: nothing more recorded
    cases.close_broken(db, case, manager, "Called, will pay Friday.")  # type: ignore[arg-type]
    assert case.status is CaseStatus.CLOSED  # type: ignore[attr-defined]


# --- promises --------------------------------------------------------------------------------


def test_a_promise_holds_until_its_date_plus_grace_then_breaks(
    db: Session, company: Company
) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer)
    promised = TODAY + dt.timedelta(days=10)
    case = cases.promise_to_pay(
        db,
        customer,
        None,
        [invoice.id],
        promised_date=promised,
        today=TODAY,
        policy=POLICY,
        agreement=AGREED,
    )
    until = promised + dt.timedelta(days=POLICY.promise_grace_days)
    assert held_invoice_ids(db, [invoice.id], until) == {invoice.id}
    assert held_invoice_ids(db, [invoice.id], until + dt.timedelta(days=1)) == set()
    assert cases.check_commitments(db, until, POLICY).changed == 0
    assert cases.check_commitments(db, until + dt.timedelta(days=1), POLICY).broken == [case.id]
    assert case.kind is CaseKind.PROMISE
    assert "promise.broken" in _actions(db)


def test_a_promise_kept_settles(db: Session, company: Company) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, amount_minor=5_000)
    case = cases.promise_to_pay(
        db,
        customer,
        None,
        [invoice.id],
        promised_date=TODAY,
        today=TODAY,
        policy=POLICY,
        agreement=AGREED,
    )
    record_payment(
        db,
        customer,
        amount_minor=5_000,
        currency="EUR",
        method=PaymentMethod.CARD,
        provider="stripe",
        provider_reference="pi_2",
    )
    assert cases.check_commitments(db, TODAY, POLICY).completed == [case.id]
    assert case.status is CaseStatus.COMPLETED


def test_promise_dates_are_bounded(db: Session, company: Company) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer)
    for date, key in (
        (TODAY - dt.timedelta(days=1), CaseError.DATE_PAST),
        (TODAY + dt.timedelta(days=POLICY.promise_max_days + 1), CaseError.DATE_TOO_FAR),
    ):
        with pytest.raises(CaseError) as caught:
            cases.promise_to_pay(
                db,
                customer,
                None,
                [invoice.id],
                promised_date=date,
                today=TODAY,
                policy=POLICY,
                agreement=AGREED,
            )
        assert caught.value.key == key
