"""Which column holds which field: French and English headers recognised, the rest mapped
once by the credit manager and kept (``import_mappings``) for the next file of that shape."""

from __future__ import annotations

import enum
import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from portal.i18n import N_


class Kind(enum.StrEnum):
    CUSTOMERS = "customers"
    CONTACTS = "contacts"
    INVOICES = "invoices"
    PAYMENTS = "payments"
    EINVOICES = "einvoices"


@dataclass(frozen=True)
class Field:
    name: str
    label: str  # English source, translated where shown
    synonyms: tuple[str, ...]
    required: bool = False


def _f(name: str, label: str, *synonyms: str, required: bool = False) -> Field:
    return Field(name, label, synonyms, required)


_CUSTOMER_REF = (
    "code client",
    "client code",
    "numero client",
    "reference client",
    "ref client",
    "compte client",
    "compte tiers",
    "compte",
    "tiers",
    "code tiers",
    "customer code",
    "customer reference",
    "customer ref",
    "customer number",
    "customer id",
    "customer no",
    "account",
    "account code",
    "account number",
)
_NAME = (
    "raison sociale",
    "nom client",
    "client",
    "nom",
    "societe",
    "entreprise",
    "customer name",
    "customer",
    "company",
    "company name",
    "name",
)
_EMAIL = ("email", "e mail", "mail", "courriel", "adresse email", "adresse mail", "email address")
_PHONE = ("telephone", "tel", "portable", "mobile", "phone", "phone number")

FIELDS: dict[Kind, tuple[Field, ...]] = {
    Kind.CUSTOMERS: (
        _f("reference", N_("Customer reference"), *_CUSTOMER_REF, required=True),
        _f("name", N_("Name"), *_NAME, required=True),
        _f("email", N_("Email address"), *_EMAIL),
        _f("phone", N_("Phone"), *_PHONE),
        _f("language", N_("Language"), "langue", "language"),
        _f("siren", N_("SIREN"), "siren", "numero siren"),
        _f("siret", N_("SIRET"), "siret", "numero siret"),
        _f(
            "vat_number",
            N_("VAT number"),
            "tva intracommunautaire",
            "numero tva",
            "numero tva intracommunautaire",
            "tva intracom",
            "vat number",
            "vat",
            "vat id",
        ),
        _f(
            "address_line1",
            N_("Address"),
            "adresse",
            "adresse 1",
            "address",
            "address line 1",
            "rue",
        ),
        _f(
            "address_line2",
            N_("Address (second line)"),
            "adresse 2",
            "complement adresse",
            "address line 2",
        ),
        _f(
            "postcode",
            N_("Postcode"),
            "code postal",
            "cp",
            "postal code",
            "postcode",
            "zip",
            "zip code",
        ),
        _f("city", N_("City"), "ville", "city", "town"),
        _f("country", N_("Country"), "pays", "code pays", "country", "country code"),
        _f(
            "contact_name",
            N_("Contact name"),
            "contact",
            "nom contact",
            "interlocuteur",
            "contact name",
        ),
    ),
    Kind.CONTACTS: (
        _f("customer_reference", N_("Customer reference"), *_CUSTOMER_REF, required=True),
        _f("name", N_("Name"), "nom", "contact", "nom contact", "name", "contact name"),
        _f("email", N_("Email address"), *_EMAIL),
        _f("phone", N_("Phone"), *_PHONE),
        _f("role", N_("Role"), "fonction", "role", "poste", "job title", "title"),
    ),
    Kind.INVOICES: (
        _f(
            "number",
            N_("Invoice number"),
            "facture",
            "numero facture",
            "numero",
            "piece",
            "numero piece",
            "invoice number",
            "invoice no",
            "invoice",
            "invoice id",
            "document number",
            required=True,
        ),
        _f("customer_reference", N_("Customer reference"), *_CUSTOMER_REF, required=True),
        _f("customer_name", N_("Customer name"), *_NAME),
        _f(
            "issue_date",
            N_("Issue date"),
            "date facture",
            "date",
            "date emission",
            "date piece",
            "invoice date",
            "issue date",
            "date issued",
            required=True,
        ),
        _f(
            "due_date",
            N_("Due date"),
            "date echeance",
            "echeance",
            "due date",
            "due",
            "payment due",
            required=True,
        ),
        _f(
            "amount",
            N_("Amount including tax"),
            "montant ttc",
            "total ttc",
            "ttc",
            "montant",
            "amount",
            "total",
            "amount including tax",
            "total amount",
            "gross amount",
            required=True,
        ),
        _f("currency", N_("Currency"), "devise", "monnaie", "currency"),
        _f(
            "outstanding",
            N_("Amount outstanding"),
            "reste du",
            "montant restant",
            "restant du",
            "solde",
            "reste a payer",
            "outstanding",
            "amount outstanding",
            "open amount",
            "balance",
            "amount due",
        ),
        _f("customer_email", N_("Email address"), *_EMAIL),
    ),
    Kind.PAYMENTS: (
        _f(
            "reference",
            N_("Payment reference"),
            "reference reglement",
            "numero reglement",
            "reglement",
            "reference paiement",
            "payment reference",
            "payment id",
            "payment number",
            required=True,
        ),
        _f(
            "invoice_number",
            N_("Invoice number"),
            "facture",
            "numero facture",
            "invoice number",
            "invoice",
            required=True,
        ),
        _f(
            "amount",
            N_("Amount"),
            "montant",
            "montant regle",
            "montant reglement",
            "amount",
            "amount paid",
            required=True,
        ),
        _f(
            "date",
            N_("Payment date"),
            "date reglement",
            "date paiement",
            "date",
            "payment date",
            "paid on",
            required=True,
        ),
        _f("currency", N_("Currency"), "devise", "currency"),
        _f(
            "method",
            N_("Payment method"),
            "mode reglement",
            "mode de paiement",
            "method",
            "payment method",
        ),
    ),
    # E-invoices have no columns: these name what the preview shows of each document.
    Kind.EINVOICES: (
        _f("number", N_("Invoice number")),
        _f("customer_name", N_("Customer name")),
        _f("issue_date", N_("Issue date")),
        _f("due_date", N_("Due date")),
        _f("amount", N_("Amount including tax")),
        _f("currency", N_("Currency")),
    ),
}

