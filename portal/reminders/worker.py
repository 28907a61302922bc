"""The worker: plans once a day (catching up a missed day once) and delivers the outbox."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import clock
from portal.branding.service import load_look
from portal.cases.checks import run_check
from portal.cases.digest import deliver_digests
from portal.cockpit import behaviour, snapshot
from portal.payments import receipts
from portal.reminders import planning
from portal.reminders.editor.texts import load_custom_texts
from portal.reminders.editor.versions import stored_book
from portal.reminders.models import ReminderRun
from portal.reminders.outbox import DeliveryContext, RoundResult, deliver_round, new_worker_id
from portal.reminders.policy import load_policy
from portal.reminders.scenarios import ScenarioBook
from portal.reminders.schedule import BusinessCalendar
from portal.reminders.status import outbox_status
from portal.settings import Settings
from portal.users import throttle

log = logging.getLogger(__name__)

STALE_RUN = dt.timedelta(hours=1)


def calendar_for(settings: Settings) -> BusinessCalendar:
    r = settings.reminders
    return BusinessCalendar(
        r.holiday_country or settings.company.country, r.send_from_hour, r.send_until_hour
    )


def run_if_due(
    session_factory: Callable[[], Session],
    company_id: int,
    settings: Settings,
    book: ScenarioBook,
    *,
    any_time: bool = False,
) -> planning.RunResult | None:
    """Check plans and promises, recompute payment behaviour, then plan today's run,
    unless it ran already: one run per company and day, whatever the number of workers.
    Days the system was down are not replayed one by one: today's run moves each invoice
    to the furthest step it has reached."""
    now = clock.now()
    local = now.astimezone(ZoneInfo(settings.company.timezone))
    if not any_time and local.hour < settings.reminders.plan_hour:
        return None
    today = local.date()
    with session_factory() as session, session.begin():
        run = session.scalar(
            select(ReminderRun).where(
                ReminderRun.company_id == company_id, ReminderRun.run_date == today
            )
        )
        if run is not None and (run.finished_at is not None or now - run.started_at < STALE_RUN):
            return None
        if run is None:
            run = ReminderRun(company_id=company_id, run_date=today, started_at=now)
            session.add(run)
            try:
                session.flush()
            except IntegrityError:
                return None  # another worker started it
        else:
            run.started_at = now  # a run that died half-way: enqueueing again is harmless
        run_id = run.id
    # Broken plans and unkept promises release their holds before the day's planning.
    run_check(session_factory, settings, today)
    # Segments learned from payment behaviour, before the planning that reads them.
    with session_factory() as session, session.begin():
        changed = behaviour.recompute(session, company_id, today)
    log.info("payment behaviour of %s: %s segments changed", today, changed)
    with session_factory() as session:  # the version saved in the editor, else the file
        book = stored_book(session, company_id, book)
    with session_factory() as session:
        result = planning.run(
            session,
            company_id,
            book,
            calendar_for(settings),
            now=now,
            any_time=any_time,
            policy=load_policy(session, company_id, settings.reminders),
        )
        session.commit()
    with session_factory() as session, session.begin():
        finished = session.get(ReminderRun, run_id)
        assert finished is not None
        finished.finished_at = clock.now()
        finished.messages = result.enqueued
    log.info("reminder run of %s: %s planned, %s enqueued", today, result.planned, result.enqueued)
    return result


def refresh_dashboard(
    session_factory: Callable[[], Session], company_id: int, settings: Settings
) -> None:
    today = clock.today_in(settings.company.timezone)
    with session_factory() as session, session.begin():
        if snapshot.refresh_if_due(session, company_id, today):
            log.info("dashboard figures of %s computed", today)


def apply_branding(
    session_factory: Callable[[], Session],
    company_id: int,
    ctx: DeliveryContext,
    configured: Settings,
) -> None:
    """The company's look as admins set it, for this round's emails, letters and sender,
    and the message texts written in the back office."""
    with session_factory() as session:
        look = load_look(session, company_id, configured)
        ctx.custom_texts = load_custom_texts(session, company_id)
    ctx.settings = replace(configured, company=look.identity(configured.company))
    ctx.brand = look
    ctx.mailer.sender_source = lambda: look.sender


class Progress:
    """Adds up the rounds and logs, at most every ``interval`` seconds while there is work:
    messages per second, retries, failures and the queue's length."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.since = time.monotonic()
        self.total = RoundResult()

    def add(self, result: RoundResult) -> None:
        for name in ("claimed", "sent", "retried", "failed", "deferred"):
            setattr(self.total, name, getattr(self.total, name) + getattr(result, name))

    def maybe_log(
        self, session_factory: Callable[[], Session], company_id: int, *, force: bool = False
    ) -> None:
        elapsed = time.monotonic() - self.since
        if not self.total.claimed or (elapsed < self.interval and not force):
            return
        with session_factory() as session:
            queue = outbox_status(session, company_id, clock.now())
        t = self.total
        log.info(
            "outbox: %s sent in %.0f s (%.1f msg/s), %s retried, %s failed, %s deferred; "
            "queue: %s waiting, %s due, %s failed in all",
            t.sent,
            elapsed,
            t.sent / elapsed if elapsed > 0 else 0.0,
            t.retried,
            t.failed,
            t.deferred,
            queue.waiting,
            queue.due,
            queue.failed,
        )
        self.since = time.monotonic()
        self.total = RoundResult()


def run_worker(
    session_factory: Callable[[], Session],
    company_id: int,
    ctx: DeliveryContext,
    book: ScenarioBook,
    stop: threading.Event,
    *,
    any_time: bool = False,
    plan: bool = True,
) -> None:
    """Until ``stop`` is set: plan when due, deliver everything due (reminders, then
    payment receipts and digests of debtor messages), then wait."""
    worker_id = new_worker_id()
    log.info("reminder worker %s started", worker_id)
    configured = ctx.settings
    ctx.warm_up()
    progress = Progress(configured.reminders.progress_log_seconds)
    while not stop.is_set():
        try:
            apply_branding(session_factory, company_id, ctx, configured)
            if plan:
                run_if_due(session_factory, company_id, ctx.settings, book, any_time=any_time)
            while not stop.is_set():
                result = deliver_round(session_factory, ctx, worker_id)
                progress.add(result)
                progress.maybe_log(session_factory, company_id, force=not result)
                if not result:
                    break
            ctx.close_connections()  # idle now: an SMTP server would drop the session
            # The whole-company dashboard, computed ahead once its figures are a few minutes old.
            refresh_dashboard(session_factory, company_id, ctx.settings)
            # Payment receipts owed since the last round (claimed, so several workers share).
            receipts.deliver_pending(session_factory, ctx.templates, ctx.mailer, ctx.settings)
            # Digests of debtor messages whose window has passed (claimed per case).
            deliver_digests(session_factory, ctx.templates, ctx.mailer, ctx.settings)
            with session_factory() as session, session.begin():
                throttle.prune(session, clock.now())  # login attempts that no longer count
        except Exception:  # a database hiccup must not end the worker; try again later
            log.exception("reminder worker round failed")
        stop.wait(ctx.settings.reminders.poll_seconds)
    log.info("reminder worker %s stopped", worker_id)
