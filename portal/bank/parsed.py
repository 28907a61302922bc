"""What a parser reads from a statement file: plain values, no database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ParsedLine:
    """One booked entry (or one transaction of a batch entry).

    ``amount_minor`` is positive; ``credit`` says which way the money went (credit: into
    the company's account). ``entry_reference`` is the bank's own reference for the entry,
    the deduplication key with the account.
    """

    entry_reference: str
    booked_on: dt.date
    amount_minor: int
    currency: str
    credit: bool
    debtor_name: str = ""
    debtor_iban: str = ""
    remittance: str = ""
    structured_reference: str = ""
    end_to_end_id: str = ""


@dataclass
class ParsedStatement:
    format: str  # "camt.053", "camt.054", "cfonb120", "csv"
    account_iban: str
    currency: str | None
    statement_id: str
    lines: list[ParsedLine] = field(default_factory=list)
