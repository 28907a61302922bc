"""Cases through the API (read, reject a dispute, refuse what the back office would refuse),
and the invoice actions: cancel, credit note."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.cases import service as cases
from portal.company.models import Company
from portal.customers.models import Customer
from portal.invoices.models import Invoice
from portal.timeline.models import TimelineEvent
from tests.web.api_helpers import customer_body, invoice_body

PREFIX = "/api/v1"


def test_a_dispute_is_read_and_rejected_through_the_api(
    api: TestClient, db: Session, company: Company
) -> None:
    customer_id = api.post(
        f"{PREFIX}/customers",
        json=customer_body(contacts=[{"name": "Ana", "email": "ana@client.example"}]),
    ).json()["customer"]["id"]
    invoice_id = api.post(f"{PREFIX}/invoices", json=invoice_body("F-D1")).json()["invoice"]["id"]
    customer = db.get(Customer, customer_id)
    assert customer is not None
    case = cases.open_dispute(
        db, customer, None, [invoice_id], reason="wrong_amount", message="The price was 80."
    )
    db.commit()
    listed = api.get(f"{PREFIX}/cases", params={"customer_id": str(customer_id)}).json()["data"]
    assert [(c["id"], c["kind"], c["status"], c["invoice_numbers"]) for c in listed] == [
        (case.id, "dispute", "open", ["F-D1"])
    ]
    accept = api.post(f"{PREFIX}/cases/{case.id}/decision", json={"decision": "accept"})
    assert accept.status_code == 409  # a dispute is settled on its invoice, not "accepted"
    silent = api.post(f"{PREFIX}/cases/{case.id}/decision", json={"decision": "reject"})
    assert silent.status_code == 422  # the debtor must be told why: a problem on #/note
    assert silent.json()["errors"][0]["pointer"] == "#/note"
    rejected = api.post(
        f"{PREFIX}/cases/{case.id}/decision",
        json={"decision": "reject", "note": "The order said 120."},
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert "dispute.rejected" in db.scalars(select(TimelineEvent.action)).all()
    assert api.get(f"{PREFIX}/cases/{case.id + 1000}").status_code == 404


def test_invoices_are_cancelled_and_credited_through_the_services(
    api: TestClient, db: Session
) -> None:
    api.post(f"{PREFIX}/customers", json=customer_body())
    first = api.post(f"{PREFIX}/invoices", json=invoice_body("F-C1")).json()["invoice"]
    api.post(f"{PREFIX}/invoices", json=invoice_body("F-C2"))
    cancelled = api.post(f"{PREFIX}/invoices/{first['id']}/cancel", json={"reason": "duplicate"})
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["remaining_minor"] == 0
    refused = api.post(f"{PREFIX}/invoices", json=invoice_body("F-C1", amount_minor=1))
    assert refused.status_code == 422  # a cancelled invoice no longer changes
    note = {
        "number": "AV-1",
        "customer_reference": "C-001",
        "issue_date": "2026-11-15",
        "currency": "EUR",
        "amount_minor": 2_000,
        "applies_to": ["F-C2"],
    }
    issued = api.post(f"{PREFIX}/credit-notes", json=note)
    assert issued.status_code == 201, issued.text
    again = api.post(f"{PREFIX}/credit-notes", json=note)
    assert (again.status_code, again.json()["outcome"]) == (200, "unchanged")
    other = api.post(f"{PREFIX}/credit-notes", json={**note, "amount_minor": 3_000})
    assert other.status_code == 422
    credited = db.scalars(select(Invoice).where(Invoice.number == "F-C2")).one()
    db.refresh(credited)
    assert credited.paid_minor == 2_000
