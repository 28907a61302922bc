"""CAMT.053 (bank-to-customer statement), versions .001.02 and .001.08."""

from __future__ import annotations

from portal.bank import camt
from portal.bank.parsed import ParsedStatement


def parse(data: bytes) -> ParsedStatement:
    return camt.parse(data, "053")
