"""Typed rows from cells: dates as dd/mm/yyyy or ISO, amounts with a decimal comma and
thousand separators, to integer minor units (never floats). A row that cannot be read
becomes a ``Rejection`` with its line number and a reason to translate."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from portal.i18n import N_
from portal.imports.mapping import Kind
from portal.imports.readers import Cell
from portal.money import minor_digits, parse_amount

MAX_REFERENCE = 64
MAX_NAME = 200
_DATE_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})$")
_DATE_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "CHF": "CHF"}


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    message: str  # English source, translated where shown
    values: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "message": self.message, "values": self.values}


class RowError(ValueError):
    def __init__(self, message: str, **values: Any) -> None:
        super().__init__(message)
        self.message = message
        self.values = values


@dataclass(slots=True)
class CustomerRow:
    line: int
    reference: str
    name: str
    email: str | None = None
    phone: str | None = None
    language: str | None = None
    siren: str | None = None
    siret: str | None = None
    vat_number: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    postcode: str | None = None
    city: str | None = None
    country: str | None = None
    contact_name: str | None = None


@dataclass(slots=True)
class ContactRow:
    line: int
    customer_reference: str
    name: str
    email: str | None
    phone: str | None
    role: str | None
    is_primary: bool = False


@dataclass(slots=True)
class InvoiceRow:
    line: int
    number: str
    customer_reference: str
    customer_name: str | None
    issue_date: dt.date
    due_date: dt.date
    currency: str
    amount_minor: int
    outstanding_minor: int | None
    customer_email: str | None = None


@dataclass(slots=True)
class PaymentRow:
    line: int
    reference: str
    invoice_number: str
    date: dt.date
    currency: str
    amount_minor: int
    method: str | None


Row = CustomerRow | ContactRow | InvoiceRow | PaymentRow


# --- cells ------------------------------------------------------------------------------------


def text(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))  # a reference typed as a number in a spreadsheet
    if isinstance(cell, dt.datetime):
        return cell.date().isoformat()
    return str(cell).strip()


def parse_date(cell: Cell) -> dt.date:
    if isinstance(cell, dt.datetime):
        return cell.date()
    if isinstance(cell, dt.date):
        return cell
    value = text(cell)
    # The common case first, without a regular expression: 31/12/2026.
    if len(value) == 10 and value[2] == "/" and value[5] == "/":
        try:
            return dt.date(int(value[6:]), int(value[3:5]), int(value[:2]))
        except ValueError:
            pass
    if match := _DATE_ISO.match(value):
        year, month, day = (int(part) for part in match.groups())
    elif match := _DATE_DMY.match(value):
        day, month, year = (int(part) for part in match.groups())
        if year < 100:
            year += 2000
    else:
        raise RowError(N_("%(value)s is not a date (dd/mm/yyyy)"), value=value)
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise RowError(N_("%(value)s is not a date (dd/mm/yyyy)"), value=value) from None


def parse_money(cell: Cell, currency: str) -> int:
    """Minor units; a negative amount keeps its sign (the caller decides what it means)."""
    if isinstance(cell, bool):
        raise RowError(N_("%(value)s is not an amount"), value=str(cell))
    if isinstance(cell, int | float):
        value = Decimal(str(cell)).scaleb(minor_digits(currency))
        if value != value.to_integral_value():
            raise RowError(N_("%(value)s has too many decimals"), value=str(cell))
        return int(value)
    raw = text(cell)
    cleaned = raw
    for symbol in ("€", "EUR", "$", "£"):
        cleaned = cleaned.replace(symbol, "")
    cleaned = cleaned.strip()
    negative = False
    if cleaned.startswith("(") and cleaned.endswith(")"):
        negative, cleaned = True, cleaned[1:-1]
    if cleaned.startswith("-") or cleaned.endswith("-"):
        negative, cleaned = True, cleaned.strip("-")
    cleaned = cleaned.lstrip("+")
    if not cleaned:
        raise RowError(N_("the amount is missing"))
    try:
        amount = parse_amount(cleaned, currency)
    except ValueError:
        raise RowError(N_("%(value)s is not an amount"), value=raw) from None
    return -amount if negative else amount


def parse_currency(cell: Cell, default: str) -> str:
    value = text(cell).upper()
    if not value:
        return default
    value = _SYMBOLS.get(value, value)
    if not _CURRENCY.match(value):
        raise RowError(N_("%(value)s is not a currency code such as EUR"), value=value)
    return value


def _required(values: Mapping[str, Cell], name: str, label: str, limit: int) -> str:
    value = text(values.get(name))
    if not value:
        raise RowError(N_("%(field)s is missing"), field=label)
    if len(value) > limit:
        raise RowError(
            N_("%(field)s is longer than %(count)d characters"), field=label, count=limit
        )
    return value


def _optional(values: Mapping[str, Cell], name: str, limit: int = 254) -> str | None:
    value = text(values.get(name))
    return value[:limit] or None


def _identifier(values: Mapping[str, Cell], name: str, limit: int) -> str | None:
    """SIREN, SIRET, VAT number: written with spaces or dots, stored without."""
    value = re.sub(r"[\s.\-]", "", text(values.get(name))).upper()
    return value[:limit] or None


# --- rows -------------------------------------------------------------------------------------


def customer_row(line: int, values: Mapping[str, Cell], _currency: str) -> CustomerRow:
    return CustomerRow(
        line=line,
        reference=_required(values, "reference", N_("Customer reference"), MAX_REFERENCE),
        name=_required(values, "name", N_("Name"), MAX_NAME),
        email=_optional(values, "email", 400),
        phone=_optional(values, "phone", 64),
        language=_optional(values, "language", 16),
        siren=_identifier(values, "siren", 9),
        siret=_identifier(values, "siret", 14),
        vat_number=_identifier(values, "vat_number", 32),
        address_line1=_optional(values, "address_line1", 400),
        address_line2=_optional(values, "address_line2", 400),
        postcode=_optional(values, "postcode", 32),
        city=_optional(values, "city", 200),
        country=_optional(values, "country", 8),
        contact_name=_optional(values, "contact_name", 400),
    )


def contact_row(line: int, values: Mapping[str, Cell], _currency: str) -> ContactRow:
    row = ContactRow(
        line=line,
        customer_reference=_required(
            values, "customer_reference", N_("Customer reference"), MAX_REFERENCE
        ),
        name=_optional(values, "name", MAX_NAME) or "",
        email=_optional(values, "email"),
        phone=_optional(values, "phone", 32),
        role=_optional(values, "role", 64),
    )
    return row


def invoice_row(line: int, values: Mapping[str, Cell], currency: str) -> InvoiceRow:
    number = _required(values, "number", N_("Invoice number"), MAX_REFERENCE)
    customer = _required(values, "customer_reference", N_("Customer reference"), MAX_REFERENCE)
    issue_date = parse_date(values.get("issue_date"))
    due_date = parse_date(values.get("due_date"))
    currency = parse_currency(values.get("currency"), currency)
    amount = parse_money(values.get("amount"), currency)
    outstanding_cell = values.get("outstanding")
    outstanding = None if text(outstanding_cell) == "" else parse_money(outstanding_cell, currency)
    if outstanding is not None and not 0 <= outstanding <= max(amount, 0):
        raise RowError(N_("the amount outstanding must be between zero and the invoice's amount"))
    return InvoiceRow(
        line=line,
        number=number,
        customer_reference=customer,
        customer_name=_optional(values, "customer_name", MAX_NAME),
        issue_date=issue_date,
        due_date=due_date,
        currency=currency,
        amount_minor=amount,
        outstanding_minor=outstanding,
        customer_email=_optional(values, "customer_email"),
    )


def payment_row(line: int, values: Mapping[str, Cell], currency: str) -> PaymentRow:
    reference = _required(values, "reference", N_("Payment reference"), 128)
    number = _required(values, "invoice_number", N_("Invoice number"), MAX_REFERENCE)
    currency = parse_currency(values.get("currency"), currency)
    amount = parse_money(values.get("amount"), currency)
    if amount <= 0:
        raise RowError(N_("the amount of a payment must be more than zero"))
    return PaymentRow(
        line=line,
        reference=reference,
        invoice_number=number,
        date=parse_date(values.get("date")),
        currency=currency,
        amount_minor=amount,
        method=_optional(values, "method", 32),
    )


PARSERS: dict[Kind, Callable[[int, Mapping[str, Cell], str], Row]] = {
    Kind.CUSTOMERS: customer_row,
    Kind.CONTACTS: contact_row,
    Kind.INVOICES: invoice_row,
    Kind.PAYMENTS: payment_row,
}


def row_reader(
    kind: Kind, columns: Mapping[int, str], width: int, currency: str
) -> Callable[[int, list[Cell]], Row | Rejection]:
    """A function from (line, cells) to a typed row or its rejection, for this mapping."""
    parse = PARSERS[kind]
    pairs = sorted(columns.items())

    def read(line: int, cells: list[Cell]) -> Row | Rejection:
        if len(cells) != width and len(cells) < max(columns, default=0) + 1:
            return Rejection(
                line,
                N_("this line has %(count)d columns where the first line has %(expected)d"),
                {"count": len(cells), "expected": width},
            )
        values = {name: cells[index] for index, name in pairs if index < len(cells)}
        try:
            return parse(line, values, currency)
        except RowError as error:
            return Rejection(line, error.message, error.values)

    return read
