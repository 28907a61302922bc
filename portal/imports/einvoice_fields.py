"""The field readers CII and UBL share: currency, amounts, dates, payment terms, French ids.

Each reads one value as the EN 16931 rules write it and raises an ``EInvoiceError`` naming
the element when it cannot.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal
from functools import cache

from babel.numbers import list_currencies
from stdnum.fr import siren as siren_number
from stdnum.fr import siret as siret_number
from stdnum.fr import tva

from portal.i18n import gettext_ as _
from portal.imports.einvoice import EInvoiceError, missing
from portal.money import minor_digits

# Type codes (UNTDID 1001) of EN 16931 and the French e-invoicing rules.
INVOICE_TYPES = frozenset(
    {"380", "383", "384", "386", "389", "393", "471", "472", "473", "500", "501", "751"}
)
CREDIT_NOTE_TYPES = frozenset({"261", "262", "381", "396", "502", "503", "532"})
_AMOUNT = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
_MAX_AMOUNT_DIGITS = 18  # fits the database's 64-bit amounts with room to spare
_ISO_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:Z|[+-][0-9]{2}:[0-9]{2})?$")
_BASIC_DATE = re.compile(r"^([0-9]{4})([0-9]{2})([0-9]{2})$")
_TERM_DAYS = re.compile(
    r"(?:\b([0-9]{1,3})\s*(?:days?|jours?|j|tage|dias|días|giorni)\b|\bnet\s*([0-9]{1,3})\b)",
    re.IGNORECASE,
)
_END_OF_MONTH = re.compile(r"fin\s+de\s+mois|end\s+of\s+(?:the\s+)?month|\bfdm\b", re.IGNORECASE)
_ON_RECEIPT = re.compile(
    r"r[ée]ception|receipt|comptant|immediate|imm[ée]diat|sofort", re.IGNORECASE
)


@cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def currency(value: str | None, element: str) -> str:
    if value is None:
        raise missing(_("invoice currency"), element)
    if value.upper() not in _currencies():
        raise EInvoiceError(
            "bad_currency", _("Unknown currency code %(currency)s.", currency=value)
        )
    return value.upper()


def amount(value: str, currency_code: str, element: str) -> int:
    """An XML decimal (``1234.56``) to minor units, exactly; refused if it needs rounding."""
    digits = minor_digits(currency_code)
    cleaned = value.strip()
    if not _AMOUNT.match(cleaned) or len(cleaned) > _MAX_AMOUNT_DIGITS + 2:
        raise EInvoiceError(
            "bad_amount",
            _(
                "The amount %(amount)s in %(element)s is not a number.",
                amount=value[:40],
                element=element,
            ),
        )
    scaled = Decimal(cleaned).scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise EInvoiceError(
            "bad_amount",
            _(
                "The amount %(amount)s in %(element)s has more decimals than %(currency)s "
                "allows (%(digits)d).",
                amount=cleaned,
                element=element,
                currency=currency_code,
                digits=digits,
            ),
        )
    return int(scaled)


def iso_date(value: str | None, element: str, label: str) -> dt.date:
    """``2026-11-15`` (UBL); a time zone suffix is allowed and ignored."""
    if value is None:
        raise missing(label, element)
    match = _ISO_DATE.match(value)
    return _date(match, value, element)


def basic_date(value: str | None, format_code: str | None, element: str, label: str) -> dt.date:
    """``20261115`` with date format 102 (CII)."""
    if value is None:
        raise missing(label, element)
    match = _BASIC_DATE.match(value) if format_code in (None, "102") else None
    return _date(match, value, element)


def _date(match: re.Match[str] | None, value: str, element: str) -> dt.date:
    try:
        if match is None:
            raise ValueError(value)
        year, month, day = (int(part) for part in match.groups())
        return dt.date(year, month, day)
    except ValueError:
        raise EInvoiceError(
            "bad_date",
            _(
                "The date %(date)s in %(element)s is not a valid date.",
                date=value[:40],
                element=element,
            ),
        ) from None


def invoice_kind(type_code: str | None, element: str) -> str:
    if type_code is None:
        raise missing(_("document type code"), element)
    if type_code in INVOICE_TYPES:
        return "invoice"
    if type_code in CREDIT_NOTE_TYPES:
        return "credit_note"
    raise EInvoiceError(
        "unsupported_type",
        _(
            "The document type %(code)s is neither an invoice nor a credit note (a pro forma "
            "or an order, for example): it is not imported.",
            code=type_code[:10],
        ),
    )


def due_from_terms(terms: str | None, issue_date: dt.date) -> dt.date | None:
    """ "30 days", "à 30 jours", "net 45", "à réception" -> a date; None when unclear."""
    if not terms or _END_OF_MONTH.search(terms):
        return None
    matches = _TERM_DAYS.findall(terms)
    if len(matches) == 1 and len(re.findall(r"[0-9]+", terms)) == 1:  # "30 or 60 days": unclear
        days = int(matches[0][0] or matches[0][1])
        return issue_date + dt.timedelta(days=days)
    if not matches and _ON_RECEIPT.search(terms):
        return issue_date
    return None


def country_code(value: str | None) -> str | None:
    """An ISO 3166 alpha-2 code, upper case; None when absent or not two letters."""
    cleaned = (value or "").strip().upper()
    return cleaned if len(cleaned) == 2 and cleaned.isascii() and cleaned.isalpha() else None


def normalise_vat(value: str | None) -> str | None:
    cleaned = re.sub(r"[\s.\-]", "", value or "").upper()
    return cleaned or None


def french_ids(
    ids: Sequence[tuple[str | None, str]], vat_number: str | None
) -> tuple[str | None, str | None]:
    """(SIREN, SIRET) from a party's ``(scheme, identifier)`` pairs and VAT number.

    Schemes (ISO 6523 ICD): 0002 SIREN (or a SIRET), 0009 SIRET, 0225 a French
    e-invoicing address starting with the SIREN. A SIREN is also the end of a French
    VAT number (FR + key + SIREN). Identifiers failing their check digits are ignored.
    """
    explicit: str | None = None
    siret: str | None = None
    address: str | None = None
    for scheme, value in ids:
        digits = re.sub(r"\s", "", value)
        if scheme in ("0002", "0009", None) and siret_number.is_valid(digits):
            siret = siret or digits
        elif scheme in ("0002", None) and siren_number.is_valid(digits):
            explicit = explicit or digits
        elif scheme == "0225" and siren_number.is_valid(digits[:9]):
            address = address or digits[:9]
    french_vat = vat_number is not None and vat_number.startswith("FR") and tva.is_valid(vat_number)
    from_vat = vat_number[4:] if vat_number and french_vat else None
    siren = explicit or (siret[:9] if siret else None) or from_vat or address
    return siren, siret
