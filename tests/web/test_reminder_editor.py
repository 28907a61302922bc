"""The reminder editor by role: credit managers and admins change scenarios and message
texts, viewers read; refused changes say why next to the field and save nothing; the TOML
export reads back; previews use a real customer; a test email leaves after the commit."""

from __future__ import annotations

import re
from email import message_from_bytes
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.company.models import Company
from portal.customers.models import Customer, RiskSegment
from portal.reminders.editor.models import MessageTextVersion, ScenarioVersion
from portal.reminders.editor.texts import load_custom_texts
from portal.reminders.models import Channel
from portal.users.models import Role
from tests.factories import make_customer, make_invoice
from tests.web.embed_helpers import cheap_hashing, log_in, make_staff

__all__ = ["cheap_hashing"]
pytestmark = pytest.mark.usefixtures("cheap_hashing")

STEP = "/admin/scenarios/standard/steps/overdue-8"
TEXT = "/admin/messages/email/reminder_overdue/en"


def _as(client: TestClient, db: Session, role: Role) -> TestClient:
    log_in(client, make_staff(db, role))
    client.headers["Accept-Language"] = "en"
    return client


def _versions(db: Session) -> list[ScenarioVersion]:
    db.expire_all()
    return list(db.scalars(select(ScenarioVersion).order_by(ScenarioVersion.number)))


def _step(days: int | str, channel: str = "sms", template: str = "reminder_overdue", **more: str):  # type: ignore[no-untyped-def]
    return {"version": "0", "days": str(days), "channel": channel, "template": template} | more


