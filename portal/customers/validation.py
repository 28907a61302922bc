"""Checking and normalising what a person or a file says about a customer and its contacts.

Pure functions: no database. Identifiers are checked with python-stdnum (SIREN, SIRET, EU
VAT numbers) and stored in their compact form; phone numbers with phonenumbers, stored in
E.164. Every message is in the current language (``portal.i18n``).
"""

from __future__ import annotations

import dataclasses
import re
import zoneinfo
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache

import phonenumbers
from babel import Locale
from stdnum.eu import vat
from stdnum.exceptions import ValidationError
from stdnum.fr import siren as siren_number
from stdnum.fr import siret as siret_number

from portal import i18n
from portal.changes import Problems
from portal.customers.models import ContactRole, RiskSegment
from portal.i18n import gettext_ as _
from portal.users.errors import InvalidEmail
from portal.users.service import normalise_email

REFERENCE_MAX = 64
NAME_MAX = 200
ADDRESS_MAX = 200
CITY_MAX = 100
POSTCODE_MAX = 16
SCENARIO_MAX = 64
# Babel's territories that are no country one can post a letter to.
NOT_COUNTRIES = frozenset({"EU", "EZ", "QO", "UN", "XA", "XB", "ZZ"})
FRENCH_POSTCODE = re.compile(r"^\d{5}$")


@dataclass(frozen=True)
class CustomerFields:
    """Every field of a customer that a person or an import may set, as plain values."""

    reference: str
    name: str
    siren: str | None = None
    siret: str | None = None
    vat_number: str | None = None
    address_line1: str = ""
    address_line2: str = ""
    postcode: str = ""
    city: str = ""
    country: str = "FR"
    language: str = "fr"
    timezone: str = "Europe/Paris"
    risk_segment: str = RiskSegment.MEDIUM.value
    strategic: bool = False
    reminder_scenario: str | None = None  # None: the scenario of the risk segment
    owner_user_id: int | None = None  # the credit manager who follows the account

    def replace(self, **values: object) -> CustomerFields:
        return dataclasses.replace(self, **values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ContactFields:
    """A contact person of a customer, as plain values."""

    name: str = ""
    email: str | None = None
    phone: str | None = None
    role: str = ContactRole.BILLING.value
    is_primary: bool = False
    receives_reminders: bool = True
    accepts_email: bool = True
    accepts_sms: bool = True
    accepts_calls: bool = True
    accepts_letters: bool = True

    def replace(self, **values: object) -> ContactFields:
        return dataclasses.replace(self, **values)  # type: ignore[arg-type]


# --- identifiers --------------------------------------------------------------------------


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def normalise_siren(value: str | None) -> str | None:
    """Nine digits with a valid check digit, or None when blank. Raises ValidationError."""
    value = _blank(value)
    return None if value is None else str(siren_number.validate(value))


def normalise_siret(value: str | None) -> str | None:
    value = _blank(value)
    return None if value is None else str(siret_number.validate(value))


def normalise_vat(value: str | None) -> str | None:
    """An EU VAT number with its country prefix (FR40303265045), or None when blank."""
    value = _blank(value)
    return None if value is None else str(vat.validate(value))


def normalise_phone(value: str | None, country: str = "FR") -> str | None:
    """E.164 (+33612345678); a number without + is read as one of ``country``.
    Raises ValueError when it is not a possible, valid number."""
    value = _blank(value)
    if value is None:
        return None
    try:
        number = phonenumbers.parse(value, country or "FR")
    except phonenumbers.NumberParseException as error:
        raise ValueError(str(error)) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"not a valid phone number: {value!r}")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


@cache
def _countries() -> frozenset[str]:
    codes: list[str] = [str(code) for code in Locale.parse("en").territories]
    return frozenset(
        code for code in codes if len(code) == 2 and code.isalpha() and code not in NOT_COUNTRIES
    )


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def country_names(locale: str) -> list[tuple[str, str]]:
    """(code, name) of every country, sorted by name in ``locale``: for a form's list."""
    names = Locale.parse(locale).territories
    return sorted(((code, str(names.get(code, code))) for code in _countries()), key=lambda c: c[1])


def timezones() -> list[str]:
    return sorted(_timezones())


# --- customers ----------------------------------------------------------------------------


