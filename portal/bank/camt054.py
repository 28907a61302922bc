"""CAMT.054 (bank-to-customer debit/credit notification), versions .001.02 and .001.08."""

from __future__ import annotations

from portal.bank import camt
from portal.bank.parsed import ParsedStatement


def parse(data: bytes) -> ParsedStatement:
    return camt.parse(data, "054")
