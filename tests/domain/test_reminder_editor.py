"""The reminder editor without HTTP: scenario versions that the next plan follows, the
checks that name the field at fault, step conditions, the TOML round trip, the dates
preview, and message texts in Jinja's sandbox used by delivery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.company.models import Company
from portal.customers.models import RiskSegment
from portal.reminders import planning
from portal.reminders.editor import edits
from portal.reminders.editor.dates import open_invoices, planned_dates, scenario_of
from portal.reminders.editor.document import (
    InvalidDocument,
    check,
    delays,
    from_toml,
    to_toml,
)
from portal.reminders.editor.rendering import CustomText
from portal.reminders.editor.sandbox import count_sms, problems
from portal.reminders.editor.texts import (
    InvalidText,
    load_custom_texts,
    sample_content,
    save_text,
    starter,
)
from portal.reminders.editor.versions import (
    Author,
    VersionConflict,
    current,
    history,
    save,
    seed,
    stored_book,
)
from portal.reminders.models import Channel, MessageStatus
from portal.reminders.outbox import deliver_due
from portal.reminders.worker import calendar_for
from portal.settings import Settings
from portal.templating import make_environment
from portal.timeline.models import TimelineEvent
from tests.factories import make_customer, make_invoice
from tests.reminders_helpers import at, book, context, messages, reminder_settings

EDITOR = Author("credit@example.com")


@pytest.fixture
def rs(settings: Settings, tmp_path: Path) -> Settings:
    return reminder_settings(settings, tmp_path)


def _plan(db: Session, company: Company, rs: Settings) -> list[planning.PlannedMessage]:
    db.flush()
    scenarios = stored_book(db, company.id, book(rs))
    return [m for page in planning.plan(db, company.id, scenarios, calendar_for(rs)) for m in page]


def _save(db: Session, company: Company, rs: Settings, document: dict[str, Any]) -> int:
    number = current(db, company.id, rs.reminders.scenarios_file).number
    return save(
        db, company.id, document, based_on=number, author=EDITOR, change="step_changed"
    ).number


def _fields(step: dict[str, Any], **changes: Any) -> edits.StepFields:
    values = {k: step[k] for k in ("days", "channel", "template")} | changes
    return edits.StepFields(**values)


def test_editing_a_scenario_changes_the_next_plan(
    db: Session, company: Company, rs: Settings
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company, risk_segment=RiskSegment.MEDIUM)
    make_invoice(db, customer, due_in_days=-3)
    [before] = _plan(db, company, rs)
    assert (before.step.key, before.step.channel) == ("overdue-1", Channel.EMAIL)

    document = current(db, company.id, rs.reminders.scenarios_file).document
    step = document["scenarios"]["standard"]["steps"][1]
    changed = edits.change_step(
        document, "standard", "overdue-1", _fields(step, days=2, channel="sms")
    )
    assert _save(db, company, rs, changed) == 1
    [after] = _plan(db, company, rs)
    assert (after.step.key, after.step.channel, after.step.days) == ("overdue-1", Channel.SMS, 2)

    later = edits.change_step(changed, "standard", "overdue-1", _fields(step, days=4))
    assert _save(db, company, rs, later) == 2
    [waiting] = _plan(db, company, rs)  # three days late: the first step now waits for day 4
    assert waiting.step.key == "courtesy"


def test_every_version_is_kept_with_who_and_when_and_a_stale_form_is_refused(
    db: Session, company: Company, rs: Settings
) -> None:
    at("2026-03-10 10:00")
    assert seed(db, company.id, rs.reminders.scenarios_file)
    assert not seed(db, company.id, rs.reminders.scenarios_file)
    document = current(db, company.id, rs.reminders.scenarios_file).document
    renamed = edits.rename_scenario(document, "firm", "Firm and fast")
    version = save(
        db,
        company.id,
        renamed,
        based_on=1,
        author=EDITOR,
        change="scenario_renamed",
        subject="firm",
    )
    with pytest.raises(VersionConflict):
        save(db, company.id, document, based_on=1, author=EDITOR, change="settings")
    rows = history(db, company.id)
    assert [(r.number, r.change, r.author) for r in rows] == [
        (2, "scenario_renamed", "credit@example.com"),
        (1, "seeded", "system"),
    ]
    assert rows[0].created_at == version.created_at
    assert rows[1].document["scenarios"]["firm"]["label"] != "Firm and fast"
    event = db.scalars(
        select(TimelineEvent).where(TimelineEvent.action == "reminders.scenarios_changed")
    ).all()[-1]
    assert event.details == {"change": "scenario_renamed", "subject": "firm"}


@pytest.mark.parametrize(
    ("change", "where", "field", "reason"),
    [
        (lambda s: s[2].update(days=1), "overdue-8", "days", "same_day"),
        (lambda s: s[2].update(days=3) or s[3].update(days=6), "overdue-8", "days", "gap"),
        (lambda s: s[1].update(template="nope"), "overdue-1", "template", "unknown_template"),
        (lambda s: s[0].update(days=-400), "courtesy", "days", "days_range"),
        (lambda s: s[0].update(segments=["vip"]), "courtesy", "segments", "segments"),
        (lambda s: s[0].update(min_amount_minor=100), "courtesy", "currency", "currency"),
        (lambda s: s.clear(), "standard", "steps", "no_steps"),
    ],
)
def test_checks_name_the_step_and_field_at_fault(
    rs: Settings, change: Any, where: str, field: str, reason: str
) -> None:
    from portal.reminders.editor.versions import read_file

    document = read_file(rs.reminders.scenarios_file)
    assert check(document) == []
    change(document["scenarios"]["standard"]["steps"])
    found = check(document)
    assert (found[0].where, found[0].field, found[0].reason) == (where, field, reason)


def test_a_step_the_gap_only_delays_is_allowed_and_said(rs: Settings) -> None:
    from portal.reminders.editor.versions import read_file

    document = read_file(rs.reminders.scenarios_file)
    document["scenarios"]["standard"]["steps"][3]["days"] = 9  # the call, a day after the SMS
    assert check(document) == []
    [delayed] = [p for p in delays(document) if p.where == "overdue-5"]  # firm: days 1 and 5
    assert delayed.values == {"other": "overdue-1", "on": 6}


def test_moving_a_step_swaps_days_and_keeps_keys(rs: Settings) -> None:
    from portal.reminders.editor.versions import read_file

    document = read_file(rs.reminders.scenarios_file)
    moved = edits.move_step(document, "standard", "overdue-8", -1)
    steps = moved["scenarios"]["standard"]["steps"]
    assert [(s["key"], s["days"], s["channel"]) for s in steps[1:3]] == [
        ("overdue-8", 1, "sms"),
        ("overdue-1", 8, "email"),
    ]
    assert check(moved) == []
    with pytest.raises(InvalidDocument) as refused:
        edits.remove_scenario(moved, "firm", customers_using=0)
    assert refused.value.problems[0].reason == "used_by_segment"


def test_the_toml_export_reads_back_as_the_same_scenarios(rs: Settings) -> None:
    from portal.reminders.editor.versions import read_file

    document = read_file(rs.reminders.scenarios_file)
    document["scenarios"]["firm"]["steps"][1].update(
        segments=["high"], min_amount_minor=50_000, currency="EUR"
    )
    document["scenarios"]["firm"]["label"] = 'Firm "quoted" é'
    assert from_toml(to_toml(document, "exported")) == document
    with pytest.raises(InvalidDocument) as refused:
        from_toml(to_toml(document).replace('template = "call"', 'template = "fax"', 1))
    assert refused.value.problems[0].reason == "unknown_template"
    with pytest.raises(InvalidDocument):
        from_toml("min_gap_days = [")


def test_a_condition_on_segment_or_amount_skips_the_step_for_others(
    db: Session, company: Company, rs: Settings
) -> None:
    at("2026-03-10 10:00")
    small = make_customer(db, company, risk_segment=RiskSegment.MEDIUM)
    make_invoice(db, small, due_in_days=-2, amount_minor=10_000)
    large = make_customer(db, company, risk_segment=RiskSegment.MEDIUM)
    make_invoice(db, large, due_in_days=-2, amount_minor=90_000)
    document = current(db, company.id, rs.reminders.scenarios_file).document
    step = document["scenarios"]["standard"]["steps"][1]
    changed = edits.change_step(
        document,
        "standard",
        "overdue-1",
        _fields(step, min_amount_minor=50_000, currency="EUR", segments=("medium",)),
    )
    _save(db, company, rs, changed)
    planned = {m.customer_id: m.step.key for m in _plan(db, company, rs)}
    assert planned == {small.id: "courtesy", large.id: "overdue-1"}


def test_the_dates_preview_follows_steps_and_the_minimum_gap(
    db: Session, company: Company, rs: Settings
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company, risk_segment=RiskSegment.MEDIUM)
    make_invoice(db, customer, due_in_days=3)
    scenarios = book(rs)
    dates = planned_dates(
        scenario_of(scenarios, customer),
        scenarios.min_gap_days,
        customer,
        open_invoices(db, customer),
    )
    assert [(d.on.isoformat(), d.step.key) for d in dates] == [
        ("2026-03-10", "courtesy"),  # due in 3 days: the courtesy step (-5) has passed
        ("2026-03-15", "overdue-1"),  # due on the 13th, held back by the 5-day gap
        ("2026-03-21", "overdue-8"),
        ("2026-03-28", "call-15"),
        ("2026-04-12", "formal-notice-30"),
    ]


# --- message texts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("Hello {{ customer }}", "unknown"),
        ("{{ ''.__class__ }}", "attribute"),
        ("{{ invoices.__class__.__mro__ }}", "attribute"),
        ("{% for i in invoices %}{{ i._private }}{% endfor %}", "attribute"),
        ("{{ portal_link.upper() }}", "forbidden"),
        ("{{ customer_name|attr('__class__') }}", "filter"),
        ("{% include 'email/fresh_link/body.txt' %}", "forbidden"),
        ("{{ self }}", "unknown"),
        ("{{ range(10) }}", "forbidden"),
        ("{% if %}", "syntax"),
    ],
)
def test_unknown_placeholders_and_escape_attempts_are_refused(source: str, reason: str) -> None:
    assert problems(source)[0].reason == reason


def test_the_starters_and_loops_over_invoices_are_accepted() -> None:
    for channel in (Channel.EMAIL, Channel.SMS):
        for language in ("fr", "en"):
            text = starter(channel, "reminder_overdue", language)
            assert problems(text.body) == []
            assert problems(text.subject) == []
    loop = "{% for i in invoices %}{{ loop.index }}. {{ i.number }} {{ i.amount }}{% endfor %}"
    assert problems(loop) == []


def test_a_saved_text_is_escaped_in_html_and_used_by_delivery(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company, name="<b>Evil & Co</b>", language="en")
    invoice = make_invoice(db, customer, due_in_days=-2, amount_minor=12_345)
    body = "Dear {{ greeting_name }}, <i>pay</i>:\n\n{{ invoices_table }}\n\n{{ portal_link }}"
    with pytest.raises(InvalidText) as refused:
        save_text(
            db, company.id, Channel.EMAIL, "reminder_overdue", "en",
            subject="{{ nope }}", body=body, author=EDITOR,
        )  # fmt: skip
    assert set(refused.value.problems) == {"subject"}
    save_text(
        db, company.id, Channel.EMAIL, "reminder_overdue", "en",
        subject="{{ invoice_count }} for {{ customer_name }}", body=body, author=EDITOR,
    )  # fmt: skip
    content = sample_content(db, rs, customer)
    custom = load_custom_texts(db, company.id).find(Channel.EMAIL, "reminder_overdue", "en")
    assert custom is not None
    email = custom.email(make_environment(), content, rs.company)
    assert "<b>" not in email.html
    assert "&lt;i&gt;pay&lt;/i&gt;" in email.html
    assert invoice.number in email.html
    assert "<table" in email.html
    assert email.subject == "1 for <b>Evil & Co</b>"

    planning.run(db, company.id, book(rs), calendar_for(rs))
    db.commit()
    assert deliver_due(session_factory, _with_texts(rs, session_factory, company), "w") == 1
    [message] = messages(db, customer.id)
    db.refresh(message)
    assert message.status is MessageStatus.SENT
    assert message.subject == "1 for <b>Evil & Co</b>"
    assert (message.body_text or "").startswith("Dear Contact")
    assert "€123.45" in (message.body_text or "")


def _with_texts(rs: Settings, factory: sessionmaker[Session], company: Company) -> Any:
    ctx = context(rs)
    with factory() as session:
        ctx.custom_texts = load_custom_texts(session, company.id)
    return ctx


def test_back_to_the_default_uses_the_template_files_again(db: Session, company: Company) -> None:
    save_text(
        db, company.id, Channel.SMS, "reminder_overdue", "fr",
        subject="", body="{{ company_name }} {{ portal_link }}", author=EDITOR,
    )  # fmt: skip
    assert load_custom_texts(db, company.id).find(Channel.SMS, "reminder_overdue", "fr")
    save_text(
        db, company.id, Channel.SMS, "reminder_overdue", "fr",
        subject="", body="", author=EDITOR, is_default=True,
    )  # fmt: skip
    assert load_custom_texts(db, company.id).find(Channel.SMS, "reminder_overdue", "fr") is None


def test_the_sms_counter_knows_gsm7_and_ucs2() -> None:
    assert count_sms("a" * 160).segments == 1
    assert (count_sms("a" * 161).segments, count_sms("a" * 161).encoding) == (2, "GSM-7")
    assert count_sms("€" * 80).characters == 160  # an extended character takes two septets
    ucs = count_sms("ê" * 71)
    assert (ucs.encoding, ucs.characters, ucs.segments) == ("UCS-2", 71, 2)
    assert (ucs.sent_characters, ucs.sent_segments) == (71, 1)  # sent as "e"


def test_an_sms_text_over_160_characters_shortens_the_company_name_then_fails(
    db: Session, company: Company, rs: Settings
) -> None:
    at("2026-03-10 10:00")
    customer = make_customer(db, company)
    make_invoice(db, customer, due_in_days=-2)
    content = sample_content(db, rs, customer)
    text = CustomText("", "{{ company_name }} " + "x" * 140).sms(content, rs.company)
    assert len(text) <= 160
    from portal.reminders.render import RenderError

    with pytest.raises(RenderError):
        CustomText("", "y" * 170).sms(content, rs.company)


def test_the_command_line_exports_imports_and_seeds_with_the_same_checks(
    db: Session,
    company: Company,
    rs: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    from portal.reminders.editor import terminal

    db.commit()
    assert terminal.seed_default(session_factory, rs, company.id) == 0
    exported = tmp_path / "scenarios.toml"
    assert terminal.export(session_factory, rs, company.id, str(exported)) == 0
    assert exported.read_text().startswith("# Reminder scenarios, version 1\n")
    bad = tmp_path / "bad.toml"
    bad.write_text(exported.read_text().replace("days = 30", "days = 15"))
    with pytest.raises(SystemExit, match="same_day"):
        terminal.import_file(session_factory, rs, company.id, bad)
    assert terminal.import_file(session_factory, rs, company.id, exported) == 0
    db.expire_all()
    rows = history(db, company.id)
    assert [(r.number, r.change, r.author) for r in rows] == [
        (2, "imported", "command-line"),
        (1, "seeded", "system"),
    ]
    assert rows[0].document == rows[1].document


def test_the_worker_plans_with_the_version_saved_in_the_editor(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    from portal.reminders.worker import run_if_due

    at("2026-03-10 07:00")
    customer = make_customer(db, company, risk_segment=RiskSegment.MEDIUM)
    make_invoice(db, customer, due_in_days=-2)
    document = current(db, company.id, rs.reminders.scenarios_file).document
    step = document["scenarios"]["standard"]["steps"][1]
    _save(
        db,
        company,
        rs,
        edits.change_step(document, "standard", "overdue-1", _fields(step, channel="sms")),
    )
    db.commit()
    result = run_if_due(session_factory, company.id, rs, book(rs))  # the file says email
    assert result is not None
    assert result.enqueued == 1
    [message] = messages(db, customer.id)
    assert (message.step, message.channel) == ("overdue-1", Channel.SMS)
