"""Commands for the reminders: planning, sending, the worker, scenarios, case checks."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from portal.cli.common import (
    company_session,
    migrated_settings_or_exit,
)
from portal.settings import Settings


def _scenarios_or_exit(settings: Settings) -> Any:
    from portal.reminders.scenarios import ScenarioError, load_scenarios

    try:
        return load_scenarios(settings.reminders.scenarios_file)
    except ScenarioError as error:
        sys.exit(f"reminder scenarios: {error}")


def cmd_reminders(args: argparse.Namespace) -> int:
    import datetime as dt
    from zoneinfo import ZoneInfo

    from portal import clock
    from portal.company.service import sync_company
    from portal.db import make_engine, make_session_factory, transaction
    from portal.reminders import planning
    from portal.reminders.editor.versions import stored_book
    from portal.reminders.policy import load_policy
    from portal.reminders.worker import calendar_for

    settings = migrated_settings_or_exit()
    book = _scenarios_or_exit(settings)
    calendar = calendar_for(settings)
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    try:
        with transaction(factory) as db:
            company_id = sync_company(db, settings.company).id
            book = stored_book(db, company_id, book)  # the version saved in the editor
        if args.reminders_command == "run":
            with factory() as db:
                result = planning.run(
                    db,
                    company_id,
                    book,
                    calendar,
                    any_time=args.send_now,
                    reference=args.customer,
                    policy=load_policy(db, company_id, settings.reminders),
                )
                db.commit()
            print(f"{result.enqueued} messages enqueued ({result.planned} planned).")
            return 0
        now = clock.now()
        if args.date is not None:
            local = dt.datetime.combine(
                args.date,
                dt.time(settings.reminders.plan_hour),
                ZoneInfo(settings.company.timezone),
            )
            now = local.astimezone(dt.UTC)
        rows = []
        with factory() as db:
            policy = load_policy(db, company_id, settings.reminders)
            for page in planning.plan(
                db, company_id, book, calendar, now=now, reference=args.customer, policy=policy
            ):
                rows.extend(page)
            db.rollback()  # reads only: nothing to keep
    finally:
        engine.dispose()
    _print_plan(rows, now)
    return 0


def _print_plan(rows: list[Any], now: Any) -> None:
    from zoneinfo import ZoneInfo

    from portal.money import format_plain

    header = ("CUSTOMER", "NAME", "SCENARIO", "STEP", "CHANNEL", "INVOICES", "DUE", "SEND AFTER")
    table = [header]
    for m in rows:
        totals = " + ".join(f"{format_plain(v, c)} {c}" for c, v in sorted(m.totals().items()))
        table.append(
            (
                m.reference,
                m.name[:28],
                m.scenario,
                m.step.key,
                str(m.step.channel),
                " ".join(i.number for i in m.invoices),
                totals,
                m.send_after.astimezone(ZoneInfo(m.timezone)).strftime("%Y-%m-%d %H:%M %Z"),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)))
    print(f"\n{len(rows)} messages would be planned at {now.isoformat(timespec='minutes')}.")


def delivery_context(settings: Settings, any_time: bool = False) -> Any:
    from portal.links.tokens import LinkSigner
    from portal.mail.sender import Mailer
    from portal.reminders.outbox import DeliveryContext
    from portal.reminders.sms import sms_provider
    from portal.templating import make_environment

    return DeliveryContext(
        settings=settings,
        templates=make_environment(),
        signer=LinkSigner(settings.secret_keys, settings.link_max_age_seconds),
        mailer=Mailer(settings.smtp, settings.mail_spool_dir),
        sms=sms_provider(settings.sms),
        any_time=any_time,
    )


def start_worker_thread(settings: Settings, *, any_time: bool) -> Any:
    """The worker in a daemon thread of this process (the demo); returns its stop event."""
    import logging
    import threading

    from portal.company.service import sync_company
    from portal.db import make_engine, make_session_factory, transaction
    from portal.reminders.worker import run_worker

    logging.getLogger("portal").setLevel(settings.log_level.upper())
    book = _scenarios_or_exit(settings)
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    with transaction(factory) as db:
        company_id = sync_company(db, settings.company).id
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker,
        args=(factory, company_id, delivery_context(settings, any_time), book, stop),
        kwargs={"any_time": any_time},
        name="reminder-worker",
        daemon=True,
    )
    thread.start()
    from portal.webhooks import worker as webhooks

    webhooks.start_thread(factory, settings, stop)
    return stop


def cmd_worker(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from portal.cases.digest import deliver_digests
    from portal.company.service import sync_company
    from portal.db import make_engine, make_session_factory, transaction
    from portal.imports import jobs as imports
    from portal.payments.receipts import deliver_pending
    from portal.reminders.outbox import deliver_due, new_worker_id
    from portal.reminders.worker import run_if_due, run_worker
    from portal.webhooks import worker as webhooks
    from portal.webhooks.delivery import deliver_due as deliver_webhooks
    from portal.webhooks.transport import Connections

    settings = migrated_settings_or_exit()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    book = _scenarios_or_exit(settings)
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    with transaction(factory) as db:
        company_id = sync_company(db, settings.company).id
    ctx = delivery_context(settings, args.send_now)
    try:
        if args.once:
            if not args.no_plan:
                run_if_due(factory, company_id, settings, book)
            worker_id, sent = new_worker_id(), 0
            while delivered := deliver_due(factory, ctx, worker_id):
                sent += delivered
            ctx.close_connections()
            receipts = deliver_pending(factory, ctx.templates, ctx.mailer, settings)
            imports.run_once(factory, settings)
            digests = deliver_digests(factory, ctx.templates, ctx.mailer, settings)
            connections, hooks = Connections(settings.api.webhook_timeout_seconds), 0
            while attempted := deliver_webhooks(factory, settings.api, connections):
                hooks += attempted
            connections.close()
            print(
                f"{sent} messages handed over, {receipts} payment receipts sent, "
                f"{digests} message digests sent, {hooks} webhook deliveries attempted."
            )
            return 0
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        imports.start_thread(factory, settings, stop)
        webhooks.start_thread(factory, settings, stop)
        run_worker(factory, company_id, ctx, book, stop, plan=not args.no_plan)
    finally:
        engine.dispose()
    return 0


def cmd_cases(args: argparse.Namespace) -> int:
    import datetime as dt

    from portal import clock
    from portal.cases.checks import run_check
    from portal.company.service import sync_company
    from portal.db import make_engine, make_session_factory, transaction

    settings = migrated_settings_or_exit()
    if args.date:
        try:
            today = dt.date.fromisoformat(args.date)
        except ValueError:
            sys.exit(f"--date must be a date like 2026-12-31, not {args.date!r}")
    else:
        today = clock.today_in(settings.company.timezone)
    engine = make_engine(settings.database_url)
    try:
        factory = make_session_factory(engine)
        with transaction(factory) as db:
            sync_company(db, settings.company)
        result = run_check(factory, settings, today)
    finally:
        engine.dispose()
    print(
        f"Checked plans and promises on {today.isoformat()}: "
        f"{len(result.completed)} completed, {len(result.broken)} broken."
    )
    return 0


def cmd_scenarios(args: argparse.Namespace) -> int:
    from pathlib import Path

    from portal.reminders.editor import terminal

    settings, engine, factory, company_id = company_session()
    try:
        if args.scenarios_command == "export":
            return terminal.export(factory, settings, company_id, args.file)
        if args.scenarios_command == "import":
            return terminal.import_file(factory, settings, company_id, Path(args.file))
        return terminal.seed_default(factory, settings, company_id)
    finally:
        engine.dispose()
