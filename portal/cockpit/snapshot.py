"""The whole-company dashboard computed ahead, so the page does not read the whole book on
each view (over a million invoices the panels take seconds; the page has one).

``refresh`` computes every panel as ``dashboard.load`` does and stores the figures in one
row per company (``dashboard_snapshots``); the worker calls it every round once the row is
``REFRESH_AFTER`` old, so the figures lag the writes by at most about that plus a worker
round. ``load`` serves the row when the page asks for the whole company as of the day it
was computed for and it is at most ``MAX_AGE`` old; otherwise (a segment, currency or owner
chosen, another day, no fresh row) it computes the panels live, as before. The page says
which: "figures as of HH:MM" or nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import types
import typing
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.cockpit import dashboard
from portal.cockpit.dashboard import Dashboard
from portal.cockpit.filters import Filters
from portal.cockpit.models import DashboardSnapshot
from portal.db import conflict_insert

REFRESH_AFTER = dt.timedelta(minutes=5)
MAX_AGE = dt.timedelta(minutes=15)
_PANEL_TYPES = typing.get_type_hints(Dashboard)


def encode(value: Any) -> Any:
    """A panel's figures as JSON values (dataclasses as objects, dates as ISO text)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return [[encode(key), encode(item)] for key, item in value.items()]
    return value


def decode(kind: Any, value: Any) -> Any:
    """``encode``'s output back into ``kind`` (the type the panel declares)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return decode(inner, value)
    if origin is list:
        return [decode(args[0], item) for item in value]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], item) for item in value)
        return tuple(decode(a, item) for a, item in zip(args, value, strict=True))
    if origin is dict:
        return {decode(args[0], key): decode(args[1], item) for key, item in value}
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        fields = {f.name: decode(hints[f.name], value[f.name]) for f in dataclasses.fields(kind)}
        return kind(**fields)
    if kind is dt.date:
        return dt.date.fromisoformat(value)
    if kind is float and isinstance(value, int):
        return float(value)
    return value


def whole_company(filters: Filters) -> bool:
    return (filters.segment, filters.currency, filters.owner_id, filters.customer_id) == (
        None,
        None,
        None,
        None,
    )


def refresh(session: Session, company_id: int, today: dt.date) -> DashboardSnapshot:
    """Compute the whole-company dashboard as of ``today`` and store it (one row)."""
    started = time.perf_counter()
    board = dashboard.load(session, Filters(company_id, today))
    took_ms = round((time.perf_counter() - started) * 1000)
    values = {
        "company_id": company_id,
        "as_of": today,
        "computed_at": clock.now(),
        "took_ms": took_ms,
        "panels": {name: encode(getattr(board, name)) for name in dashboard.PANELS},
    }
    table = DashboardSnapshot.__table__
    statement = conflict_insert(session, table).values(values)  # type: ignore[arg-type]
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["company_id"],
            set_={k: v for k, v in values.items() if k != "company_id"},
        )
    )
    snapshot = session.get(DashboardSnapshot, company_id, populate_existing=True)
    assert snapshot is not None
    return snapshot


def refresh_if_due(session: Session, company_id: int, today: dt.date) -> bool:
    """Refresh when the row is ``REFRESH_AFTER`` old, or for another day; True if it did."""
    snapshot = session.get(DashboardSnapshot, company_id)
    fresh = (
        snapshot is not None
        and snapshot.as_of == today
        and clock.now() - snapshot.computed_at < REFRESH_AFTER
    )
    if fresh:
        return False
    refresh(session, company_id, today)
    return True


def fresh_snapshot(session: Session, filters: Filters) -> DashboardSnapshot | None:
    """The stored dashboard these filters may be answered with, if any."""
    if not whole_company(filters):
        return None
    snapshot = session.scalar(
        select(DashboardSnapshot)
        .where(DashboardSnapshot.company_id == filters.company_id)
        .execution_options(populate_existing=True)
    )
    if snapshot is None or snapshot.as_of != filters.as_of:
        return None
    if clock.now() - snapshot.computed_at > MAX_AGE:
        return None
    return snapshot


def panel(session: Session, filters: Filters, name: str) -> Any:
    """One panel's figures: from the fresh snapshot when there is one, else live."""
    snapshot = fresh_snapshot(session, filters)
    if snapshot is None:
        return dashboard.PANELS[name](session, filters)
    return decode(_PANEL_TYPES[name], snapshot.panels[name])


def load(session: Session, filters: Filters) -> tuple[Dashboard, dt.datetime | None]:
    """The dashboard, and when its figures were computed (None: just now, live)."""
    snapshot = fresh_snapshot(session, filters)
    if snapshot is None:
        return dashboard.load(session, filters), None
    panels = {name: decode(_PANEL_TYPES[name], snapshot.panels[name]) for name in dashboard.PANELS}
    return Dashboard(filters, **panels), snapshot.computed_at
