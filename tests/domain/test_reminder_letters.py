"""Letters: the address in the window of a DL envelope, the QR codes to the portal and to
pay (read back with pypdf and zxing), amounts as money; registered letters by hand (a task
and its tracking number) or through the postal provider's adapter."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.company.models import Company
from portal.customers.models import Customer
from portal.reminders import planning
from portal.reminders.models import Channel, MessageStatus, ReminderTask, TaskKind, TaskStatus
from portal.reminders.outbox import deliver_due, letter_file
from portal.reminders.policy import load_policy
from portal.reminders.scenarios import ScenarioBook, parse_scenarios
from portal.reminders.tasks import TaskError, complete_task
from portal.reminders.worker import calendar_for
from portal.settings import Settings
from portal.users.models import Role
from portal.users.service import create_user
from tests.factories import make_customer, make_invoice
from tests.reminders_helpers import at, context, messages, reminder_settings

MM = 72 / 25.4  # PDF points per millimetre


@pytest.fixture
def rs(settings: Settings, tmp_path: Path) -> Settings:
    return reminder_settings(settings, tmp_path)


def letter_book(template: str) -> ScenarioBook:
    return parse_scenarios(
        {
            "min_gap_days": 5,
            "segments": dict.fromkeys(("low", "medium", "high", "strategic"), "s"),
            "scenarios": {
                "s": {
                    "steps": [
                        {"key": "notice", "days": 1, "channel": "letter", "template": template}
                    ]
                }
            },
        }
    )


def send_letter(
    db: Session,
    company: Company,
    s: Settings,
    factory: sessionmaker[Session],
    template: str,
    **kw: Any,
) -> tuple[Customer, Any]:
    at("2026-03-10 10:00")
    customer = make_customer(
        db,
        company,
        name="Fenêtre & Cie",
        language="fr",
        address_line1="3 place du Marché",
        postcode="44000",
        city="Nantes",
    )
    make_invoice(db, customer, amount_minor=123_456, due_date=dt.date(2026, 3, 1), number="F-WIN-1")
    db.commit()
    planning.run(
        db,
        company.id,
        letter_book(template),
        calendar_for(s),
        policy=load_policy(db, company.id, s.reminders),
    )
    db.commit()
    deliver_due(factory, context(s, **kw), "letters")
    db.expire_all()
    [message] = messages(db, customer.id)
    return customer, message


def _codes(pdf: bytes) -> list[str]:
    found = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for image in page.images:
            picture = Image.open(io.BytesIO(image.data)).convert("L")
            found += [barcode.text for barcode in zxingcpp.read_barcodes(picture)]
    return found


def test_the_letter_carries_the_address_in_the_window_and_both_qr_codes(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    customer, message = send_letter(db, company, rs, session_factory, "formal_notice")
    assert (message.channel, message.status) == (Channel.LETTER, MessageStatus.SENT)
    pdf = letter_file(rs, message.id).read_bytes()
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    placed: dict[str, tuple[float, float]] = {}

    def visit(text: str, _cm: Any, tm: Any, _font: Any, _size: Any) -> None:
        if text.strip():
            placed[text.strip()] = (tm[4], tm[5])

    page.extract_text(visitor_text=visit)
    height = float(page.mediabox.height)
    for line in ("Fenêtre & Cie", "3 place du Marché", "44000 Nantes"):
        x, y = placed[line]
        assert x >= 105 * MM, line  # the right-hand window of a DL envelope
        assert 40 * MM <= height - y <= 95 * MM, line
    text = page.extract_text()
    assert re.search(r"1\s234,56", text)  # money, never cents
    assert re.search(r"F-WIN-1: 1\s234,56\s€", message.body_text or "")
    codes = _codes(pdf)
    assert len(codes) == 2
    [portal] = [code for code in codes if "/l/" in code]
    assert portal.startswith("http://testserver/l/")
    [payment] = [code for code in codes if code.startswith("BCD")]
    lines = payment.split("\n")
    assert lines[:4] == ["BCD", "002", "1", "SCT"]
    assert "FR7630006000011234567890189" in lines
    assert any(line.startswith("EUR1234.56") or line.startswith("EUR12") for line in lines)
    assert "F-WIN-1" in payment
    assert customer.name in text


def test_a_registered_letter_by_hand_waits_for_its_tracking_number(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    customer, message = send_letter(db, company, rs, session_factory, "formal_notice_registered")
    assert message.status is MessageStatus.SENT
    text = PdfReader(io.BytesIO(letter_file(rs, message.id).read_bytes())).pages[0].extract_text()
    assert "recommandée" in text.lower() or "Registered letter" in text
    [task] = db.scalars(select(ReminderTask).where(ReminderTask.customer_id == customer.id))
    assert (task.kind, task.status) == (TaskKind.POST_LETTER, TaskStatus.OPEN)
    user = create_user(db, "post@relance.example", Role.CREDIT_MANAGER, "a-long-password-1")
    with pytest.raises(TaskError) as refused:
        complete_task(db, company.id, task.id, user_id=user.id, note="")
    assert refused.value.key == "tracking_required"
    complete_task(
        db, company.id, task.id, user_id=user.id, note="", tracking_number="1A 234 567 8901 2"
    )
    assert task.tracking_number == "1A 234 567 8901 2"
    # The open letter task holds nothing back: it is not a call step.
    assert task.kind is not TaskKind.STEP


def test_a_registered_letter_through_the_provider_records_its_tracking_number(
    db: Session, company: Company, rs: Settings, session_factory: sessionmaker[Session]
) -> None:
    by_provider = dataclasses.replace(
        rs, reminders=dataclasses.replace(rs.reminders, registered_letters="local")
    )
    customer, message = send_letter(
        db, company, by_provider, session_factory, "formal_notice_registered"
    )
    assert message.status is MessageStatus.SENT
    assert message.external_id == f"LOCAL-REMINDER-{message.id}"
    posted = by_provider.reminders.letters_dir / "registered" / f"reminder-{message.id}.pdf"
    assert posted.read_bytes()[:4] == b"%PDF"
    assert (
        db.scalars(select(ReminderTask).where(ReminderTask.customer_id == customer.id)).all() == []
    )
