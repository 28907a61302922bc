"""Cells in their plain shape, read by PostgreSQL: SQL expressions that give a cell's typed
value when it is written the way exports usually write it (``31/12/2026``, ``1234,56``, a
reference without surrounding spaces), else NULL. Dates are looked up in a calendar table.

Each expression accepts only cells for which ``portal.imports.rows`` gives exactly the same
value; any other cell (``1.234,56 €``, ``31-12-26``, an invalid date) is not plain, and its
row is read by ``rows.invoice_row`` in Python: the rules and messages stay in one place,
and the SQL never raises on a cell.
"""

from __future__ import annotations

# Every character str.split() and str.strip() treat as white space (all below U+3001),
# as a pattern's class, and the code points of those above the space (those up to 32 are
# excluded whole where first and last characters are compared).
_WHITESPACE = tuple(code for code in range(0x3001) if chr(code).isspace())
WHITE = "[" + "".join(f"\\u{code:04x}" for code in _WHITESPACE) + "]"
NOT_WHITE = WHITE.replace("[", "[^", 1)
WHITE_ABOVE_SPACE = ", ".join(str(code) for code in _WHITESPACE if code > 32)

# What parse_money reads as it is: digits, an optional sign, decimals after , or . and,
# with a decimal comma, thousands grouped by plain spaces.
AMOUNT = r"^-?([0-9]{1,15}([.,][0-9]{1,2})?|[0-9]{1,3}( [0-9]{3}){1,4}(,[0-9]{1,2})?)$"
CENTS = r"^-?[0-9]{1,15},[0-9]{2}$"  # the usual shape, read without a decimal


def literal(pattern: str) -> str:
    return "'" + pattern.replace("'", "''") + "'"


def blank(cell: str) -> str:
    """The cell is empty (rows.text() gives "")."""
    return f"coalesce({cell}, '') = ''"


def trimmed(cell: str, limit: int) -> str:
    """The cell as rows.text() gives it, when stripping changes nothing and it is at most
    ``limit`` characters; NULL otherwise (and for an empty cell). Its first and last
    characters are compared by code point (``ascii()``): cheaper than a pattern."""
    ends = (f"ascii({cell})", f"ascii(right({cell}, 1))")
    checks = " AND ".join(f"{end} > 32 AND {end} NOT IN ({WHITE_ABOVE_SPACE})" for end in ends)
    return f"CASE WHEN {cell} <> '' AND char_length({cell}) <= {limit} AND {checks} THEN {cell} END"


def single_spaced(value: str) -> str:
    """Unchanged by " ".join(value.split()): words separated by single plain spaces."""
    word = f"{NOT_WHITE}+"
    return f"{value} ~ {literal(f'^{word}( {word})*$')}"


# Every day from 1970 to 2099 as dd/mm/yyyy and as yyyy-mm-dd: a cell found here is a plain
# date (a hash join, far cheaper than checking each cell); any other is read in Python.
DAYS_TABLE = "import_days"
DAYS = """
CREATE TEMP TABLE import_days ON COMMIT DROP AS
SELECT to_char(d, 'DD/MM/YYYY') AS text, CAST(d AS date) AS day
FROM generate_series(DATE '1970-01-01', DATE '2099-12-31', interval '1 day') AS d
UNION ALL
SELECT to_char(d, 'YYYY-MM-DD'), CAST(d AS date)
FROM generate_series(DATE '1970-01-01', DATE '2099-12-31', interval '1 day') AS d
"""


def amount(cell: str) -> str:
    """An amount of a currency with two decimals, in minor units; else NULL."""
    number = f"replace(replace({cell}, ' ', ''), ',', '.')::numeric"
    return (
        f"CASE WHEN {cell} ~ {literal(CENTS)} THEN replace({cell}, ',', '')::bigint "
        f"WHEN {cell} ~ {literal(AMOUNT)} THEN ({number} * 100)::bigint END"
    )


def currency(cell: str | None) -> str:
    """The row's currency when it is the default (empty cell) or a code given as it is, of
    a currency with two decimals (``:plain_currencies``); else NULL."""
    if cell is None:
        return (
            "CASE WHEN CAST(:default_currency AS text) = ANY(CAST(:plain_currencies AS text[])) "
            "THEN CAST(:default_currency AS text) END"
        )
    return (
        f"CASE WHEN {blank(cell)} THEN "
        "(CASE WHEN CAST(:default_currency AS text) = ANY(CAST(:plain_currencies AS text[])) "
        "THEN CAST(:default_currency AS text) END) "
        f"WHEN {cell} = CAST(:default_currency AS text) THEN {cell} "  # the usual case, first
        f"WHEN {cell} = ANY(CAST(:plain_currencies AS text[])) THEN {cell} END"
    )
