"""The daily commitments check, with its emails: for ``portal cases check`` and the worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.orm import Session

from portal.cases import instalment_reminders, notify
from portal.cases.models import Case
from portal.cases.service import CheckResult, check_commitments
from portal.links.tokens import LinkSigner
from portal.mail.sender import Mailer
from portal.settings import Settings
from portal.templating import make_environment


def run_check(
    session_factory: Callable[[], Session], settings: Settings, today: dt.date
) -> CheckResult:
    """Complete kept plans, break missed ones and unkept promises (idempotent), remind
    debtors of instalments falling due or late (once each), then send the emails, after
    the commit."""
    signer = LinkSigner(settings.secret_keys, settings.link_max_age_seconds)
    with session_factory() as db, db.begin():
        result = check_commitments(db, today, settings.cases)
        emails = [
            notify.staff_email(db, settings, case, "broken")
            for case_id in result.broken
            if (case := db.get(Case, case_id)) is not None
        ]
        emails += instalment_reminders.collect(db, signer, settings, today)
    notify.send_all(
        make_environment(),
        Mailer(settings.smtp, settings.mail_spool_dir),
        settings,
        [e for e in emails if e is not None],
    )
    return result
