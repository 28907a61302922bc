"""CSV cells a spreadsheet would run as formulas are neutralised; numbers stay numbers."""

from __future__ import annotations

import csv
import decimal
import io
import re

from hypothesis import given
from hypothesis import strategies as st

from portal.csvsafe import FORMULA_PREFIXES, csv_text, neutralise


def _read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_formula_prefixes_are_neutralised_and_numbers_kept() -> None:
    rows = [
        ['=HYPERLINK("http://evil.example","Click")', "-12.50", -7, "+33 6 12 34 56 78"],
        ["@SUM(A1:A2)", "\tTAB", "\rCR", "-1+cmd|' /C calc'!A0"],
        ["F-2026-001", "12", decimal.Decimal("-3.20"), "plain"],
    ]
    assert _read(csv_text(["a", "b", "c", "d"], rows, numeric=["b", "c"])) == [
        ["a", "b", "c", "d"],
        ['\'=HYPERLINK("http://evil.example","Click")', "-12.50", "-7", "'+33 6 12 34 56 78"],
        ["'@SUM(A1:A2)", "'\tTAB", "'\rCR", "'-1+cmd|' /C calc'!A0"],
        ["F-2026-001", "12", "-3.20", "plain"],
    ]
    # In a text column, even a number-like text is text.
    assert _read(csv_text(["a", "b"], [["-12.50", "-12.50"]], numeric=["b"]))[1] == [
        "'-12.50",
        "-12.50",
    ]


@given(st.text(), st.booleans())
def test_no_text_cell_starts_like_a_formula_unless_it_is_a_number(
    value: str, numeric: bool
) -> None:
    cell = neutralise(value, numeric=numeric)
    if cell != value:
        assert cell == "'" + value
    assert isinstance(cell, str)
    if cell.startswith(FORMULA_PREFIXES):
        assert numeric  # only a plain signed number, in a numeric column
        assert re.fullmatch(r"[+-][0-9]+(\.[0-9]+)?", cell)
    _header, row = _read(csv_text(["x"], [[value]], numeric=["x"] if numeric else []))
    assert row == [cell]
