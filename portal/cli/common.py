"""What the commands share: settings (or a clean exit), paths, dates."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from portal.settings import ConfigurationError, Settings, load_settings

DEMO_CUSTOMERS_SHOWN = ("C-1001", "C-1003", "C-1005")
# portal.users.models.Role's values (kept literal so that `portal --help` stays light).
USER_ROLES = ("admin", "credit_manager", "viewer")
NEW_USER_PASSWORD_ENV = "PORTAL_NEW_USER_PASSWORD"  # noqa: S105 - a variable name, not a secret
PASSWORD_PROMPTS = 3


def settings_or_exit() -> Settings:
    try:
        settings = load_settings()
    except ConfigurationError as error:
        sys.exit(f"configuration error: {error}")
    if settings.clock_shift_days:
        import datetime as dt

        from portal import clock

        clock.shift(dt.timedelta(days=settings.clock_shift_days))
    return settings


def migrated_settings_or_exit() -> Settings:
    """settings_or_exit(), after checking the database is at this code's revision (or exit)."""
    from portal import migrate

    settings = settings_or_exit()
    problem = migrate.revision_problem(settings.database_url)
    if problem is not None:
        sys.exit(f"database not ready: {problem}")
    return settings


def prepare_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        from pathlib import Path

        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def shown_path(path: Any) -> str:
    """``path`` relative to the current directory when it is below it."""
    from pathlib import Path

    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def iso_date(value: str) -> Any:
    import datetime as dt

    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def company_session() -> tuple[Settings, Any, Any, int]:
    """Settings, engine and session factory of a migrated database, and the company's id."""
    from portal import i18n
    from portal.company.service import sync_company
    from portal.db import make_engine, make_session_factory, transaction

    settings = migrated_settings_or_exit()
    i18n.current_locale.set("en")  # the command line speaks English, like its other messages
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    with transaction(factory) as db:
        company_id = sync_company(db, settings.company).id
    return settings, engine, factory, company_id
