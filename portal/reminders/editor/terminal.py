"""`portal scenarios export|import|seed`: the scenario book as a TOML file, the same
checks and versions as the back office's editor."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from portal.reminders.editor.document import InvalidDocument, from_toml, to_toml
from portal.reminders.editor.versions import Author, VersionConflict, current, save, seed
from portal.settings import Settings

AUTHOR = Author("command-line")


def export(factory: Callable[[], Session], settings: Settings, company_id: int, target: str) -> int:
    with factory() as db:
        now = current(db, company_id, settings.reminders.scenarios_file)
    text = to_toml(now.document, f"Reminder scenarios, version {now.number}")
    if target == "-":
        sys.stdout.write(text)
    else:
        Path(target).write_text(text, encoding="utf-8")
        print(f"Wrote version {now.number} to {target}.")
    return 0


def import_file(
    factory: Callable[[], Session], settings: Settings, company_id: int, source: Path
) -> int:
    try:
        document = from_toml(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        sys.exit(f"portal scenarios import: {error}")
    except InvalidDocument as error:
        lines = "\n".join(
            f"  {p.where} {p.field}: {p.reason} {p.values or ''}" for p in error.problems
        )
        sys.exit(f"portal scenarios import: nothing was changed:\n{lines}")
    with factory() as db, db.begin():
        based_on = current(db, company_id, settings.reminders.scenarios_file).number
        try:
            version = save(
                db,
                company_id,
                document,
                based_on=based_on,
                author=AUTHOR,
                change="imported",
                subject=source.name,
            )
        except VersionConflict:
            sys.exit("portal scenarios import: changed meanwhile, nothing was saved; try again")
        number = version.number
    print(f"Saved {source} as version {number}.")
    return 0


def seed_default(factory: Callable[[], Session], settings: Settings, company_id: int) -> int:
    with factory() as db, db.begin():
        stored = seed(db, company_id, settings.reminders.scenarios_file)
    print("Stored the default scenarios." if stored else "Scenarios are stored already.")
    return 0
