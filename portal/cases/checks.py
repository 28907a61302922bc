"""The daily commitments check, with its emails: for ``portal cases check`` and the worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.orm import Session

from portal.cases import notify
from portal.cases.models import Case
from portal.cases.service import CheckResult, check_commitments
from portal.mail.sender import Mailer
from portal.settings import Settings
from portal.templating import make_environment


def run_check(
    session_factory: Callable[[], Session], settings: Settings, today: dt.date
) -> CheckResult:
    """Complete kept plans, break missed ones and unkept promises (idempotent), then tell
    the assignees of what broke, after the commit."""
    with session_factory() as db, db.begin():
        result = check_commitments(db, today, settings.cases)
        emails = [
            notify.staff_email(db, settings, case, "broken")
            for case_id in result.broken
            if (case := db.get(Case, case_id)) is not None
        ]
    notify.send_all(
        make_environment(),
        Mailer(settings.smtp, settings.mail_spool_dir),
        settings,
        [e for e in emails if e is not None],
    )
    return result