def _customer(db: Session, company: Company) -> Customer:
    customer = make_customer(db, company, name="Dupont & Fils", risk_segment=RiskSegment.MEDIUM)
    make_invoice(db, customer, due_in_days=-3, amount_minor=45_600)
    db.commit()
    return customer


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.CREDIT_MANAGER])
def test_editors_change_a_step_and_a_new_version_records_who(
    client: TestClient, db: Session, role: Role
) -> None:
    _as(client, db, role)
    response = client.post(
        STEP, data=_step(10, segments="high", min_amount="1 000", currency="eur")
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"].endswith("?done=saved#step-overdue-8")
    [version] = _versions(db)
    step = version.document["scenarios"]["standard"]["steps"][2]
    assert step == {
        "key": "overdue-8",
        "days": 10,
        "channel": "sms",
        "template": "reminder_overdue",
        "segments": ["high"],
        "min_amount_minor": 100_000,
        "currency": "EUR",
    }
    assert version.author.startswith("embed")
    page = client.get("/admin/scenarios/history")
    assert "Changed the step standard/overdue-8" in page.text
    assert version.author in page.text


def test_viewers_read_but_change_nothing(client: TestClient, db: Session) -> None:
    _as(client, db, Role.VIEWER)
    assert client.get("/admin/scenarios").status_code == 200
    page = client.get("/admin/scenarios/standard")
    assert page.status_code == 200
    assert "Save this step" not in page.text
    assert client.post(STEP, data=_step(10)).status_code == 403
    assert client.post("/admin/scenarios/settings", data={"min_gap_days": "1"}).status_code == 403
    assert client.get(TEXT).status_code == 200
    assert client.post(TEXT, data={"action": "save", "body": "x"}).status_code == 403
    assert _versions(db) == []


def test_logged_out_visitors_go_to_the_login(client: TestClient) -> None:
    response = client.get("/admin/scenarios")
    assert response.status_code == 303
    assert "/admin/login" in response.headers["location"]


@pytest.mark.parametrize(
    ("data", "field_id", "message"),
    [
        (_step(1), "s3-days", "Another step (overdue-1) is on the same day"),
        (_step(3), "s3-days", None),  # two days after day 1: only held back by the gap
        (_step(8, channel="letter"), "s3-template", "There is no message reminder_overdue"),
        (_step("soon"), "s3-days", "Enter a whole number of days"),
        (_step(8, min_amount="lots", currency="EUR"), "s3-min", "Enter an amount"),
        (_step(8, min_amount="10"), "s3-currency", "Give the currency"),
        (_step(999), "s3-days", "Enter a number of days between -90 and 365"),
    ],
)
def test_refused_steps_say_why_next_to_the_field_and_save_nothing(
    client: TestClient, db: Session, data: dict[str, str], field_id: str, message: str | None
) -> None:
    _as(client, db, Role.CREDIT_MANAGER)
    response = client.post(STEP, data=data)
    if message is None:  # day 3: two days after day 1, only delayed by the gap
        assert response.status_code == 303
        page = client.get("/admin/scenarios/standard").text
        assert "goes out on day 6 at the earliest" in page
        return
    assert response.status_code == 400
    text = _flat(response.text)
    assert re.search(rf'id="{field_id}"[^>]*aria-invalid="true"', text), field_id
    assert f'<p class="field-error" id="{field_id}-error">{message}' in text
    assert _versions(db) == []


def test_a_gap_that_makes_a_step_impossible_is_refused(client: TestClient, db: Session) -> None:
    _as(client, db, Role.CREDIT_MANAGER)
    call = client.post("/admin/scenarios/standard/steps/call-15", data=_step(4, "task", "call"))
    assert call.status_code == 303
    # The SMS on day 3 would wait for day 6 (five days after day 1): the call on day 4 wins.
    refused = client.post(STEP, data=_step(3) | {"version": "1"})
    assert refused.status_code == 400
    text = _flat(refused.text)
    assert "This step comes 2 days after overdue-1" in text
    assert "one customer gets at most one message every 5 days" in text
    settings = client.post("/admin/scenarios/settings", data={
        "version": "1", "min_gap_days": "16", "segment_low": "standard",
        "segment_medium": "standard", "segment_high": "firm", "segment_strategic": "strategic",
    })  # fmt: skip
    assert settings.status_code == 400
    assert 'id="f-min_gap_days-error"' in settings.text
    assert len(_versions(db)) == 1


def test_steps_move_without_javascript_and_a_stale_form_is_refused(
    client: TestClient, db: Session
) -> None:
    _as(client, db, Role.CREDIT_MANAGER)
    assert client.post(STEP, data={"version": "0", "action": "up"}).status_code == 303
    steps = _versions(db)[-1].document["scenarios"]["standard"]["steps"]
    assert [(s["key"], s["days"]) for s in steps[1:3]] == [("overdue-8", 1), ("overdue-1", 8)]
    stale = client.post(STEP, data={"version": "0", "action": "down"})
    assert stale.status_code == 409
    assert "Someone saved another change meanwhile" in _flat(stale.text)
    assert client.post(STEP, data={"version": "1", "action": "remove"}).status_code == 303
    assert len(_versions(db)[-1].document["scenarios"]["standard"]["steps"]) == 4


def test_scenarios_are_added_renamed_and_removed_unless_in_use(
    client: TestClient, db: Session
) -> None:
    _as(client, db, Role.ADMIN)
    created = client.post(
        "/admin/scenarios/new",
        data={"version": "0", "name": "key-accounts", "label": "Key accounts", "copy_of": "firm"},
    )
    assert created.status_code == 303
    assert client.get("/admin/scenarios/key-accounts").status_code == 200
    taken = client.post(
        "/admin/scenarios/new",
        data={"version": "1", "name": "history", "label": "X", "copy_of": "firm"},
    )
    assert taken.status_code == 400
    assert "exists already" in taken.text
    in_use = client.post("/admin/scenarios/firm", data={"version": "1", "action": "remove"})
    assert in_use.status_code == 400
    assert "Segments follow this scenario (High risk)" in _flat(in_use.text)
    removed = client.post(
        "/admin/scenarios/key-accounts", data={"version": "1", "action": "remove"}
    )
    assert removed.status_code == 303
    assert "key-accounts" not in _versions(db)[-1].document["scenarios"]


def test_the_exported_toml_imports_back_and_a_bad_file_changes_nothing(
    client: TestClient, db: Session
) -> None:
    _as(client, db, Role.CREDIT_MANAGER)
    client.post(STEP, data=_step(9, segments="strategic"))
    exported = client.get("/admin/scenarios/export.toml")
    assert exported.headers["content-disposition"] == 'attachment; filename="scenarios.toml"'
    assert 'segments = ["strategic"]' in exported.text
    bad = exported.text.replace('template = "call"', 'template = "fax"', 1)
    refused = client.post(
        "/admin/scenarios/import", data={"version": "1"}, files={"file": ("s.toml", bad.encode())}
    )
    assert refused.status_code == 400
    assert "There is no message fax" in refused.text
    imported = client.post(
        "/admin/scenarios/import",
        data={"version": "1"},
        files={"file": ("s.toml", exported.text.encode())},
    )
    assert imported.status_code == 303
    first, second = _versions(db)
    assert (second.change, second.subject) == ("imported", "s.toml")
    assert second.document == first.document
    old = client.get("/admin/scenarios/history/1.toml")
    assert old.text.startswith("# Relance reminder scenarios, version 1\n")


def test_the_dates_preview_uses_a_real_customer(
    client: TestClient, db: Session, company: Company
) -> None:
    customer = _customer(db, company)
    _as(client, db, Role.VIEWER)
    page = client.get(f"/admin/scenarios/firm?customer={customer.id}")
    text = _flat(page.text)
    assert "If Dupont &amp; Fils paid nothing, with this scenario" in text
    assert "day +5" in text
    fragment = client.get(
        f"/admin/scenarios/firm?customer={customer.id}", headers={"HX-Request": "true"}
    )
    assert fragment.text.lstrip().startswith('<section class="card" id="dates"')


# --- message texts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("Hello {{ customer }}", "Unknown placeholder: customer."),
        ("{{ ''.__class__ }}", "“__class__” is refused"),
        ("{{ portal_link.__init__.__globals__ }}", "“__globals__” is refused"),
        ("{{ cycler.__init__ }}", "refused"),
        ("{% include 'base.html' %}", "This construct is refused"),
        ("{{ loop.index }}", "This text fails when filled in"),
        ("{{ invoice_count + customer_name }}", "This text fails when filled in"),
    ],
)
def test_unknown_placeholders_and_escape_attempts_are_refused_at_save(
    client: TestClient, db: Session, company: Company, body: str, message: str
) -> None:
    _as(client, db, Role.CREDIT_MANAGER)
    response = client.post(TEXT, data={"action": "save", "subject": "Hi", "body": body})
    assert response.status_code == 400
    assert message in response.text.replace("&#34;", '"').replace("&#39;", "'")
    assert 'id="f-body" ' in response.text
    assert db.scalars(select(MessageTextVersion)).all() == []