_STOPWORDS = {
    "de",
    "du",
    "des",
    "d",
    "la",
    "le",
    "l",
    "of",
    "the",
    "n",
    "no",
    "nr",
    "num",
    "euro",
    "eur",
    "en",
    "in",
    "a",
}


def normalise(header: str) -> str:
    """``"N° de facture"`` -> ``"facture"``, ``"Date d'échéance"`` -> ``"date echeance"``."""
    text = unicodedata.normalize("NFKD", header)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("numéro", "numero")
    words = [word for word in re.split(r"[^0-9a-z]+", text) if word and word not in _STOPWORDS]
    return " ".join(words)


_LOOKUP: dict[Kind, dict[str, str]] = {
    kind: {normalise(synonym): field.name for field in fields for synonym in field.synonyms}
    for kind, fields in FIELDS.items()
}


def signature(header: Sequence[str]) -> str:
    """The shape of a file: its normalised headers, in order (a saved mapping's key)."""
    text = "\x1f".join(normalise(cell) for cell in header)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def recognise(kind: Kind, header: Sequence[str]) -> dict[int, str]:
    """Column index -> field name for the headers we know; the first column wins a field."""
    lookup = _LOOKUP[kind]
    found: dict[int, str] = {}
    taken: set[str] = set()
    for index, cell in enumerate(header):
        field = lookup.get(normalise(cell))
        if field is not None and field not in taken:
            found[index] = field
            taken.add(field)
    return found


def guess_kind(header: Sequence[str]) -> Kind:
    """The kind whose required fields the headers cover best (invoices on a tie)."""

    def score(kind: Kind) -> tuple[int, int]:
        names = set(recognise(kind, header).values())
        required = [f.name for f in FIELDS[kind] if f.required]
        return (sum(name in names for name in required) - len(required), len(names))

    order = (Kind.INVOICES, Kind.PAYMENTS, Kind.CUSTOMERS, Kind.CONTACTS)
    return max(order, key=score)


def missing_fields(kind: Kind, columns: Mapping[int, str]) -> list[Field]:
    present = set(columns.values())
    return [field for field in FIELDS[kind] if field.required and field.name not in present]


def field_names(kind: Kind) -> set[str]:
    return {field.name for field in FIELDS[kind]}


def from_saved(header: Sequence[str], saved: Mapping[str, str], kind: Kind) -> dict[int, str]:
    """A saved mapping (header text -> field) applied to this header row."""
    allowed = field_names(kind)
    columns: dict[int, str] = {}
    for index, cell in enumerate(header):
        field = saved.get(cell)
        if field in allowed and field not in columns.values():
            columns[index] = field
    return columns


def to_saved(header: Sequence[str], columns: Mapping[int, str]) -> dict[str, str]:
    return {header[index]: field for index, field in columns.items() if index < len(header)}
