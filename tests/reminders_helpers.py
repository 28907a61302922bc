"""Helpers for reminder tests: a delivery context, a frozen clock on a chosen local time."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.links.tokens import LinkSigner
from portal.mail.sender import Mailer
from portal.reminders.models import ReminderMessage, ReminderMessageInvoice
from portal.reminders.outbox import DeliveryContext
from portal.reminders.scenarios import ScenarioBook, load_scenarios
from portal.reminders.sms import LoggingSmsProvider, SmsProvider
from portal.settings import ReminderSettings, Settings, SmtpSettings
from portal.templating import make_environment

_TEMPLATES = make_environment()


def book(settings: Settings) -> ScenarioBook:
    return load_scenarios(settings.reminders.scenarios_file)


def reminder_settings(settings: Settings, tmp_path: Path, smtp_port: int = 0) -> Settings:
    smtp = (
        SmtpSettings(host="127.0.0.1", port=smtp_port, security="none", timeout_seconds=5)
        if smtp_port
        else SmtpSettings()
    )
    return dataclasses.replace(
        settings,
        smtp=smtp,
        mail_spool_dir=tmp_path / "mail",
        reminders=dataclasses.replace(
            ReminderSettings(), letters_dir=tmp_path / "letters", retry_base_seconds=60
        ),
    )


def context(
    settings: Settings, sms: SmsProvider | None = None, any_time: bool = False
) -> DeliveryContext:
    return DeliveryContext(
        settings=settings,
        templates=_TEMPLATES,
        signer=LinkSigner(settings.secret_keys, settings.link_max_age_seconds),
        mailer=Mailer(settings.smtp, settings.mail_spool_dir),
        sms=sms or LoggingSmsProvider(),
        any_time=any_time,
    )


def at(local: str, timezone: str = "Europe/Paris") -> dt.datetime:
    """Freeze the clock at a local wall time, e.g. at("2026-03-10 10:00")."""
    instant = dt.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(timezone))
    clock.freeze(instant)
    return instant.astimezone(dt.UTC)


def messages(db: Session, customer_id: int | None = None) -> list[ReminderMessage]:
    query = select(ReminderMessage).order_by(ReminderMessage.id)
    if customer_id is not None:
        query = query.where(ReminderMessage.customer_id == customer_id)
    return list(db.scalars(query))


def invoice_ids(db: Session, message_id: int) -> set[int]:
    return set(
        db.scalars(
            select(ReminderMessageInvoice.invoice_id).where(
                ReminderMessageInvoice.message_id == message_id
            )
        )
    )
