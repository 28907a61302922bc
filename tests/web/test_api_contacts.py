"""Contacts through their own endpoints: the back-office form's services (checks, one
primary contact, timeline), the customer named by the company's reference or Relance's id."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.timeline.models import TimelineEvent
from tests.web.api_helpers import customer_body

PREFIX = "/api/v1"


def test_contacts_are_added_listed_replaced_and_removed(api: TestClient, db: Session) -> None:
    customer_id = api.post(f"{PREFIX}/customers", json=customer_body()).json()["customer"]["id"]
    first = api.post(
        f"{PREFIX}/contacts",
        json={"customer_reference": "C-001", "name": "Ana", "email": " Ana@Client.Example "},
    )
    assert first.status_code == 201, first.text
    ana = first.json()
    # Normalised and made primary as the back-office form does: the first contact is it.
    assert (ana["email"], ana["is_primary"], ana["customer_id"]) == (
        "ana@client.example",
        True,
        customer_id,
    )
    second = api.post(
        f"{PREFIX}/contacts",
        json={
            "customer_id": customer_id,
            "name": "Bo",
            "phone": "06 12 34 56 78",
            "is_primary": True,
            "accepts_sms": False,
        },
    ).json()
    assert (second["phone"], second["accepts_sms"]) == ("+33612345678", False)
    by_reference = api.get(f"{PREFIX}/contacts", params={"customer_reference": "C-001"}).json()
    by_id = api.get(f"{PREFIX}/contacts", params={"customer_id": str(customer_id)}).json()
    assert by_reference == by_id
    assert [(c["name"], c["is_primary"]) for c in by_id["data"]] == [("Ana", False), ("Bo", True)]

    replaced = api.put(
        f"{PREFIX}/contacts/{ana['id']}",
        json={"name": "Ana Lopez", "email": "ana@client.example", "role": "accounting"},
    )
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["name"], replaced.json()["role"]) == ("Ana Lopez", "accounting")
    assert api.get(f"{PREFIX}/contacts/{ana['id']}").json()["name"] == "Ana Lopez"
    removed = api.delete(f"{PREFIX}/contacts/{second['id']}")
    assert removed.json() == {"id": second["id"], "customer_id": customer_id, "removed": True}
    assert api.get(f"{PREFIX}/contacts/{second['id']}").status_code == 404
    customer = api.get(f"{PREFIX}/customers/{customer_id}").json()
    assert [c["name"] for c in customer["contacts"]] == ["Ana Lopez"]
    actions = list(
        db.scalars(
            select(TimelineEvent.action)
            .where(TimelineEvent.subject_type == "contact")
            .order_by(TimelineEvent.id)
        )
    )
    assert actions[:2] == ["contact.added", "contact.updated"]  # Bo took the primary role
    assert {"contact.removed"} <= set(actions)
    assert actions.count("contact.added") == 2


def test_contacts_are_refused_as_the_form_refuses_them(api: TestClient) -> None:
    api.post(f"{PREFIX}/customers", json=customer_body())
    bad = api.post(
        f"{PREFIX}/contacts",
        json={"customer_reference": "C-001", "email": "not an address", "phone": "12"},
    )
    assert bad.status_code == 422
    assert {e["pointer"] for e in bad.json()["errors"]} == {"#/email", "#/phone"}
    nobody = api.post(f"{PREFIX}/contacts", json={"customer_reference": "C-404", "name": "X"})
    assert [e["pointer"] for e in nobody.json()["errors"]] == ["#/customer_reference"]
    both = api.post(
        f"{PREFIX}/contacts", json={"customer_reference": "C-001", "customer_id": 1, "name": "X"}
    )
    assert both.status_code == 422
    unnamed = api.get(f"{PREFIX}/contacts")
    assert unnamed.json()["errors"][0]["parameter"] == "customer_reference"
    assert api.get(f"{PREFIX}/contacts", params={"customer_reference": "C-404"}).status_code == 404
    assert api.put(f"{PREFIX}/contacts/999999", json={"name": "X"}).status_code == 404
    assert api.delete(f"{PREFIX}/contacts/999999").status_code == 404


def test_a_read_key_reads_contacts_but_does_not_change_them(api: TestClient, read_key: str) -> None:
    api.post(f"{PREFIX}/customers", json=customer_body(contacts=[{"name": "Ana"}]))
    reader = {"Authorization": f"Bearer {read_key}"}
    listed = api.get(f"{PREFIX}/contacts", params={"customer_reference": "C-001"}, headers=reader)
    contact_id = listed.json()["data"][0]["id"]
    assert api.delete(f"{PREFIX}/contacts/{contact_id}", headers=reader).status_code == 403
    assert api.get(f"{PREFIX}/contacts/{contact_id}", headers=reader).status_code == 200
