"""The company's limits on reminding: a cap per customer per 30 days, yearly quiet periods
and a switch that freezes every reminder (with a reason), kept in ``reminder_policies``.

The cap is checked twice: at planning (pending, in-flight and sent messages count) and at
send time (sent and in-flight ones), so no customer ever receives more than the cap in
any 30 days, whatever the scenarios, the manual sends and the runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from portal import clock
from portal.changes import FieldErrors
from portal.i18n import gettext_ as _
from portal.reminders.models import Channel, MessageStatus, ReminderMessage, ReminderPolicy
from portal.reminders.quiet import (
    QuietPeriod,
    QuietPeriodError,
    first_day_after,
    is_quiet,
    parse_quiet_periods,
)
from portal.settings import ReminderSettings
from portal.timeline.models import Actor
from portal.timeline.service import record

CAP_WINDOW = dt.timedelta(days=30)
REASON_MAX = 500


@dataclass(frozen=True)
class Policy:
    monthly_cap: int
    quiet_periods: tuple[QuietPeriod, ...]
    frozen: bool = False
    frozen_reason: str = ""
    frozen_at: dt.datetime | None = None
    call_wait_days: int = 7

    def is_quiet(self, day: dt.date) -> bool:
        return is_quiet(self.quiet_periods, day)

    def quiet_until(self, day: dt.date) -> dt.date:
        """The first day from ``day`` on outside every quiet period."""
        return first_day_after(self.quiet_periods, day)

    @property
    def quiet_text(self) -> str:
        return ", ".join(str(period) for period in self.quiet_periods)


def load_policy(
    session: Session, company_id: int, defaults: ReminderSettings | None = None
) -> Policy:
    defaults = defaults or ReminderSettings()
    row = session.scalar(select(ReminderPolicy).where(ReminderPolicy.company_id == company_id))
    quiet = row.quiet_periods if row is not None and row.quiet_periods is not None else None
    return Policy(
        monthly_cap=row.monthly_cap
        if row is not None and row.monthly_cap
        else defaults.monthly_cap,
        quiet_periods=parse_quiet_periods(quiet if quiet is not None else defaults.quiet_periods),
        frozen=bool(row and row.frozen),
        frozen_reason=row.frozen_reason if row is not None else "",
        frozen_at=row.frozen_at if row is not None else None,
        call_wait_days=defaults.call_wait_days,
    )


def _row(session: Session, company_id: int) -> ReminderPolicy:
    row = session.scalar(
        select(ReminderPolicy).where(ReminderPolicy.company_id == company_id).with_for_update()
    )
    if row is None:
        row = ReminderPolicy(company_id=company_id, frozen=False, frozen_reason="")
        session.add(row)
        session.flush()
    return row


def _event(session: Session, company_id: int, user_id: int, action: str, **details: object) -> None:
    record(
        session,
        company_id=company_id,
        actor=Actor.USER,
        actor_id=str(user_id),
        action=action,
        subject_type="reminder_policy",
        subject_id=company_id,
        details=dict(details),
    )


def save_limits(
    session: Session, company_id: int, user_id: int, *, monthly_cap: str, quiet_periods: str
) -> None:
    """The cap and the quiet periods from the back-office form; FieldErrors changes nothing."""
    errors: dict[str, str] = {}
    cap: int | None = None
    try:
        cap = int(monthly_cap.strip())
        if not 1 <= cap <= 60:
            raise ValueError
    except ValueError:
        errors["monthly_cap"] = _("Enter a whole number of messages between 1 and 60.")
    try:
        periods = parse_quiet_periods(quiet_periods)
    except QuietPeriodError:
        errors["quiet_periods"] = _(
            "Write each period as MM-DD..MM-DD, separated by commas (for example 08-01..08-31)."
        )
        periods = ()
    if errors:
        raise FieldErrors(errors)
    row = _row(session, company_id)
    text = ", ".join(str(period) for period in periods)
    before = {"monthly_cap": row.monthly_cap, "quiet_periods": row.quiet_periods}
    row.monthly_cap = cap
    row.quiet_periods = text
    row.updated_at = clock.now()
    _event(
        session,
        company_id,
        user_id,
        "reminders.policy_changed",
        before=before,
        after={"monthly_cap": cap, "quiet_periods": text},
    )


def set_frozen(
    session: Session, company_id: int, user_id: int, *, frozen: bool, reason: str
) -> None:
    """Freeze every reminder (planning and sending stop) with a reason, or thaw them."""
    reason = reason.strip()
    if frozen and not reason:
        raise FieldErrors({"reason": _("Say why reminders are frozen.")})
    if len(reason) > REASON_MAX:
        raise FieldErrors({"reason": _("At most 500 characters.")})
    row = _row(session, company_id)
    if row.frozen == frozen:
        return
    row.frozen = frozen
    row.frozen_reason = reason if frozen else ""
    row.frozen_at = clock.now() if frozen else None
    row.frozen_by_user_id = user_id if frozen else None
    row.updated_at = clock.now()
    _event(
        session,
        company_id,
        user_id,
        "reminders.frozen" if frozen else "reminders.unfrozen",
        reason=reason,
    )


def counts_towards_cap(since: dt.datetime, *, pending: bool) -> ColumnElement[bool]:
    """Messages that count towards the cap: sent in the window, in flight, and (when
    planning) waiting to leave. Calls are not messages; cancelled, failed and bounced ones
    never reached the customer."""
    live = [
        and_(ReminderMessage.status == MessageStatus.SENT, ReminderMessage.sent_at >= since),
        ReminderMessage.status == MessageStatus.SENDING,
    ]
    if pending:
        live.append(ReminderMessage.status == MessageStatus.PENDING)
    return and_(ReminderMessage.channel != Channel.TASK, or_(*live))


def counted_messages(
    session: Session,
    customer_ids: Iterable[int],
    now: dt.datetime,
    *,
    pending: bool,
    excluding: Iterable[int] = (),
) -> dict[int, int]:
    """Per customer, the messages that count towards the cap now, but ``excluding``."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    query = (
        select(ReminderMessage.customer_id, func.count())
        .where(
            ReminderMessage.customer_id.in_(ids),
            counts_towards_cap(now - CAP_WINDOW, pending=pending),
        )
        .group_by(ReminderMessage.customer_id)
    )
    excluded = sorted(set(excluding))
    if excluded:
        query = query.where(ReminderMessage.id.not_in(excluded))
    return {int(customer_id): int(count) for customer_id, count in session.execute(query)}
