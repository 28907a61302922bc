"""The scenario book's versions: the current one (else the default file), saving a change
as the next version (who, when, what), the history, seeding from the file."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import clock
from portal.reminders.editor.document import Document, InvalidDocument, check, to_book
from portal.reminders.editor.models import ScenarioVersion
from portal.reminders.scenarios import ScenarioBook, read_toml
from portal.timeline.models import Actor
from portal.timeline.service import record

# What a version changed (the history words each one).
CHANGES = (
    "seeded",
    "imported",
    "restored",
    "settings",
    "scenario_added",
    "scenario_renamed",
    "scenario_removed",
    "step_added",
    "step_changed",
    "step_moved",
    "step_removed",
)


class VersionConflict(Exception):
    """Someone saved another version since the form was shown."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the scenarios are at version {current} now")
        self.current = current


@dataclass(frozen=True)
class Author:
    label: str  # an email, or "command-line"
    user_id: int | None = None

    @property
    def actor(self) -> Actor:
        return Actor.USER if self.user_id is not None else Actor.SYSTEM


@dataclass(frozen=True)
class Current:
    number: int  # 0: nothing saved yet, the default file
    document: Document
    created_at: dt.datetime | None
    author: str


def read_file(path: Path) -> Document:
    data = read_toml(path)
    return {
        "min_gap_days": data.get("min_gap_days", 5),
        "segments": dict(data["segments"]),
        "scenarios": {
            name: {"label": body.get("label", name), "steps": list(body.get("steps", []))}
            for name, body in data["scenarios"].items()
        },
    }


def _latest(session: Session, company_id: int) -> ScenarioVersion | None:
    return session.scalar(
        select(ScenarioVersion)
        .where(ScenarioVersion.company_id == company_id)
        .order_by(ScenarioVersion.number.desc())
        .limit(1)
    )


def current(session: Session, company_id: int, default_file: Path) -> Current:
    latest = _latest(session, company_id)
    if latest is None:
        return Current(0, read_file(default_file), None, "")
    return Current(latest.number, latest.document, latest.created_at, latest.author)


def stored_book(session: Session, company_id: int, default: ScenarioBook) -> ScenarioBook:
    """What the planning follows: the current version, else ``default`` (the file)."""
    latest = _latest(session, company_id)
    return default if latest is None else to_book(latest.document)


def save(
    session: Session,
    company_id: int,
    document: Document,
    *,
    based_on: int,
    author: Author,
    change: str,
    subject: str = "",
) -> ScenarioVersion:
    """Store ``document`` as the version after ``based_on``; raises InvalidDocument (nothing
    stored) or VersionConflict (someone saved in between)."""
    problems = check(document)
    if problems:
        raise InvalidDocument(problems)
    latest = session.scalar(
        select(func.max(ScenarioVersion.number)).where(ScenarioVersion.company_id == company_id)
    )
    if (latest or 0) != based_on:
        raise VersionConflict(latest or 0)
    version = ScenarioVersion(
        company_id=company_id,
        number=based_on + 1,
        document=document,
        change=change,
        subject=subject[:200],
        created_at=clock.now(),
        created_by=author.user_id,
        author=author.label[:254],
    )
    try:
        with session.begin_nested():
            session.add(version)
            session.flush()
    except IntegrityError as error:  # the same number saved at the same moment
        raise VersionConflict(based_on + 1) from error
    record(
        session,
        company_id=company_id,
        action="reminders.scenarios_changed",
        actor=author.actor,
        actor_id=str(author.user_id) if author.user_id is not None else author.label,
        subject_type="scenario_version",
        subject_id=version.number,
        details={"change": change, "subject": subject[:200]},
    )
    return version


def history(session: Session, company_id: int, limit: int = 200) -> list[ScenarioVersion]:
    return list(
        session.scalars(
            select(ScenarioVersion)
            .where(ScenarioVersion.company_id == company_id)
            .order_by(ScenarioVersion.number.desc())
            .limit(limit)
        )
    )


def version(session: Session, company_id: int, number: int) -> ScenarioVersion | None:
    return session.scalar(
        select(ScenarioVersion).where(
            ScenarioVersion.company_id == company_id, ScenarioVersion.number == number
        )
    )


def seed(session: Session, company_id: int, default_file: Path) -> bool:
    """The default file as version 1 when no version exists yet; True if it was stored."""
    if _latest(session, company_id) is not None:
        return False
    save(
        session,
        company_id,
        read_file(default_file),
        based_on=0,
        author=Author("system"),
        change="seeded",
        subject=default_file.name,
    )
    return True
