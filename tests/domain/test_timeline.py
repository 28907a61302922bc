from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from portal.company.models import Company
from portal.timeline.models import Actor
from portal.timeline.service import TimelineIsAppendOnly, customer_timeline, record
from tests.factories import make_customer


def test_timeline_events_cannot_be_rewritten(db: Session, company: Company) -> None:
    customer = make_customer(db, company)
    event = record(
        db,
        company_id=company.id,
        customer_id=customer.id,
        actor=Actor.SYSTEM,
        action="test.happened",
        details={"n": 1},
    )
    db.flush()
    assert customer_timeline(db, customer.id) == [event]
    event.action = "test.rewritten"
    with pytest.raises(TimelineIsAppendOnly):
        db.flush()


def test_timeline_events_cannot_be_deleted(db: Session, company: Company) -> None:
    customer = make_customer(db, company)
    event = record(
        db,
        company_id=company.id,
        customer_id=customer.id,
        actor=Actor.SYSTEM,
        action="test.happened",
    )
    db.flush()
    db.delete(event)
    with pytest.raises(TimelineIsAppendOnly):
        db.flush()