def validate_customer(
    fields: CustomerFields, *, scenarios: Collection[str] | None = None
) -> CustomerFields:
    """The fields checked and normalised; raises ``FieldErrors`` naming every bad field.

    ``scenarios``: the reminder scenarios that exist, to check ``reminder_scenario``
    (unchecked when None). The owner is checked against the database by the service.
    """
    problems = Problems()
    reference = fields.reference.strip()
    if not reference:
        problems.add("reference", _("Enter the customer's reference in your accounts."))
    elif len(reference) > REFERENCE_MAX:
        problems.add("reference", _too_long(REFERENCE_MAX))
    name = " ".join(fields.name.split())
    if not name:
        problems.add("name", _("Enter the customer's legal name."))
    elif len(name) > NAME_MAX:
        problems.add("name", _too_long(NAME_MAX))

    siren = siret = vat_number = None
    try:
        siren = normalise_siren(fields.siren)
    except ValidationError:
        problems.add("siren", _("Enter a valid SIREN: 9 digits, such as 732 829 320."))
    try:
        siret = normalise_siret(fields.siret)
    except ValidationError:
        problems.add("siret", _("Enter a valid SIRET: 14 digits, such as 732 829 320 00074."))
    if siret and "siren" not in problems:
        if siren is None:
            siren = siret[:9]
        elif siret[:9] != siren:
            problems.add("siret", _("This SIRET does not belong to the SIREN above."))
    try:
        vat_number = normalise_vat(fields.vat_number)
    except ValidationError:
        problems.add(
            "vat_number",
            _("Enter a valid EU VAT number with its country code, such as FR44732829320."),
        )
    if vat_number and siren and vat_number.startswith("FR") and vat_number[4:] != siren:
        problems.add("vat_number", _("This VAT number does not match the SIREN."))

    country = fields.country.strip().upper() or "FR"
    if country not in _countries():
        problems.add("country", _("Choose a country."))
    address = {
        key: " ".join(getattr(fields, key).split()) for key in ("address_line1", "address_line2")
    }
    for key, text in address.items():
        if len(text) > ADDRESS_MAX:
            problems.add(key, _too_long(ADDRESS_MAX))
    city = " ".join(fields.city.split())
    if len(city) > CITY_MAX:
        problems.add("city", _too_long(CITY_MAX))
    postcode = " ".join(fields.postcode.split()).upper()
    if postcode and country == "FR" and not FRENCH_POSTCODE.match(postcode):
        problems.add("postcode", _("Enter a French postcode of 5 digits, such as 75011."))
    elif len(postcode) > POSTCODE_MAX:
        problems.add("postcode", _too_long(POSTCODE_MAX))
    if (address["address_line1"] or postcode or city) and not (address["address_line1"] and city):
        target = "address_line1" if not address["address_line1"] else "city"
        problems.add(target, _("A postal address needs a street line and a town."))

    language = fields.language.strip().lower()
    if language not in i18n.SUPPORTED:
        problems.add("language", _("Choose a language."))
    timezone = fields.timezone.strip()
    if timezone not in _timezones():
        problems.add("timezone", _("Choose a time zone, such as Europe/Paris."))
    risk = fields.risk_segment.strip().lower()
    if risk not in {segment.value for segment in RiskSegment}:
        problems.add("risk_segment", _("Choose a risk segment."))
    scenario = _blank(fields.reminder_scenario)
    if scenario is not None and (
        len(scenario) > SCENARIO_MAX or (scenarios is not None and scenario not in scenarios)
    ):
        problems.add("reminder_scenario", _("Choose one of the reminder scenarios."))
    problems.check()
    return CustomerFields(
        reference=reference,
        name=name,
        siren=siren,
        siret=siret,
        vat_number=vat_number,
        address_line1=address["address_line1"],
        address_line2=address["address_line2"],
        postcode=postcode,
        city=city,
        country=country,
        language=language,
        timezone=timezone,
        risk_segment=risk,
        strategic=bool(fields.strategic),
        reminder_scenario=scenario,
        owner_user_id=fields.owner_user_id,
    )


def _too_long(limit: int) -> str:
    return _("Keep it to %(max)d characters at most.", max=limit)


# --- contacts -----------------------------------------------------------------------------


def validate_contact(fields: ContactFields, country: str = "FR") -> ContactFields:
    """Checked and normalised: email lowercased, phone in E.164 (read as a number of
    ``country``, the customer's, when it has no + prefix). Raises ``FieldErrors``."""
    problems = Problems()
    name = " ".join(fields.name.split())
    if len(name) > NAME_MAX:
        problems.add("name", _too_long(NAME_MAX))
    email = _blank(fields.email)
    if email is not None:
        try:
            email = normalise_email(email)
        except InvalidEmail:
            problems.add("email", _("Enter an email address such as name@example.com."))
    phone = None
    try:
        phone = normalise_phone(fields.phone, country)
    except ValueError:
        problems.add("phone", _("Enter a valid phone number, such as +33 6 12 34 56 78."))
    if not (name or email or fields.phone):
        problems.add("name", _("Enter at least a name, an email address or a phone number."))
    role = fields.role.strip().lower()
    if role not in {r.value for r in ContactRole}:
        problems.add("role", _("Choose a role."))
    problems.check()
    return dataclasses.replace(fields, name=name, email=email, phone=phone, role=role)


__all__ = [
    "ContactFields",
    "CustomerFields",
    "country_names",
    "normalise_phone",
    "normalise_siren",
    "normalise_siret",
    "normalise_vat",
    "timezones",
    "validate_contact",
    "validate_customer",
]
