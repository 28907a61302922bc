"""The scenario book as a document (the TOML file's shape): checks that name the field at
fault, and the TOML text it exports to.

A document is ``{"min_gap_days": int, "segments": {segment: scenario},
"scenarios": {name: {"label": str, "steps": [step, ...]}}}``; a step is ``{"key", "days",
"channel", "template"}`` with an optional condition (``segments``, ``min_amount_minor`` and
``currency``). Steps are kept in date order.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass
from typing import Any

from portal.reminders.models import Channel
from portal.reminders.scenarios import (
    CURRENCY,
    SEGMENT_KEYS,
    ScenarioBook,
    ScenarioError,
    parse_scenarios,
    template_exists,
)

Document = dict[str, Any]
NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
# Paths of the editor that a scenario name would hide.
RESERVED_NAMES = frozenset({"history", "import", "new", "settings"})
MIN_DAYS, MAX_DAYS = -90, 365
MAX_GAP_DAYS = 60
MAX_STEPS = 20


@dataclass(frozen=True)
class Problem:
    """What is wrong and where: ``where`` is a scenario name, a step key or a settings
    field; ``field`` the form field; ``reason`` a code the web layer words."""

    where: str
    field: str
    reason: str
    values: dict[str, Any] = dataclasses.field(default_factory=dict)


class InvalidDocument(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.where}.{p.field}: {p.reason}" for p in problems))
        self.problems = problems


def clone(document: Document) -> Document:
    return copy.deepcopy(document)


def _step_problems(name: str, steps: list[dict[str, Any]], gap: int) -> list[Problem]:
    problems: list[Problem] = []
    seen_days: dict[int, str] = {}
    previous_message: dict[str, Any] | None = None
    for step in steps:
        key = str(step.get("key", ""))
        days = step.get("days")
        if not isinstance(days, int) or not MIN_DAYS <= days <= MAX_DAYS:
            problems.append(Problem(key, "days", "days_range", {"low": MIN_DAYS, "high": MAX_DAYS}))
            continue
        try:
            channel = Channel(str(step.get("channel")))
        except ValueError:
            problems.append(Problem(key, "channel", "channel"))
            continue
        if not template_exists(channel, str(step.get("template", ""))):
            problems.append(
                Problem(key, "template", "unknown_template", {"template": step.get("template")})
            )
        if days in seen_days:
            problems.append(Problem(key, "days", "same_day", {"other": seen_days[days]}))
        seen_days[days] = key
        unknown = [s for s in step.get("segments", ()) if s not in SEGMENT_KEYS]
        if unknown:
            problems.append(Problem(key, "segments", "segments", {"segments": unknown}))
        minimum = step.get("min_amount_minor", 0)
        if minimum and not CURRENCY.fullmatch(str(step.get("currency", ""))):
            problems.append(Problem(key, "currency", "currency"))
        if channel is Channel.TASK:
            continue  # call tasks are not messages: the minimum gap does not hold them
        if previous_message is not None and 0 < days - previous_message["days"] < gap:
            # Held back until the gap has passed; by then a later step may have been reached
            # (it wins): this step could never go out.
            earliest = previous_message["days"] + gap
            later = [s for s in steps if isinstance(s.get("days"), int) and s["days"] > days]
            if later and min(s["days"] for s in later) <= earliest:
                problems.append(
                    Problem(
                        key,
                        "days",
                        "gap",
                        {
                            "other": previous_message["key"],
                            "apart": days - previous_message["days"],
                            "gap": gap,
                        },
                    )
                )
        previous_message = step
    days_in_order = [_day_of(s) for s in steps]
    if days_in_order != sorted(days_in_order) and not problems:
        problems.append(Problem(name, "steps", "order"))
    if not steps:
        problems.append(Problem(name, "steps", "no_steps"))
    if len(steps) > MAX_STEPS:
        problems.append(Problem(name, "steps", "too_many", {"limit": MAX_STEPS}))
    return problems


def delays(document: Document) -> list[Problem]:
    """Steps the minimum gap holds back (they go out later than their day): worth saying,
    not refusing."""
    gap = document.get("min_gap_days")
    found: list[Problem] = []
    if not isinstance(gap, int):
        return found
    for body in (document.get("scenarios") or {}).values():
        previous: dict[str, Any] | None = None
        for step in body.get("steps", []):
            if step.get("channel") == Channel.TASK or not isinstance(step.get("days"), int):
                continue
            if previous is not None and 0 < step["days"] - previous["days"] < gap:
                found.append(
                    Problem(
                        step["key"],
                        "days",
                        "delayed",
                        {"other": previous["key"], "on": previous["days"] + gap},
                    )
                )
            previous = step
    return found


def check(document: Document) -> list[Problem]:
    """Every problem of ``document``, most precise first; an empty list: it can be saved."""
    problems: list[Problem] = []
    gap = document.get("min_gap_days")
    if not isinstance(gap, int) or not 0 <= gap <= MAX_GAP_DAYS:
        problems.append(Problem("settings", "min_gap_days", "gap_range", {"high": MAX_GAP_DAYS}))
        gap = 0
    scenarios: dict[str, Any] = document.get("scenarios") or {}
    for name, body in scenarios.items():
        if not NAME.fullmatch(name):
            problems.append(Problem(name, "name", "name"))
        label = str(body.get("label", "")).strip()
        if not label or len(label) > 100:
            problems.append(Problem(name, "label", "label"))
        problems.extend(_step_problems(name, list(body.get("steps", [])), gap))
    segments = document.get("segments") or {}
    for key in SEGMENT_KEYS:
        if segments.get(key) not in scenarios:
            problems.append(Problem("settings", f"segment_{key}", "segment_target"))
    if not problems:
        try:
            parse_scenarios(document, "editor")
        except ScenarioError as error:  # a rule the editor's checks do not word yet
            problems.append(Problem("settings", "document", "other", {"error": str(error)}))
    return problems


def to_book(document: Document) -> ScenarioBook:
    return parse_scenarios(document, "stored scenarios")


def _day_of(step: dict[str, Any]) -> int:
    days = step.get("days")
    return days if isinstance(days, int) else 0


def from_toml(text: str) -> Document:
    """A TOML upload as a document, steps in date order; raises InvalidDocument."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidDocument([Problem("file", "file", "toml", {"error": str(error)})]) from error
    try:
        document: Document = {
            "min_gap_days": data.get("min_gap_days", 5),
            "segments": {str(k): str(v) for k, v in dict(data.get("segments", {})).items()},
            "scenarios": {
                str(name): {
                    "label": str(body.get("label", name)),
                    "steps": sorted(
                        (dict(step) for step in body.get("steps", [])),
                        key=_day_of,
                    ),
                }
                for name, body in dict(data.get("scenarios", {})).items()
            },
        }
    except (AttributeError, TypeError, ValueError) as error:
        raise InvalidDocument([Problem("file", "file", "shape", {"error": str(error)})]) from error
    problems = check(document)
    if problems:
        raise InvalidDocument(problems)
    return document


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


def to_toml(document: Document, heading: str = "") -> str:
    """The document as the scenarios file (portal/reminders/scenarios.toml's shape)."""
    lines = [f"# {line}" for line in heading.splitlines()]
    lines += [f"min_gap_days = {int(document['min_gap_days'])}", "", "[segments]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in document["segments"].items()]
    for name, body in document["scenarios"].items():
        lines += ["", f"[scenarios.{name}]", f"label = {_toml_value(body['label'])}", "steps = ["]
        for step in body["steps"]:
            pairs = ", ".join(f"{k} = {_toml_value(v)}" for k, v in step.items())
            lines.append(f"  {{ {pairs} }},")
        lines.append("]")
    return "\n".join(lines) + "\n"
