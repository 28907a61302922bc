"""Bank statements as CSV (or XLSX) exports, read with the import readers
(``portal.imports.readers``: encodings, delimiters) and a column mapping: headers the
matcher knows in French and English, or a mapping saved once per file shape in
``import_mappings`` (kind ``bank``), exactly as spreadsheet imports keep theirs.

Amounts: one signed ``amount`` column (positive: money in), or ``credit`` and ``debit``
columns. Dates as ``2026-12-03`` or ``03/12/2026``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.bank.errors import StatementError
from portal.bank.parsed import ParsedLine, ParsedStatement
from portal.i18n import N_
from portal.imports.errors import ImportFileError
from portal.imports.mapping import normalise, signature
from portal.imports.models import ImportMapping
from portal.imports.readers import Cell, Table, open_table
from portal.money import parse_amount

KIND = "bank"
MAX_ROWS = 200_000
FIELDS: dict[str, tuple[str, ...]] = {
    "booked_on": ("date", "date operation", "date comptable", "booking date", "booked"),
    "amount": ("montant", "amount"),
    "credit": ("credit", "credits", "encaissement"),
    "debit": ("debit", "debits", "decaissement"),
    "currency": ("devise", "currency", "monnaie"),
    "debtor_name": ("nom", "payeur", "donneur ordre", "tiers", "debtor", "payer", "name"),
    "debtor_iban": ("iban", "iban payeur", "debtor iban", "compte payeur"),
    "remittance": ("libelle", "motif", "remittance", "description", "label", "details"),
    "reference": ("reference", "ref", "reference operation", "entry reference", "id"),
}
_KNOWN = {normalise(s): name for name, synonyms in FIELDS.items() for s in synonyms}


def recognise(header: list[str], saved: Mapping[str, str] | None) -> dict[str, int]:
    """Field -> column index: the saved mapping first, then the headers we know."""
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        field = (saved or {}).get(cell) or _KNOWN.get(normalise(cell))
        if field in FIELDS and field not in columns:
            columns[field] = index
    return columns


def saved_mapping(db: Session, company_id: int, header: list[str]) -> dict[str, str] | None:
    row = db.scalar(
        select(ImportMapping).where(
            ImportMapping.company_id == company_id,
            ImportMapping.signature == signature(header),
            ImportMapping.kind == KIND,
        )
    )
    return dict(row.columns) if row is not None else None


def save_mapping(
    db: Session, company_id: int, header: list[str], columns: Mapping[str, str], user_id: int | None
) -> None:
    """Keep ``columns`` (header text -> field) for files with this header row."""
    unknown = set(columns.values()) - set(FIELDS)
    if unknown or not set(columns) <= set(header):
        raise StatementError(N_("The column mapping names unknown columns or fields."))
    key = signature(header)
    row = db.scalar(
        select(ImportMapping).where(
            ImportMapping.company_id == company_id, ImportMapping.signature == key
        )
    )
    if row is None:
        row = ImportMapping(company_id=company_id, signature=key, kind=KIND, uses=0)
        db.add(row)
    row.kind = KIND
    row.columns = dict(columns)
    row.updated_by_user_id = user_id
    row.updated_at = clock.now()
    db.flush()


def header_of(data: bytes) -> list[str]:
    with _table(data) as table:
        return table.header


@contextmanager
def _table(data: bytes) -> Iterator[Table]:
    """The file's rows through the import readers; their errors become StatementError."""
    with tempfile.NamedTemporaryFile(suffix=".csv") as handle:
        handle.write(data)
        handle.flush()
        try:
            with open_table(Path(handle.name), MAX_ROWS) as table:
                yield table
        except ImportFileError as error:
            raise StatementError(error.message, **error.values) from None


def _date(value: Cell) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value or "").strip()
    for pattern in ("%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(text, pattern).replace(tzinfo=dt.UTC).date()
        except ValueError:
            continue
    raise ValueError(text)


def _amount(value: Cell, currency: str) -> int:
    text = str(value or "").strip()
    if not text:
        return 0
    negative = text.startswith("-")
    minor = parse_amount(text.lstrip("-+"), currency)
    return -minor if negative else minor


def parse(
    data: bytes, account_iban: str, account_currency: str, saved: Mapping[str, str] | None
) -> ParsedStatement:
    """The rows of a CSV export of ``account_iban``'s statement."""
    parsed = ParsedStatement("csv", account_iban, account_currency, "")
    with _table(data) as table:
        columns = recognise(table.header, saved)
        has_amount = "amount" in columns or "credit" in columns
        if "booked_on" not in columns or not has_amount:
            raise StatementError(
                N_(
                    "The columns of this file are not mapped: name at least the date and the "
                    "amount columns in the CSV column mapping."
                )
            )

        def cell(cells: list[Cell], field: str) -> Cell:
            index = columns.get(field)
            return cells[index] if index is not None and index < len(cells) else None

        for number, cells in table.rows:
            currency = str(cell(cells, "currency") or account_currency).strip().upper()
            try:
                booked = _date(cell(cells, "booked_on"))
                if "amount" in columns:
                    amount = _amount(cell(cells, "amount"), currency)
                else:
                    amount = _amount(cell(cells, "credit"), currency) - abs(
                        _amount(cell(cells, "debit"), currency)
                    )
            except ValueError:
                raise StatementError(
                    N_("Line %(line)d has a date or an amount that cannot be read."), line=number
                ) from None
            if amount == 0:
                continue
            text = [str(cell(cells, f) or "").strip() for f in ("debtor_name", "remittance")]
            reference = str(cell(cells, "reference") or "").strip()
            if not reference:
                raw = "\x1f".join(str(c) for c in cells).encode()
                reference = f"{booked.isoformat()}:{hashlib.sha256(raw).hexdigest()[:24]}"
            parsed.lines.append(
                ParsedLine(
                    entry_reference=reference[:128],
                    booked_on=booked,
                    amount_minor=abs(amount),
                    currency=currency,
                    credit=amount > 0,
                    debtor_name=text[0][:140],
                    debtor_iban=str(cell(cells, "debtor_iban") or "").replace(" ", "").upper(),
                    remittance=text[1][:500],
                )
            )
    return parsed
