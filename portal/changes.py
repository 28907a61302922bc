"""What every editing service shares: field errors, upsert outcomes, before -> after diffs.

Back-office forms, imports and the API change customers, contacts, invoices and payments
through the same services (``portal.customers.service``, ``portal.invoices.editing``,
``portal.payments.offline``); these are the pieces they have in common.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

Change = tuple[Any, Any]


class Outcome(enum.StrEnum):
    """What an upsert did."""

    CREATED = "created"
    CHANGED = "changed"
    UNCHANGED = "unchanged"


class FieldErrors(Exception):
    """Bad input: ``errors`` maps each field's name to a message in the current language.

    Raised before anything is changed; the web layer shows each message next to its
    field, an import reports them on the row.
    """

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))
        self.errors = dict(errors)


class Problems:
    """Collects field errors while validating; ``check()`` raises them all at once."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, message)

    def __contains__(self, field: str) -> bool:
        return field in self.errors

    def check(self) -> None:
        if self.errors:
            raise FieldErrors(self.errors)


def plain(value: Any) -> Any:
    """A JSON-friendly form of a field's value for the timeline (dates as ISO strings)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def apply_changes(target: Any, values: Mapping[str, Any]) -> dict[str, Change]:
    """Set each attribute that differs; return ``{name: (before, after)}`` of those."""
    changes: dict[str, Change] = {}
    for name, new in values.items():
        old = getattr(target, name)
        if plain(old) != plain(new):
            changes[name] = (old, new)
            setattr(target, name, new)
    return changes


def timeline_changes(changes: Mapping[str, Change]) -> dict[str, list[Any]]:
    """``{"field": [before, after]}`` as stored in a timeline event's details."""
    return {name: [plain(old), plain(new)] for name, (old, new) in changes.items()}


def current_fields(fields_class: type[T], source: Any) -> T:
    """``fields_class`` (a dataclass of plain values) filled from ``source``'s attributes:
    what an edit form starts from, and what an upsert compares with."""
    names = [f.name for f in dataclasses.fields(fields_class)]  # type: ignore[arg-type]
    return fields_class(**{name: plain(getattr(source, name)) for name in names})
