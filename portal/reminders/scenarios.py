"""Scenarios: ordered steps relative to the due date, read from a TOML file."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portal.customers.models import RiskSegment
from portal.reminders.models import Channel
from portal.settings import PROJECT_ROOT

TEMPLATES_DIR = PROJECT_ROOT / "templates"
SEGMENT_KEYS = (*(segment.value for segment in RiskSegment), "strategic")
CURRENCY = re.compile(r"[A-Z]{3}")


class ScenarioError(ValueError):
    """The scenarios file is unreadable or inconsistent; the message says where."""


@dataclass(frozen=True)
class Step:
    key: str
    days: int  # relative to the due date
    channel: Channel
    template: str
    # An optional condition: only customers in these segments (empty: everyone) ...
    segments: tuple[str, ...] = ()
    # ... and only invoices with at least this much left to pay, in this currency (0: any).
    min_amount_minor: int = 0
    currency: str = ""

    def applies(self, facts: StepFacts) -> bool:
        in_segments = facts.segment in self.segments or (
            facts.strategic and "strategic" in self.segments
        )
        if self.segments and not in_segments:
            return False
        if self.min_amount_minor:
            return (
                facts.currency == self.currency and facts.remaining_minor >= self.min_amount_minor
            )
        return True


@dataclass(frozen=True, slots=True)
class StepFacts:
    """What a step's condition looks at: the customer's segment, one invoice's amount."""

    segment: str
    strategic: bool
    currency: str
    remaining_minor: int


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    steps: tuple[Step, ...]  # ordered by days

    def step(self, key: str) -> Step | None:
        return next((step for step in self.steps if step.key == key), None)

    def latest_step(
        self,
        days_from_due: int,
        after_days: int | None,
        facts: StepFacts | None = None,
    ) -> Step | None:
        """The furthest step reached ``days_from_due`` days after the due date, if it comes
        after ``after_days`` (the invoice's last step) and its condition holds for ``facts``. Missed
        steps are skipped: a run that was down catches up with one message, not one per
        missed step."""
        found = None
        for step in self.steps:
            reached = step.days <= days_from_due and (after_days is None or step.days > after_days)
            if reached and (facts is None or step.applies(facts)):
                found = step
        return found


@dataclass(frozen=True)
class ScenarioBook:
    scenarios: dict[str, Scenario]
    segments: dict[str, str]
    min_gap_days: int

    def for_customer(self, override: str | None, risk: str, strategic: bool) -> Scenario:
        if override and override in self.scenarios:
            return self.scenarios[override]
        key = "strategic" if strategic else risk
        return self.scenarios[self.segments[key]]

    @property
    def earliest_days(self) -> int:
        return min(step.days for s in self.scenarios.values() for step in s.steps)


def template_exists(channel: Channel, template: str) -> bool:
    if channel is Channel.EMAIL:
        return (TEMPLATES_DIR / "email" / template / "subject.txt").is_file()
    if channel is Channel.SMS:
        return (TEMPLATES_DIR / "sms" / f"{template}.txt").is_file()
    if channel is Channel.LETTER:  # formal_notice_registered: sent as a registered letter
        return template in ("formal_notice", "formal_notice_registered")
    return template == "call"


def parse_scenarios(data: dict[str, Any], source: str = "scenarios") -> ScenarioBook:
    try:
        gap = int(data.get("min_gap_days", 5))
        raw_scenarios = data["scenarios"]
        raw_segments = data["segments"]
    except (KeyError, TypeError, ValueError) as error:
        raise ScenarioError(f"{source}: needs min_gap_days, [segments] and [scenarios]") from error
    if gap < 0:
        raise ScenarioError(f"{source}: min_gap_days cannot be negative")
    scenarios: dict[str, Scenario] = {}
    for name, body in raw_scenarios.items():
        steps = []
        keys: set[str] = set()
        for index, raw in enumerate(body.get("steps", [])):
            where = f"{source}: scenarios.{name}.steps[{index}]"
            try:
                step = Step(
                    key=str(raw["key"]),
                    days=int(raw["days"]),
                    channel=Channel(raw["channel"]),
                    template=str(raw["template"]),
                    segments=tuple(str(segment) for segment in raw.get("segments", ())),
                    min_amount_minor=int(raw.get("min_amount_minor", 0)),
                    currency=str(raw.get("currency", "")),
                )
            except (KeyError, ValueError, TypeError) as error:
                raise ScenarioError(f"{where}: {error}") from error
            unknown_segments = [s for s in step.segments if s not in SEGMENT_KEYS]
            if unknown_segments:
                raise ScenarioError(f"{where}: unknown segments {unknown_segments}")
            if step.min_amount_minor < 0 or (
                step.min_amount_minor and not CURRENCY.fullmatch(step.currency)
            ):
                raise ScenarioError(f"{where}: min_amount_minor needs a currency such as EUR")
            if not step.key or len(step.key) > 64 or step.key in keys:
                raise ScenarioError(f"{where}: key must be unique and at most 64 characters")
            if not template_exists(step.channel, step.template):
                raise ScenarioError(f"{where}: no {step.channel} template {step.template!r}")
            keys.add(step.key)
            steps.append(step)
        if not steps:
            raise ScenarioError(f"{source}: scenarios.{name} has no steps")
        days = [step.days for step in steps]
        if len(set(days)) != len(days):
            raise ScenarioError(f"{source}: scenarios.{name}: two steps on the same day")
        steps.sort(key=lambda step: step.days)
        scenarios[name] = Scenario(name, str(body.get("label", name)), tuple(steps))
    segments = {str(k): str(v) for k, v in raw_segments.items()}
    missing = [key for key in SEGMENT_KEYS if key not in segments]
    if missing:
        raise ScenarioError(f"{source}: [segments] must name a scenario for {missing}")
    unknown = sorted({v for v in segments.values() if v not in scenarios})
    if unknown:
        raise ScenarioError(f"{source}: [segments] names unknown scenarios {unknown}")
    return ScenarioBook(scenarios, segments, gap)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ScenarioError(f"{path}: {error}") from error


def load_scenarios(path: Path) -> ScenarioBook:
    return parse_scenarios(read_toml(path), str(path))
