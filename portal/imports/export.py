"""Files in the shape French accounting software exports them (``;``, decimal comma,
dd/mm/yyyy, Windows-1252 or UTF-8): the demo's sample export, the benchmark's input and the
round-trip tests write them with these functions, the import reads them back."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from portal.money import to_decimal

INVOICE_HEADER = (
    "Code client",
    "Raison sociale",
    "N° facture",
    "Date facture",
    "Date d'échéance",
    "Montant TTC",
    "Devise",
)


@dataclass(frozen=True)
class ExportedInvoice:
    customer_reference: str
    customer_name: str
    number: str
    issue_date: dt.date
    due_date: dt.date
    amount_minor: int
    currency: str = "EUR"


def french_amount(amount_minor: int, currency: str) -> str:
    """``123456`` -> ``1234,56`` (no thousands separator: accounting exports rarely have one)."""
    return f"{to_decimal(amount_minor, currency):f}".replace(".", ",")


def invoice_lines(invoices: Iterable[ExportedInvoice]) -> Iterator[list[str]]:
    yield list(INVOICE_HEADER)
    for each in invoices:
        yield [
            each.customer_reference,
            each.customer_name,
            each.number,
            each.issue_date.strftime("%d/%m/%Y"),
            each.due_date.strftime("%d/%m/%Y"),
            french_amount(each.amount_minor, each.currency),
            each.currency,
        ]


def write_invoices_csv(out: IO[str], invoices: Iterable[ExportedInvoice]) -> int:
    """Write an "open items" export to the text stream ``out``; returns the rows written."""
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    count = -1
    for count, line in enumerate(invoice_lines(invoices)):  # noqa: B007 - the count is returned
        writer.writerow(line)
    return count
