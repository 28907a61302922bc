"""Money: integer minor units with an ISO 4217 currency; never floats."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache

from babel import Locale
from babel.numbers import NumberPattern, format_decimal, get_currency_precision, parse_pattern

_PLAIN_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")


@cache
def minor_digits(currency: str) -> int:
    return int(get_currency_precision(currency))


@cache
def babel_locale(code: str) -> Locale:
    """Parsed once per process: Babel would otherwise parse the tag on every call."""
    return Locale.parse(code)


def to_decimal(amount_minor: int, currency: str) -> Decimal:
    return Decimal(amount_minor).scaleb(-minor_digits(currency))


@lru_cache(maxsize=16384)
def format_money(amount_minor: int, currency: str, locale: str) -> str:
    """``123456, "EUR", "fr"`` -> ``1 234,56 €`` (narrow no-break spaces, as Babel writes them)."""
    pattern, parsed = _currency_pattern(locale)
    return str(pattern.apply(to_decimal(amount_minor, currency), parsed, currency=currency))


@cache
def _currency_pattern(locale: str) -> tuple[NumberPattern, Locale]:
    parsed = babel_locale(locale)
    return parse_pattern(parsed.currency_formats["standard"]), parsed


def format_plain(amount_minor: int, currency: str) -> str:
    """Machine-readable decimal (CSV, QR codes): ``123456, "EUR"`` -> ``1234.56``."""
    return f"{to_decimal(amount_minor, currency):f}"


def format_for_input(amount_minor: int, currency: str, locale: str) -> str:
    """What a person types or pastes in their banking app: the locale's decimal sign, no
    grouping, no symbol (``54960, "EUR", "fr"`` -> ``549,60``); parse_amount reads it back."""
    digits = minor_digits(currency)
    pattern = "0." + "0" * digits if digits else "0"
    return str(
        format_decimal(to_decimal(amount_minor, currency), pattern, locale=babel_locale(locale))
    )


def parse_amount(text: str, currency: str) -> int:
    """A typed amount (``1 234,56`` or ``1234.56``) to minor units; ValueError if unreadable."""
    cleaned = text.strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "")
    if "," in cleaned and "." in cleaned:
        # Whichever separator comes last is the decimal one; the other groups thousands.
        grouping = "." if cleaned.rfind(",") > cleaned.rfind(".") else ","
        cleaned = cleaned.replace(grouping, "")
    cleaned = cleaned.replace(",", ".")
    if not _PLAIN_DECIMAL.match(cleaned):
        raise ValueError(text)
    try:
        value = Decimal(cleaned)
    except ArithmeticError:
        raise ValueError(text) from None
    if not value.is_finite():
        raise ValueError(text)
    scaled = value.scaleb(minor_digits(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(text)
    return int(scaled)


@dataclass(frozen=True)
class Allocation:
    key: int
    amount_minor: int


def allocate(
    amount_minor: int, remaining: Sequence[tuple[int, int]]
) -> tuple[list[Allocation], int]:
    """Spread ``amount_minor`` over ``(key, remaining)`` pairs in the order given.

    Returns the allocations and what is left over (the customer's credit). The
    allocations plus the credit always equal the amount; nothing is negative.
    """
    if amount_minor < 0:
        raise ValueError("cannot allocate a negative amount")
    left = amount_minor
    allocations: list[Allocation] = []
    for key, due in remaining:
        if left == 0:
            break
        part = min(left, max(due, 0))
        if part > 0:
            allocations.append(Allocation(key, part))
            left -= part
    return allocations, left