def test_a_text_is_previewed_saved_used_and_back_to_the_default(
    client: TestClient, db: Session, company: Company
) -> None:
    customer = _customer(db, company)
    _as(client, db, Role.CREDIT_MANAGER)
    data = {
        "customer": str(customer.id),
        "subject": "{{ invoice_count }} unpaid for {{ customer_name }}",
        "body": "Dear {{ greeting_name }},\n\n{{ invoices_table }}\n\nTotal: {{ total_due }}",
    }
    live = client.post(f"{TEXT}/preview", data=data, headers={"HX-Request": "true"})
    assert live.text.lstrip().startswith('<section class="card" id="preview"')
    assert "1 unpaid for Dupont &amp; Fils" in live.text
    assert "€456.00" in live.text
    plain = client.post(TEXT, data=data | {"action": "preview"})  # the button, without JS
    assert plain.status_code == 200
    assert "<table" in plain.text
    assert client.post(TEXT, data=data | {"action": "save"}).status_code == 303
    custom = load_custom_texts(db, company.id).find(Channel.EMAIL, "reminder_overdue", "en")
    assert custom is not None
    assert custom.subject == data["subject"]
    assert client.post(TEXT, data={"action": "default"}).status_code == 303
    db.expire_all()
    assert load_custom_texts(db, company.id).find(Channel.EMAIL, "reminder_overdue", "en") is None
    assert "Default" in client.get("/admin/messages").text


def test_send_a_test_to_me_mails_the_logged_in_user(
    client: TestClient, db: Session, company: Company, tmp_path: Path
) -> None:
    customer = _customer(db, company)
    user = make_staff(db, Role.CREDIT_MANAGER)
    log_in(client, user)
    spool = client.app.state.mailer.spool_dir = tmp_path  # type: ignore[attr-defined]
    response = client.post(
        TEXT,
        data={
            "action": "test",
            "customer": str(customer.id),
            "subject": "Hello {{ customer_name }}",
            "body": "<script>x</script> {{ portal_link }}",
        },
    )
    assert response.status_code == 303
    mails = [message_from_bytes(path.read_bytes()) for path in spool.glob("*.eml")]
    [mail] = mails
    assert mail["To"] == user.email
    assert mail["Subject"] == "[Test] Hello Dupont & Fils"
    html = mail.get_payload()[1].get_payload(decode=True).decode()
    assert "&lt;script&gt;" in html
    assert "<script>" not in html
    assert db.scalars(select(MessageTextVersion)).all() == []  # a test saves nothing


def test_the_sms_counter_shows_characters_and_segments(
    client: TestClient, db: Session, company: Company
) -> None:
    customer = _customer(db, company)
    _as(client, db, Role.ADMIN)
    body = "{{ company_name }} " + "ê" * 80
    page = client.post(
        "/admin/messages/sms/reminder_overdue/fr/preview",
        data={"customer": str(customer.id), "body": body},
    )
    text = _flat(page.text)
    assert re.search(r"Characters: \d+ \(UCS-2\), SMS: 2", text)
    assert "they are replaced when sent" in text
