"""No stored code on a screen: every kind of timeline event is a translated sentence.

The kinds are found in the source (every ``area.verb`` string the code records), so a new
kind without its sentence in portal/timeline/sentences.py fails here.
"""

from __future__ import annotations

import ast
import re

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal import i18n
from portal.company.models import Company
from portal.settings import PROJECT_ROOT
from portal.timeline import service as timeline
from portal.timeline.models import Actor
from portal.timeline.sentences import SENTENCES, describe
from portal.users.models import Role
from portal.webhooks.events import EVENT_TYPES
from tests.factories import make_customer
from tests.web.embed_helpers import log_in, make_staff

AREAS = [
    "api_key",
    "bank_line",
    "branding",
    "case",
    "contact",
    "credit_note",
    "customer",
    "dispute",
    "embed",
    "invoice",
    "link",
    "note",
    "payment",
    "payment_request",
    "plan",
    "portal",
    "promise",
    "reminder",
    "reminders",
    "transfer",
    "user",
    "webhook",
]
KIND = re.compile(rf"^(?:{'|'.join(AREAS)})\.[a-z_]*[a-z]$")
NOT_KINDS = {"embed.js"}  # the widget's file name
# Outgoing webhook types (portal.webhooks.events) are not timeline kinds, unless the
# timeline also records one of them.
WEBHOOK_ONLY = set(EVENT_TYPES) - {"payment.refunded", "transfer.declared", "dispute.opened"}
WEBHOOK_ONLY -= {"plan.proposed", "plan.accepted", "plan.broken", "promise.made"}
WEBHOOK_ONLY -= {"promise.broken", "reminder.sent", "reminder.failed", "link.opened"}
# Kinds the code builds from parts (f-strings and lookups).
BUILT = {
    "invoice.credited",  # cases.service.decide_dispute
    "invoice.adjusted",
    "plan.instalment_due_reminded",  # cases.instalment_reminders
    "plan.instalment_overdue_reminded",
    "invoice.pdf_attached",  # invoices.pdf_files
    "credit_note.pdf_attached",
}

DETAILS = {
    "number": "F-2026-0042",
    "amount_minor": 54960,
    "amount_after_minor": 12000,
    "currency": "EUR",
    "invoices": ["F-2026-0042", "F-2026-0043"],
    "to": "compta@example.com",
    "email": "anne@example.com",
    "name": "Anne Martin",
    "channel": "letter",
    "method": "transfer",
    "send_after": "2026-09-28T07:00:00+00:00",
    "next_attempt_at": "2026-09-28T07:00:00+00:00",
    "paid_on": "2026-09-27",
    "received_on": "2026-09-29",
    "booked_on": "2026-09-29",
    "due_date": "2026-10-15",
    "promised_date": "2026-10-20",
    "until": "2026-10-01",
    "locked_until": "2026-10-01T10:00:00+00:00",
    "instalment": 2,
    "outcome": "credit",
    "reason": "nothing_due",
    "note": "Avoir émis",
    "text": "Rappelé le client",
    "enabled": True,
}


def recorded_kinds() -> set[str]:
    kinds = set(BUILT)
    for path in (PROJECT_ROOT / "portal").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
            if is_text and KIND.match(node.value):
                kinds.add(node.value)
    return kinds - WEBHOOK_ONLY - NOT_KINDS


def test_every_kind_the_code_records_has_a_sentence() -> None:
    kinds = recorded_kinds()
    assert "reminder.queued" in kinds  # the walk finds what it should
    assert "payment_request.created" in kinds
    missing = sorted(kinds - set(SENTENCES))
    assert not missing, f"timeline kinds without a sentence: {missing}"


def test_the_walk_finds_the_kinds_it_lists() -> None:
    """BUILT names kinds that exist: a renamed one fails here rather than hiding."""
    stale = sorted(set(SENTENCES) - recorded_kinds())
    assert not stale, f"sentences for kinds nothing records: {stale}"


@pytest.mark.parametrize("kind", sorted(SENTENCES))
def test_each_sentence_is_translated_and_shows_no_code(kind: str) -> None:
    said: dict[str, str] = {}
    for language in ("en", "fr"):
        token = i18n.current_locale.set(language)
        try:
            said[language] = describe(kind, DETAILS)
        finally:
            i18n.current_locale.reset(token)
    for language, text in said.items():
        assert text.strip(), kind
        assert kind not in text, (language, text)
        assert "%(" not in text, (language, text)
        assert "_minor" not in text, (language, text)
        assert "54960" not in text, (language, text)  # an amount in cents
    assert said["fr"] != said["en"], said


def test_the_customer_timeline_shows_sentences_not_codes(
    client: TestClient, db: Session, company: Company
) -> None:
    customer = make_customer(db, company)
    for kind in sorted(SENTENCES):
        timeline.record(
            db,
            company_id=company.id,
            customer_id=customer.id,
            action=kind,
            actor=Actor.SYSTEM,
            details=DETAILS,
        )
    db.commit()
    log_in(client, make_staff(db, Role.CREDIT_MANAGER))
    for language in ("fr", "en"):
        client.cookies.set("relance_lang", language)
        page = client.get(f"/admin/customers/{customer.id}")
        assert page.status_code == 200
        section = page.text.split('id="timeline-title"')[1]
        shown = [kind for kind in SENTENCES if kind in section]
        assert not shown, (language, shown)
        assert "Relance par courrier" in section or language == "en"
        assert "549,60" in section or "549.60" in section
