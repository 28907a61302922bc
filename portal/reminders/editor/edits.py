"""Changes to the scenario book: each takes a document and returns the changed copy (the
caller saves it as a version, which checks it). Steps are named by their key, which stays
the same when a step is changed or moved (the outbox's unique key uses it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portal.reminders.editor.document import (
    NAME,
    RESERVED_NAMES,
    Document,
    InvalidDocument,
    Problem,
    clone,
)


@dataclass(frozen=True)
class StepFields:
    days: int
    channel: str
    template: str
    segments: tuple[str, ...] = ()
    min_amount_minor: int = 0
    currency: str = ""

    def as_step(self, key: str) -> dict[str, Any]:
        step: dict[str, Any] = {
            "key": key,
            "days": self.days,
            "channel": self.channel,
            "template": self.template,
        }
        if self.segments:
            step["segments"] = list(self.segments)
        if self.min_amount_minor:
            step["min_amount_minor"] = self.min_amount_minor
            step["currency"] = self.currency
        return step


def _scenario(document: Document, name: str) -> dict[str, Any]:
    try:
        body: dict[str, Any] = document["scenarios"][name]
    except KeyError:
        raise KeyError(name) from None
    return body


def _index(steps: list[dict[str, Any]], key: str) -> int:
    for index, step in enumerate(steps):
        if step["key"] == key:
            return index
    raise KeyError(key)


def _new_key(document: Document, name: str, fields: StepFields) -> str:
    taken = {step["key"] for step in _scenario(document, name)["steps"]}
    base = f"{fields.channel}-{fields.days}"
    key, suffix = base, 2
    while key in taken:
        key, suffix = f"{base}-{suffix}", suffix + 1
    return key


def _in_date_order(steps: list[dict[str, Any]]) -> None:
    steps.sort(key=lambda step: step["days"])


def add_step(document: Document, name: str, fields: StepFields) -> tuple[Document, str]:
    changed = clone(document)
    key = _new_key(changed, name, fields)
    steps = _scenario(changed, name)["steps"]
    steps.append(fields.as_step(key))
    _in_date_order(steps)
    return changed, key


def change_step(document: Document, name: str, key: str, fields: StepFields) -> Document:
    changed = clone(document)
    steps = _scenario(changed, name)["steps"]
    steps[_index(steps, key)] = fields.as_step(key)
    _in_date_order(steps)
    return changed


def move_step(document: Document, name: str, key: str, direction: int) -> Document:
    """Move a step one place earlier (-1) or later (+1): it swaps days with its neighbour,
    so the steps stay in date order and each keeps its channel, message and condition."""
    changed = clone(document)
    steps = _scenario(changed, name)["steps"]
    index = _index(steps, key)
    other = index + direction
    if not 0 <= other < len(steps):
        return changed
    steps[index]["days"], steps[other]["days"] = steps[other]["days"], steps[index]["days"]
    steps[index], steps[other] = steps[other], steps[index]
    return changed


def remove_step(document: Document, name: str, key: str) -> Document:
    changed = clone(document)
    steps = _scenario(changed, name)["steps"]
    del steps[_index(steps, key)]
    return changed


def add_scenario(document: Document, name: str, label: str, copy_of: str) -> Document:
    """A new scenario, starting as a copy of ``copy_of``'s steps."""
    if name in document["scenarios"] or name in RESERVED_NAMES or not NAME.fullmatch(name):
        raise InvalidDocument([Problem(name, "name", "name_taken" if name else "name")])
    changed = clone(document)
    steps = clone({"steps": _scenario(document, copy_of)["steps"]})["steps"]
    changed["scenarios"][name] = {"label": label.strip(), "steps": steps}
    return changed


def rename_scenario(document: Document, name: str, label: str) -> Document:
    changed = clone(document)
    _scenario(changed, name)["label"] = label.strip()
    return changed


def remove_scenario(document: Document, name: str, customers_using: int) -> Document:
    """Refused while a segment or customers follow it."""
    _scenario(document, name)
    segments = [k for k, v in document["segments"].items() if v == name]
    if segments:
        raise InvalidDocument([Problem(name, "remove", "used_by_segment", {"segments": segments})])
    if customers_using:
        raise InvalidDocument(
            [Problem(name, "remove", "used_by_customers", {"count": customers_using})]
        )
    changed = clone(document)
    del changed["scenarios"][name]
    return changed


def change_settings(document: Document, min_gap_days: int, segments: dict[str, str]) -> Document:
    changed = clone(document)
    changed["min_gap_days"] = min_gap_days
    changed["segments"] = dict(segments)
    return changed
