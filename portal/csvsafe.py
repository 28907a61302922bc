"""CSV files that spreadsheets open safely: every export goes through ``writer``.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a
formula by Excel, LibreOffice and Google Sheets (``=HYPERLINK(...)``, ``=cmd|...``). As
OWASP advises ("CSV Injection"), such text cells get a leading apostrophe, which the
spreadsheet shows as text; the csv module quotes what needs quoting.

Numbers stay numbers, decided per column: ints and Decimals are written as they are, and
in a column declared numeric (``numeric=`` by header name) a text cell that is exactly a
plain decimal number (``-12.50``, as ``money.format_plain`` writes amounts) is left alone,
since a spreadsheet reads it as a number, never as a formula. Every other text cell is
neutralised, numeric column or not: an invoice number ``-2`` or ``+33 6 12`` in a text
column, or ``-1+cmd|...`` anywhere, gets the apostrophe.
"""

from __future__ import annotations

import csv
import decimal
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")

Cell = str | int | decimal.Decimal | None


class _Writable(Protocol):
    def write(self, s: str, /) -> Any: ...


def neutralise(value: Cell, *, numeric: bool = False) -> str | int | decimal.Decimal:
    """The cell as written: text that a spreadsheet would run gets a leading apostrophe
    (in a ``numeric`` column, a plain decimal number is kept as it is)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return value
    if not value.startswith(FORMULA_PREFIXES):
        return value
    if numeric and _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


class SafeWriter:
    """``csv.writer`` with every cell neutralised; CRLF line ends, as RFC 4180 says.
    ``numeric_columns``: the positions of the columns that hold numbers."""

    def __init__(self, out: _Writable, numeric_columns: Iterable[int] = ()) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")
        self._numeric = frozenset(numeric_columns)

    def writerow(self, row: Iterable[Cell]) -> None:
        self._writer.writerow(
            [neutralise(cell, numeric=n in self._numeric) for n, cell in enumerate(row)]
        )

    def writerows(self, rows: Iterable[Iterable[Cell]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out: _Writable, header: Sequence[str] = (), numeric: Iterable[str] = ()) -> SafeWriter:
    """A safe writer; ``numeric`` names the columns of ``header`` that hold numbers."""
    wanted = set(numeric)
    unknown = wanted - set(header)
    if unknown:
        raise ValueError(f"numeric columns not in the header: {sorted(unknown)}")
    return SafeWriter(out, [n for n, name in enumerate(header) if name in wanted])


def csv_text(
    header: Sequence[str], rows: Iterable[Iterable[Cell]], numeric: Iterable[str] = ()
) -> str:
    """A whole CSV file as text: the header, then the rows."""
    buffer = io.StringIO()
    out = writer(buffer, header, numeric)
    out.writerow(header)
    out.writerows(rows)
    return buffer.getvalue()
