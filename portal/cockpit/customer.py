"""The cockpit's figures for one customer, for the customer's page."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.cases.models import Case, CaseKind, CaseStatus
from portal.cockpit.aging import BUCKETS, AgingRow, aging
from portal.cockpit.commitments import broken_condition
from portal.cockpit.filters import Filters
from portal.cockpit.models import CustomerBehaviour


@dataclasses.dataclass(frozen=True)
class CustomerCockpit:
    behaviour: CustomerBehaviour | None
    aging: list[AgingRow]
    promises_kept: int
    promises_ended: int
    buckets: tuple[str, ...] = BUCKETS


def customer_cockpit(
    session: Session, company_id: int, customer_id: int, today: dt.date
) -> CustomerCockpit:
    filters = Filters(company_id, today, customer_id=customer_id)
    kept, broken = session.execute(
        select(
            func.count().filter(Case.status == CaseStatus.COMPLETED),
            func.count().filter(broken_condition()),
        ).where(Case.customer_id == customer_id, Case.kind == CaseKind.PROMISE)
    ).one()
    return CustomerCockpit(
        session.get(CustomerBehaviour, customer_id),
        aging(session, filters),
        int(kept),
        int(kept) + int(broken),
    )
