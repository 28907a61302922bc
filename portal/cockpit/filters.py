"""What every panel is narrowed to: segment, currency, owner, and the day it is seen from.

``parse`` reads the dashboard's GET form (plain strings) and returns the filters with a
translated message per field it could not use; a bad field is dropped, not guessed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, select, true

from portal.customers.models import Customer, RiskSegment
from portal.i18n import gettext_ as _

_CURRENCY = re.compile(r"[A-Z]{3}")
# The aging may look back a long way, never into the future nor before records begin.
EARLIEST = dt.date(2000, 1, 1)


@dataclasses.dataclass(frozen=True)
class Filters:
    company_id: int
    as_of: dt.date
    segment: RiskSegment | None = None
    currency: str | None = None
    owner_id: int | None = None
    customer_id: int | None = None

    def customers(self, customer_id: Any) -> ColumnElement[bool]:
        """A condition on a ``customer_id`` column: the customers these filters keep."""
        if self.customer_id is not None:
            same: ColumnElement[bool] = customer_id == self.customer_id
            return same
        if self.segment is None and self.owner_id is None:
            return true()
        chosen = select(Customer.id).where(Customer.company_id == self.company_id)
        if self.segment is not None:
            chosen = chosen.where(Customer.risk_segment == self.segment)
        if self.owner_id is not None:
            chosen = chosen.where(Customer.owner_user_id == self.owner_id)
        kept: ColumnElement[bool] = customer_id.in_(chosen)
        return kept

    def currencies(self, currency: Any) -> ColumnElement[bool]:
        if self.currency is None:
            return true()
        same: ColumnElement[bool] = currency == self.currency
        return same

    def query(self) -> dict[str, str]:
        """The filters as the GET form's fields (CSV links and charts keep them)."""
        values = {
            "as_of": self.as_of.isoformat(),
            "segment": self.segment.value if self.segment else "",
            "currency": self.currency or "",
            "owner": str(self.owner_id) if self.owner_id is not None else "",
        }
        return {key: value for key, value in values.items() if value}


def parse(
    company_id: int, today: dt.date, params: Mapping[str, str], owners: set[int]
) -> tuple[Filters, dict[str, str]]:
    """Filters from the form's fields; ``owners`` are the user ids one may filter on."""
    errors: dict[str, str] = {}
    as_of = today
    raw = params.get("as_of", "").strip()
    if raw:
        try:
            as_of = dt.date.fromisoformat(raw)
        except ValueError:
            errors["as_of"] = _("Enter a date such as 2026-12-31.")
        else:
            if not EARLIEST <= as_of <= today:
                errors["as_of"] = _("Choose a date between 2000-01-01 and today.")
                as_of = today
    segment = None
    raw = params.get("segment", "").strip()
    if raw:
        try:
            segment = RiskSegment(raw)
        except ValueError:
            errors["segment"] = _("Choose a risk segment.")
    currency = None
    raw = params.get("currency", "").strip().upper()
    if raw:
        if _CURRENCY.fullmatch(raw):
            currency = raw
        else:
            errors["currency"] = _("Enter a three-letter currency code such as EUR.")
    owner_id = None
    raw = params.get("owner", "").strip()
    if raw:
        if raw.isdigit() and int(raw) in owners:
            owner_id = int(raw)
        else:
            errors["owner"] = _("Choose a credit manager.")
    filters = Filters(company_id, as_of, segment=segment, currency=currency, owner_id=owner_id)
    return filters, errors
