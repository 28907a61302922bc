"""Late-payment penalties and the fixed recovery indemnity (French commercial code).

Article L441-10: late-payment penalties at the ECB's refinancing rate plus 10 points,
and a fixed indemnity for recovery costs; article D441-5 sets it at 40 EUR per invoice.
Everything is integer minor units: a rate in basis points, days over 365, rounded half up.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

PENALTY_MARGIN_BASIS_POINTS = 1000  # 10 percentage points over the ECB rate
RECOVERY_INDEMNITY_EUR_MINOR = 4000  # 40 EUR
DAYS_PER_YEAR = 365


def basis_points(percent: str) -> int:
    """``"4.15"`` -> 415."""
    return int(Decimal(percent) * 100)


@dataclass(frozen=True)
class LateCharges:
    days_late: int
    rate_basis_points: int
    penalty_minor: int
    indemnity_minor: int  # 0 when the invoice is not in euros

    @property
    def total_minor(self) -> int:
        return self.penalty_minor + self.indemnity_minor


def late_charges(
    remaining_minor: int, currency: str, due: dt.date, today: dt.date, ecb_rate_percent: str
) -> LateCharges:
    days = max((today - due).days, 0)
    rate = basis_points(ecb_rate_percent) + PENALTY_MARGIN_BASIS_POINTS
    numerator = remaining_minor * rate * days
    denominator = 10_000 * DAYS_PER_YEAR
    penalty = (2 * numerator + denominator) // (2 * denominator) if days and rate > 0 else 0
    indemnity = RECOVERY_INDEMNITY_EUR_MINOR if days and currency == "EUR" else 0
    return LateCharges(days, rate, penalty, indemnity)
