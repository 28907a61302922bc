"""Reminders about a payment plan's instalments: a few days before one falls due, and once
when it is late (before the grace period breaks the plan). Each is sent once."""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from portal import clock
from portal.cases import notify
from portal.cases.models import Case, CaseKind, CaseStatus, InstalmentReminder
from portal.cases.service import instalment_states
from portal.db import conflict_insert
from portal.links.tokens import LinkSigner
from portal.settings import Settings
from portal.timeline.models import Actor
from portal.timeline.service import record

DAYS_BEFORE = 3

_table = cast(Table, InstalmentReminder.__table__)


def _claim(session: Session, case_id: int, seq: int, kind: str) -> bool:
    """Record the reminder unless it was sent before (two workers, a rerun): one INSERT."""
    claimed = session.scalar(
        conflict_insert(session, _table)
        .values(case_id=case_id, seq=seq, kind=kind, sent_at=clock.now())
        .on_conflict_do_nothing(index_elements=["case_id", "seq", "kind"])
        .returning(_table.c.id)
    )
    return claimed is not None


def collect(
    session: Session, signer: LinkSigner, settings: Settings, today: dt.date
) -> list[notify.CaseEmail]:
    """The instalment reminders due today, claimed in this transaction; send them after it
    commits. Only a plan's first unpaid instalment is ever reminded about."""
    emails: list[notify.CaseEmail] = []
    plans = session.scalars(
        select(Case)
        .where(Case.kind == CaseKind.PLAN, Case.status == CaseStatus.ACTIVE)
        .order_by(Case.id)
    )
    for case in plans:
        unpaid = next((s for s in instalment_states(session, case) if not s.paid), None)
        if unpaid is None or today < unpaid.due_date - dt.timedelta(days=DAYS_BEFORE):
            continue
        kind = "due" if today <= unpaid.due_date else "overdue"
        if not _claim(session, case.id, unpaid.seq, kind):
            continue
        left = unpaid.amount_minor - unpaid.covered_minor
        record(
            session,
            company_id=case.company_id,
            customer_id=case.customer_id,
            actor=Actor.SYSTEM,
            action=f"plan.instalment_{kind}_reminded",
            subject_type="case",
            subject_id=case.id,
            details={
                "instalment": unpaid.seq,
                "due_date": unpaid.due_date.isoformat(),
                "amount_minor": left,
                "currency": case.currency,
            },
        )
        email = notify.debtor_email(
            session,
            signer,
            settings,
            case,
            f"instalment_{kind}",
            instalment=(unpaid.due_date, left),
        )
        if email is not None:
            emails.append(email)
    return emails
