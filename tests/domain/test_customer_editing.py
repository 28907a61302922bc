"""Customers and contacts created and changed through the one service the back office and
imports share: identifiers checked with python-stdnum, phones in E.164, upsert outcomes,
and every change on the timeline with its before -> after values."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import i18n
from portal.changes import FieldErrors, Outcome
from portal.company.models import Company
from portal.customers import service
from portal.customers.models import ContactRole, Customer, RiskSegment
from portal.customers.service import ContactFields, CustomerFields
from portal.customers.validation import normalise_phone, validate_contact, validate_customer
from portal.timeline.models import Actor, TimelineEvent
from portal.users import service as users
from portal.users.models import Role

VALID = CustomerFields(
    reference="C-001",
    name="Boulangerie  Martin",
    siren="732 829 320",
    siret="732 829 320 00074",
    vat_number="fr 44 732829320",
    address_line1="12 rue des Lilas",
    postcode="69003",
    city="Lyon",
)


def events(db: Session, customer_id: int, action: str) -> list[TimelineEvent]:
    return list(
        db.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.customer_id == customer_id, TimelineEvent.action == action)
            .order_by(TimelineEvent.id)
        )
    )


def errors_of(fields: CustomerFields, **kwargs: Any) -> dict[str, str]:
    with pytest.raises(FieldErrors) as raised:
        validate_customer(fields, **kwargs)
    return raised.value.errors


# --- validation -------------------------------------------------------------------------------


def test_identifiers_and_text_are_normalised() -> None:
    checked = validate_customer(VALID)
    assert checked.siren == "732829320"
    assert checked.siret == "73282932000074"
    assert checked.vat_number == "FR44732829320"
    assert checked.name == "Boulangerie Martin"


def test_a_siret_alone_gives_the_siren() -> None:
    assert validate_customer(VALID.replace(siren=None)).siren == "732829320"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"siren": "732 829 321"}, "siren"),  # wrong check digit
        ({"siren": "12345"}, "siren"),
        ({"siret": "73282932000075"}, "siret"),
        ({"siret": "55203253400646"}, "siret"),  # valid, but another company's
        ({"vat_number": "FR00732829320"}, "vat_number"),
        ({"vat_number": "FR27552032534"}, "vat_number"),  # valid, another SIREN
        ({"vat_number": "XX123"}, "vat_number"),
        ({"reference": "  "}, "reference"),
        ({"name": ""}, "name"),
        ({"postcode": "6900"}, "postcode"),
        ({"country": "ZZ"}, "country"),
        ({"language": "klingon"}, "language"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"risk_segment": "extreme"}, "risk_segment"),
        ({"city": ""}, "city"),  # a street without a town cannot take a letter
    ],
)
def test_bad_fields_are_named(change: dict[str, Any], field: str) -> None:
    assert field in errors_of(VALID.replace(**change))


def test_every_bad_field_is_reported_at_once_in_the_current_language() -> None:
    token = i18n.current_locale.set("fr")
    try:
        errors = errors_of(VALID.replace(siren="1", vat_number="FR1", name=""))
    finally:
        i18n.current_locale.reset(token)
    assert set(errors) == {"siren", "vat_number", "name"}
    assert errors["siren"] == "Saisissez un SIREN valide : 9 chiffres, par exemple 732 829 320."


def test_a_foreign_vat_number_and_postcode_are_accepted() -> None:
    checked = validate_customer(
        VALID.replace(
            siren=None, siret=None, vat_number="BE 0403.170.701", country="be", postcode="1000"
        )
    )
    assert (checked.vat_number, checked.country) == ("BE0403170701", "BE")


def test_the_scenario_override_must_exist_when_the_scenarios_are_known() -> None:
    assert validate_customer(VALID.replace(reminder_scenario="firm"), scenarios={"firm"})
    assert "reminder_scenario" in errors_of(
        VALID.replace(reminder_scenario="gentle"), scenarios={"firm"}
    )


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "FR", "+33612345678"),
        ("0032 470 12 34 56", "FR", "+32470123456"),
        ("0470 12 34 56", "BE", "+32470123456"),
        ("", "FR", None),
    ],
)
def test_phones_are_stored_in_e164(raw: str, country: str, expected: str | None) -> None:
    assert normalise_phone(raw, country) == expected


@pytest.mark.parametrize("raw", ["06 12", "not a phone", "+33 1"])
def test_bad_phones_are_refused(raw: str) -> None:
    with pytest.raises(FieldErrors) as raised:
        validate_contact(ContactFields(name="Anne", phone=raw))
    assert set(raised.value.errors) == {"phone"}


def test_a_contact_needs_some_way_to_reach_them() -> None:
    with pytest.raises(FieldErrors) as raised:
        validate_contact(ContactFields())
    assert "name" in raised.value.errors
    with pytest.raises(FieldErrors) as raised:
        validate_contact(ContactFields(name="Anne", email="anne@", role="boss"))
    assert set(raised.value.errors) == {"email", "role"}


# --- create, update, upsert -------------------------------------------------------------------


def test_create_records_the_fields_on_the_timeline(db: Session, company: Company) -> None:
    customer = service.create_customer(db, company.id, VALID, Actor.USER, "7")
    assert (customer.siren, customer.city, customer.risk_segment) == (
        "732829320",
        "Lyon",
        RiskSegment.MEDIUM,
    )
    [event] = events(db, customer.id, "customer.created")
    assert (event.actor, event.actor_id) == (Actor.USER, "7")
    assert event.details["fields"]["vat_number"] == "FR44732829320"


def test_update_returns_and_records_before_and_after(db: Session, company: Company) -> None:
    customer = service.create_customer(db, company.id, VALID, Actor.USER, "7")
    changes = service.update_customer(
        db,
        customer,
        service.customer_fields(customer).replace(city="Villeurbanne", risk_segment="high"),
        Actor.USER,
        "8",
    )
    assert changes == {
        "city": ("Lyon", "Villeurbanne"),
        "risk_segment": (RiskSegment.MEDIUM, RiskSegment.HIGH),
    }
    [event] = events(db, customer.id, "customer.updated")
    assert event.actor_id == "8"
    assert event.details == {
        "changes": {"city": ["Lyon", "Villeurbanne"], "risk_segment": ["medium", "high"]}
    }
    assert customer.updated_at is not None
    # The same values again change nothing and record nothing.
    unchanged = service.customer_fields(customer)
    assert service.update_customer(db, customer, unchanged, Actor.USER) == {}
    assert len(events(db, customer.id, "customer.updated")) == 1


def test_bad_input_changes_nothing(db: Session, company: Company) -> None:
    customer = service.create_customer(db, company.id, VALID, Actor.USER, "7")
    with pytest.raises(FieldErrors):
        service.update_customer(db, customer, VALID.replace(city="Paris", siren="1"), Actor.USER)
    assert customer.city == "Lyon"
    assert events(db, customer.id, "customer.updated") == []


def test_references_are_unique_per_company(db: Session, company: Company) -> None:
    service.create_customer(db, company.id, VALID, Actor.USER)
    with pytest.raises(FieldErrors) as raised:
        service.create_customer(db, company.id, VALID, Actor.USER)
    assert set(raised.value.errors) == {"reference"}
    other = service.create_customer(db, company.id, VALID.replace(reference="C-002"), Actor.USER)
    with pytest.raises(FieldErrors):
        service.update_customer(db, other, VALID, Actor.USER)


def test_upsert_by_reference_tells_what_it_did(db: Session, company: Company) -> None:
    customer, outcome = service.upsert_customer(db, company.id, VALID, Actor.SYSTEM, "import:1")
    assert outcome is Outcome.CREATED
    again, outcome = service.upsert_customer(db, company.id, VALID, Actor.SYSTEM, "import:2")
    assert (again.id, outcome) == (customer.id, Outcome.UNCHANGED)
    _, outcome = service.upsert_customer(
        db, company.id, VALID.replace(name="Martin SAS"), Actor.SYSTEM, "import:3"
    )
    assert outcome is Outcome.CHANGED
    assert customer.name == "Martin SAS"
    assert db.scalar(select(Customer.id).where(Customer.reference == "C-001")) == customer.id


def test_the_owner_is_an_active_credit_manager(db: Session, company: Company) -> None:
    previous = users.set_password_hasher(PasswordHasher(time_cost=1, memory_cost=1024))
    try:
        manager = users.create_user(db, "cm@relance.example", Role.CREDIT_MANAGER, "p" * 12)
        viewer = users.create_user(db, "v@relance.example", Role.VIEWER, "p" * 12)
    finally:
        users.set_password_hasher(previous)
    db.flush()
    customer = service.create_customer(
        db, company.id, VALID.replace(owner_user_id=manager.id), Actor.USER
    )
    assert customer.owner_user_id == manager.id
    with pytest.raises(FieldErrors) as raised:
        service.update_customer(db, customer, VALID.replace(owner_user_id=viewer.id), Actor.USER)
    assert set(raised.value.errors) == {"owner_user_id"}


def test_customers_are_found_by_siren_or_vat_number(db: Session, company: Company) -> None:
    customer = service.create_customer(db, company.id, VALID, Actor.USER)
    assert service.customers_with_identifier(db, company.id, siren="732 829 320") == [customer]
    assert service.customers_with_identifier(db, company.id, vat_number="fr44732829320") == [
        customer
    ]
    assert service.customers_with_identifier(db, company.id, siren="552032534") == []


# --- contacts ---------------------------------------------------------------------------------


def test_contacts_are_added_changed_and_removed_on_the_timeline(
    db: Session, company: Company
) -> None:
    customer = service.create_customer(db, company.id, VALID, Actor.USER, "7")
    anne = service.add_contact(
        db,
        customer,
        ContactFields(name="Anne Martin", email="Anne@Example.com", phone="06 12 34 56 78"),
        Actor.USER,
        "7",
    )
    assert (anne.email, anne.phone, anne.is_primary) == (
        "anne@example.com",
        "+33612345678",
        True,  # the first contact is the primary one
    )
    bob = service.add_contact(
        db,
        customer,
        ContactFields(name="Bob", phone="0478000000", role="accounting", is_primary=True),
        Actor.USER,
        "7",
    )
    assert bob.role is ContactRole.ACCOUNTING
    assert (anne.is_primary, bob.is_primary) == (False, True)  # one primary per customer
    assert customer.primary_contact is bob
    changes = service.update_contact(
        db,
        anne,
        service.contact_fields(anne).replace(accepts_sms=False, phone="+33 6 12 34 56 79"),
        Actor.USER,
        "8",
    )
    assert changes == {
        "phone": ("+33612345678", "+33612345679"),
        "accepts_sms": (True, False),
    }
    updated = events(db, customer.id, "contact.updated")
    assert updated[-1].details["changes"] == {
        "phone": ["+33612345678", "+33612345679"],
        "accepts_sms": [True, False],
    }
    service.remove_contact(db, bob, Actor.USER, "8")
    assert [c.name for c in customer.contacts] == ["Anne Martin"]
    [removed] = events(db, customer.id, "contact.removed")
    assert removed.details["fields"]["phone"] == "+33478000000"


def test_upsert_contact_matches_email_then_phone_then_name(db: Session, company: Company) -> None:
    customer = service.create_customer(db, company.id, VALID, Actor.USER)
    by_email = ContactFields(name="Anne", email="anne@example.com")
    anne, outcome = service.upsert_contact(db, customer, by_email, Actor.SYSTEM)
    assert outcome is Outcome.CREATED
    _, outcome = service.upsert_contact(
        db, customer, by_email.replace(email="ANNE@example.com"), Actor.SYSTEM
    )
    assert outcome is Outcome.UNCHANGED
    same, outcome = service.upsert_contact(
        db, customer, by_email.replace(name="Anne Martin"), Actor.SYSTEM
    )
    assert (same.id, outcome, same.name) == (anne.id, Outcome.CHANGED, "Anne Martin")
    by_phone = ContactFields(name="Standard", phone="04 78 00 00 00")
    phone_contact, _ = service.upsert_contact(db, customer, by_phone, Actor.SYSTEM)
    _, outcome = service.upsert_contact(
        db, customer, by_phone.replace(phone="+33478000000"), Actor.SYSTEM
    )
    assert outcome is Outcome.UNCHANGED
    by_name, outcome = service.upsert_contact(
        db, customer, ContactFields(name="standard"), Actor.SYSTEM
    )
    assert outcome is Outcome.CHANGED  # the same person by name; the phone is dropped
    assert by_name.id == phone_contact.id
    assert len(customer.contacts) == 2
