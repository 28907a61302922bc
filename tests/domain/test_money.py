from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.money import allocate, format_money, format_plain, parse_amount


def test_french_and_english_formatting() -> None:
    assert format_money(123456, "EUR", "fr") == "1\u202f234,56\xa0€"
    assert format_money(123456, "EUR", "en") == "€1,234.56"
    assert format_money(5000, "JPY", "fr") == "5\u202f000\xa0JPY"
    assert format_plain(123456, "EUR") == "1234.56"
    assert format_plain(7, "EUR") == "0.07"


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("1 234,56", 123456),
        ("1234.56", 123456),
        ("1.234,56", 123456),
        ("1,234.56", 123456),
        ("12", 1200),
        ("0,5", 50),
    ],
)
def test_parse_amount(text: str, minor: int) -> None:
    assert parse_amount(text, "EUR") == minor


@pytest.mark.parametrize("text", ["", "abc", "1.2345", "NaN", "Infinity", "0.001", "1e3"])
def test_parse_amount_refuses_what_it_cannot_read_exactly(text: str) -> None:
    with pytest.raises(ValueError, match=r".*"):
        parse_amount(text, "EUR")


@given(
    st.integers(min_value=0, max_value=10**12),
    st.lists(st.tuples(st.integers(1, 10**6), st.integers(-(10**6), 10**9)), max_size=30),
)
def test_allocation_never_creates_or_loses_a_cent(
    amount: int, remaining: list[tuple[int, int]]
) -> None:
    allocations, credit = allocate(amount, remaining)
    assert sum(a.amount_minor for a in allocations) + credit == amount
    assert credit >= 0
    assert all(a.amount_minor > 0 for a in allocations)
    caps = {}
    for key, due in remaining:
        caps.setdefault(key, max(due, 0))
    for allocation in allocations:
        assert allocation.amount_minor <= max(
            due for key, due in remaining if key == allocation.key
        )
    # Credit only when every open amount got all it could.
    if credit > 0:
        assert sum(a.amount_minor for a in allocations) == sum(max(d, 0) for _k, d in remaining)
