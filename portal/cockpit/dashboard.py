"""Everything the dashboard shows, loaded panel by panel, and each panel as a CSV file."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from portal.cockpit.aging import BUCKETS, AgingRow, aging
from portal.cockpit.commitments import AGE_LABELS, Commitments, commitments
from portal.cockpit.dso import WINDOWS, DsoFigures, DsoPanel, dso
from portal.cockpit.effectiveness import StepEffect, effectiveness
from portal.cockpit.filters import Filters
from portal.cockpit.forecast import SOURCES, Forecast, forecast
from portal.csvsafe import csv_text
from portal.money import format_plain

PANELS: dict[str, Callable[[Session, Filters], Any]] = {
    "aging": aging,
    "dso": dso,
    "commitments": commitments,
    "forecast": forecast,
    "effectiveness": effectiveness,
}


@dataclasses.dataclass(frozen=True)
class Dashboard:
    filters: Filters
    aging: list[AgingRow]
    dso: list[DsoPanel]
    commitments: Commitments
    forecast: list[Forecast]
    effectiveness: list[StepEffect]


def load(session: Session, filters: Filters) -> Dashboard:
    return Dashboard(filters, **{name: panel(session, filters) for name, panel in PANELS.items()})


def _days(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _aging_csv(rows: list[AgingRow]) -> str:
    header = ["currency", *BUCKETS, "total"]
    body = [
        [
            r.currency,
            *(format_plain(a, r.currency) for a in r.amounts),
            format_plain(r.total_minor, r.currency),
        ]
        for r in rows
    ]
    return csv_text(header, body, numeric=header[1:])


def _dso_line(currency: str, f: DsoFigures) -> list[str]:
    return [
        currency,
        f.day.isoformat(),
        format_plain(f.receivable_minor, currency),
        *(_days(f.simple[w]) for w in WINDOWS),
        _days(f.count_back),
    ]


def _dso_csv(panels: list[DsoPanel]) -> str:
    header = ["currency", "day", "receivable", *(f"simple_{w}_days" for w in WINDOWS), "count_back"]
    body = [_dso_line(p.currency, f) for p in panels for f in (*p.trend, p.now)]
    return csv_text(header, body, numeric=header[2:])


def _commitments_csv(c: Commitments) -> str:
    header = ["figure", "key", "value"]
    body: list[list[Any]] = [
        ["promises_due_this_week", cur, n] for cur, n, _amount in c.promises_due
    ]
    body += [["promises_due_amount", cur, format_plain(a, cur)] for cur, _n, a in c.promises_due]
    body += [
        ["promises_kept", "", c.promises_kept],
        ["promises_broken", "", c.promises_broken],
        ["plans_on_track", "", c.plans_on_track],
        ["plans_late", "", c.plans_late],
    ]
    body += [["disputes_by_reason", r, n] for r, n in c.disputes_by_reason().items()]
    body += [["disputes_by_age", a, c.disputes_by_age()[a]] for a in AGE_LABELS]
    return csv_text(header, body, numeric=["value"])


def _forecast_csv(panels: list[Forecast]) -> str:
    header = ["currency", "week_start", *SOURCES, "total"]
    body = [
        [
            p.currency,
            w.start.isoformat(),
            *(format_plain(a, p.currency) for a in w.amounts),
            format_plain(w.total_minor, p.currency),
        ]
        for p in panels
        for w in p.weeks
    ]
    body += [
        [
            p.currency,
            "later",
            *(format_plain(a, p.currency) for a in p.later),
            format_plain(sum(p.later), p.currency),
        ]
        for p in panels
    ]
    return csv_text(header, body, numeric=header[2:])


def _effectiveness_csv(rows: list[StepEffect]) -> str:
    header = ["scenario", "step", "channel", "invoices_reminded", "paid_within_7_days", "percent"]
    body = [
        [
            r.scenario,
            r.step,
            r.channel,
            r.reminded,
            r.paid_within,
            "" if r.percent is None else r.percent,
        ]
        for r in rows
    ]
    return csv_text(header, body, numeric=header[3:])


_CSV: dict[str, Callable[[Any], str]] = {
    "aging": _aging_csv,
    "dso": _dso_csv,
    "commitments": _commitments_csv,
    "forecast": _forecast_csv,
    "effectiveness": _effectiveness_csv,
}


def panel_csv(session: Session, filters: Filters, name: str) -> str:
    """The panel ``name`` (one of PANELS) as CSV text."""
    return _CSV[name](PANELS[name](session, filters))
