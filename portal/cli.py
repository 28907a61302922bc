"""The ``portal`` command line."""

from __future__ import annotations

import argparse
import copy
import os
import sys
from collections.abc import Sequence
from typing import Any

from portal.settings import ConfigurationError, Settings, load_settings

DEMO_CUSTOMERS_SHOWN = ("C-1001", "C-1003", "C-1005")
# portal.users.models.Role's values (kept literal so that `portal --help` stays light).
USER_ROLES = ("admin", "credit_manager", "viewer")
NEW_USER_PASSWORD_ENV = "PORTAL_NEW_USER_PASSWORD"  # noqa: S105 - a variable name, not a secret
PASSWORD_PROMPTS = 3


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigurationError as error:
        sys.exit(f"configuration error: {error}")
    if settings.clock_shift_days:
        import datetime as dt

        from portal import clock

        clock.shift(dt.timedelta(days=settings.clock_shift_days))
    return settings


def _migrated_settings() -> Settings:
    """_settings(), after checking the database is at this code's revision (or exit)."""
    from portal import migrate

    settings = _settings()
    problem = migrate.revision_problem(settings.database_url)
    if problem is not None:
        sys.exit(f"database not ready: {problem}")
    return settings


def _prepare_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        from pathlib import Path

        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def cmd_db(args: argparse.Namespace) -> int:
    from portal import migrate

    settings = _settings()
    _prepare_sqlite_dir(settings.database_url)
    if args.db_command == "upgrade":
        migrate.upgrade(settings.database_url, args.revision)
    elif args.db_command == "downgrade":
        migrate.downgrade(settings.database_url, args.revision)
    elif args.db_command == "current":
        migrate.current(settings.database_url)
    elif args.db_command == "check":
        from portal.db import make_engine
        from portal.schema_check import schema_differences

        engine = make_engine(settings.database_url)
        differences = schema_differences(engine)
        engine.dispose()
        if differences:
            print("The models and the migrations differ:")
            for difference in differences:
                print(f"  {difference}")
            return 1
        print("The database schema matches the models.")
    return 0


def _customer_or_exit(db: object, company_id: int, reference: str) -> object:
    from portal.links.errors import UnknownCustomer
    from portal.links.service import find_customer

    try:
        return find_customer(db, company_id, reference)  # type: ignore[arg-type]
    except UnknownCustomer:
        sys.exit(f"no customer with reference {reference!r}")


def cmd_link(args: argparse.Namespace) -> int:
    from portal.company.service import sync_company
    from portal.db import make_engine, make_session_factory, transaction
    from portal.links.errors import UnknownInvoice
    from portal.links.service import issue_link
    from portal.links.tokens import MAX_LIFETIME_DAYS, LinkSigner

    settings = _migrated_settings()
    if args.days is not None and not 1 <= args.days <= MAX_LIFETIME_DAYS:
        sys.exit(f"--days must be between 1 and {MAX_LIFETIME_DAYS}")
    signer = LinkSigner(settings.secret_keys, settings.link_max_age_seconds)
    engine = make_engine(settings.database_url)
    try:
        with transaction(make_session_factory(engine)) as db:
            company = sync_company(db, settings.company)
            customer = _customer_or_exit(db, company.id, args.customer_ref)
            try:
                url = issue_link(
                    db,
                    signer,
                    settings.base_url,
                    customer,  # type: ignore[arg-type]
                    invoice_numbers=args.invoice or (),
                    lifetime_days=args.days,
                    purpose="command-line",
                )
            except UnknownInvoice as error:
                sys.exit(str(error))
    finally:
        engine.dispose()
    print(url)
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from portal.company.service import sync_company
    from portal.db import make_engine, make_session_factory, transaction
    from portal.links.service import revoke_links

    settings = _migrated_settings()
    engine = make_engine(settings.database_url)
    try:
        with transaction(make_session_factory(engine)) as db:
            company = sync_company(db, settings.company)
            customer = _customer_or_exit(db, company.id, args.customer_ref)
            revoke_links(db, customer, actor_id="command-line")  # type: ignore[arg-type]
    finally:
        engine.dispose()
    print(f"Every earlier link of {args.customer_ref} is revoked and its portal sessions ended.")
    return 0


def _new_password() -> str:
    """Asked twice on a terminal; otherwise read from the environment, never from argv."""
    from portal.users.errors import WeakPassword
    from portal.users.service import check_password_policy

    if not sys.stdin.isatty():
        password = os.environ.get(NEW_USER_PASSWORD_ENV, "")
        if not password:
            sys.exit(
                f"no terminal to ask for the password: set {NEW_USER_PASSWORD_ENV} "
                "(the password is never taken from the command line)"
            )
        try:
            check_password_policy(password)
        except WeakPassword as error:
            sys.exit(f"{NEW_USER_PASSWORD_ENV}: {error}")
        return password

    import getpass

    for _attempt in range(PASSWORD_PROMPTS):
        password = getpass.getpass("Password (at least 12 characters): ")
        try:
            check_password_policy(password)
        except WeakPassword as error:
            print(f"Refused: {error}.", file=sys.stderr)
            continue
        if getpass.getpass("The same password again: ") != password:
            print("Refused: the two passwords differ.", file=sys.stderr)
            continue
        return password
    sys.exit("no password set; nothing was created")


def cmd_user(args: argparse.Namespace) -> int:
    import portal.models  # noqa: F401 - every table, so the timeline's foreign keys resolve
    from portal.company.service import sync_company
    from portal.db import make_engine, make_session_factory, transaction
    from portal.users.errors import UserError
    from portal.users.models import Role
    from portal.users.service import create_user, normalise_email

    settings = _migrated_settings()
    try:
        email = normalise_email(args.email)
    except UserError as error:
        sys.exit(str(error))
    password = _new_password()
    engine = make_engine(settings.database_url)
    try:
        with transaction(make_session_factory(engine)) as db:
            company = sync_company(db, settings.company)
            user = create_user(
                db,
                email,
                Role(args.role),
                password,
                name=args.name,
                company_id=company.id,
                actor_id="command-line",
            )
            user_id = user.id
    except UserError as error:
        sys.exit(f"nothing was created: {error}")
    finally:
        engine.dispose()
    print(f"Created the {args.role} user {email} (id {user_id}).")
    return 0


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

    settings = _migrated_settings()
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


def _delivery_context(settings: Settings, any_time: bool = False) -> Any:
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
        args=(factory, company_id, _delivery_context(settings, any_time), book, stop),
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

    settings = _migrated_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    book = _scenarios_or_exit(settings)
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    with transaction(factory) as db:
        company_id = sync_company(db, settings.company).id
    ctx = _delivery_context(settings, args.send_now)
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

    settings = _migrated_settings()
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


def _import_session() -> tuple[Settings, Any, Any, int]:
    from portal import i18n
    from portal.company.service import sync_company
    from portal.db import make_engine, make_session_factory, transaction

    settings = _migrated_settings()
    i18n.current_locale.set("en")  # the command line speaks English, like its other messages
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    with transaction(factory) as db:
        company_id = sync_company(db, settings.company).id
    return settings, engine, factory, company_id


def cmd_bank(args: argparse.Namespace) -> int:
    from pathlib import Path

    from portal.bank import terminal

    target = Path(args.file)
    if not target.is_file():
        sys.exit(f"portal bank import: {target} is not a file")
    settings, engine, factory, company_id = _import_session()
    try:
        return terminal.import_file(factory, settings, company_id, target, dry_run=args.dry_run)
    finally:
        engine.dispose()


def cmd_scenarios(args: argparse.Namespace) -> int:
    from pathlib import Path

    from portal.reminders.editor import terminal

    settings, engine, factory, company_id = _import_session()
    try:
        if args.scenarios_command == "export":
            return terminal.export(factory, settings, company_id, args.file)
        if args.scenarios_command == "import":
            return terminal.import_file(factory, settings, company_id, Path(args.file))
        return terminal.seed_default(factory, settings, company_id)
    finally:
        engine.dispose()


def cmd_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from portal.imports import terminal
    from portal.imports.mapping import Kind

    kind = Kind(args.kind) if args.kind else None
    if args.watch is None and args.file is None:
        sys.exit("portal import: give a FILE, or --watch DIR")
    target = Path(args.watch or args.file)
    if args.watch is not None and not target.is_dir():
        sys.exit(f"portal import: {target} is not a directory")
    if args.watch is None and not target.is_file():
        sys.exit(f"portal import: {target} is not a file")
    settings, engine, factory, company_id = _import_session()
    try:
        if args.watch is not None:
            return terminal.watch(
                factory,
                settings,
                company_id,
                target,
                kind=kind,
                settle_missing=args.settle_missing,
                interval=args.interval,
                once=args.once,
            )
        return terminal.import_file(
            factory,
            settings,
            company_id,
            target,
            kind=kind,
            dry_run=args.dry_run,
            settle_missing=args.settle_missing,
        )
    except KeyboardInterrupt:
        return 130
    finally:
        engine.dispose()


def cmd_prune_api(_args: argparse.Namespace) -> int:
    from portal.api.retention import prune

    settings, engine, factory, _company_id = _import_session()
    try:
        pruned = prune(factory, settings.api)
    finally:
        engine.dispose()
    print(
        f"{pruned.idempotent_requests} stored API answers older than "
        f"{settings.api.idempotency_hours} hours, {pruned.deliveries} finished webhook "
        f"deliveries and {pruned.events} events older than "
        f"{settings.api.webhook_retention_days} days removed."
    )
    return 0


def cmd_purge_imports(_args: argparse.Namespace) -> int:
    from portal.db import transaction
    from portal.imports.service import purge

    settings, engine, factory, _company_id = _import_session()
    try:
        with transaction(factory) as db:
            removed = purge(db, settings)
    finally:
        engine.dispose()
    print(
        f"{removed} imported files older than {settings.import_retention_days} days removed "
        "(their history stays)."
    )
    return 0


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, plus the application's own loggers at the configured level."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["portal"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def _serve(settings: Settings, host: str, port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        "portal.web.app:asgi",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level=settings.log_level,
        log_config=_log_config(settings.log_level),
        access_log=False,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    if args.migrate:
        from portal import migrate

        settings = _settings()
        _prepare_sqlite_dir(settings.database_url)
        migrate.upgrade(settings.database_url)
    else:
        settings = _migrated_settings()
    _serve(settings, args.host, args.port, args.workers)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from portal import migrate
    from portal.company.service import sync_company
    from portal.db import make_engine, make_session_factory, transaction
    from portal.demo.sample import SAMPLE_FILE
    from portal.demo.seed import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, seed_demo, seed_demo_admin
    from portal.links.service import find_customer, issue_link
    from portal.links.tokens import LinkSigner
    from portal.reminders.editor.versions import seed as seed_scenarios

    settings = _settings()
    if not settings.development:
        sys.exit("portal demo seeds made-up customers: run it with PORTAL_ENVIRONMENT=development")
    base_url = f"http://{args.host}:{args.port}"
    if "PORTAL_BASE_URL" not in os.environ:
        os.environ["PORTAL_BASE_URL"] = base_url
    if "PORTAL_REMINDER_SCENARIOS_FILE" not in os.environ:
        from portal.demo.seed import DEMO_SCENARIOS_FILE

        # The demo's scenarios suit its invoices: emails, SMS, a letter and call tasks at once.
        os.environ["PORTAL_REMINDER_SCENARIOS_FILE"] = str(DEMO_SCENARIOS_FILE)
    if "PORTAL_REMINDER_POLL_SECONDS" not in os.environ:
        os.environ["PORTAL_REMINDER_POLL_SECONDS"] = "5"
    # The outbox viewer (behind the back-office login) shows what the demo's worker "sent".
    os.environ.setdefault("PORTAL_DEV_OUTBOX", "true")
    settings = _settings()
    _prepare_sqlite_dir(settings.database_url)
    migrate.upgrade(settings.database_url)
    signer = LinkSigner(settings.secret_keys, settings.link_max_age_seconds)
    engine = make_engine(settings.database_url)
    with transaction(make_session_factory(engine)) as db:
        company = sync_company(db, settings.company)
        seed_demo(db, company, settings.documents_dir)
        seed_demo_admin(db, company, development=settings.development)
        # The editor starts from the demo's scenarios (the history shows where they came from).
        seed_scenarios(db, company.id, settings.reminders.scenarios_file)
        links = []
        for reference in DEMO_CUSTOMERS_SHOWN:
            customer = find_customer(db, company.id, reference)
            links.append(
                (customer, issue_link(db, signer, settings.base_url, customer, purpose="demo"))
            )
    engine.dispose()
    print("\nRelance demo is ready.\n")
    print("Portal links (each opens one demo customer's account):")
    for customer, url in links:
        print(f"  {customer.reference}  {customer.name:<28} ({customer.language})  {url}")
    print(f"\nBack office: {settings.base_url}/admin")
    print(f"  log in as {DEMO_ADMIN_EMAIL} with the password {DEMO_ADMIN_PASSWORD}")
    print(f"\nDatabase: {settings.database_url}")
    print("Print a fresh link at any time:  portal link C-1002")
    print(f"Import a sample accounting export:  portal import {_shown_path(SAMPLE_FILE)}")
    print("  (add --dry-run to see the preview only; or upload it at /admin/imports)")
    if args.no_serve:
        return 0
    print("\nReminders: the worker runs in this process and plans today's run now.")
    print(
        f'  Outbox (the emails, SMS and letters it "sent"): {settings.base_url}/dev/outbox'
        " (log in to the back office)"
    )
    print(f"  Call tasks for credit managers: {settings.base_url}/admin/tasks")
    print(f"Serving on {settings.base_url} (Ctrl+C to stop)\n", flush=True)
    start_worker_thread(settings, any_time=True)
    _serve(settings, args.host, args.port, 1)
    return 0


def _shown_path(path: Any) -> str:
    """``path`` relative to the current directory when it is below it."""
    from pathlib import Path

    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portal",
        description="Relance: payment portal behind signed reminder links. "
        "Settings come from PORTAL_* environment variables (see docs/configuration.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser(
        "db",
        help="database schema (migrations)",
        description="Apply or inspect the database migrations.",
    )
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser(
        "upgrade",
        help="apply migrations (default: up to the latest)",
        description="Apply migrations up to REVISION (default: head).",
    )
    upgrade.add_argument("revision", nargs="?", default="head")
    downgrade = db_commands.add_parser(
        "downgrade",
        help="revert migrations down to a revision",
        description="Revert migrations down to REVISION ('base' for all).",
    )
    downgrade.add_argument("revision")
    db_commands.add_parser(
        "current",
        help="show the applied revision",
        description="Show the revision the database is at.",
    )
    db_commands.add_parser(
        "check",
        help="fail if the models and the migrations differ",
        description="Compare the migrated schema with the models; exit 1 on any difference.",
    )
    db.set_defaults(handler=cmd_db)

    demo = commands.add_parser(
        "demo",
        help="migrate, seed demo data, print portal links and serve",
        description="Apply migrations, seed a demo company with ten customers and forty invoices "
        "(idempotent) and a demo back-office administrator, print three portal links and "
        "the back-office login, then serve the app.",
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--no-serve", action="store_true", help="seed and print links, then exit")
    demo.set_defaults(handler=cmd_demo)

    serve = commands.add_parser(
        "serve",
        help="serve the application with uvicorn",
        description="Serve the application with uvicorn.",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--migrate", action="store_true", help="apply migrations before serving")
    serve.set_defaults(handler=cmd_serve)

    link = commands.add_parser(
        "link",
        help="print a fresh signed portal link for a customer",
        description="Print a fresh signed portal URL for CUSTOMER_REF.",
    )
    link.add_argument("customer_ref", metavar="CUSTOMER_REF", help="the customer's reference")
    link.add_argument(
        "--invoice",
        action="append",
        metavar="NUMBER",
        help="limit the link to this invoice (repeatable)",
    )
    link.add_argument(
        "--days",
        type=int,
        metavar="N",
        help="days the link stays valid (default: PORTAL_LINK_MAX_AGE_DAYS)",
    )
    link.set_defaults(handler=cmd_link)

    revoke = commands.add_parser(
        "revoke-links",
        help="make every earlier link of a customer stop working",
        description="Revoke every link issued so far to CUSTOMER_REF and end its portal sessions.",
    )
    revoke.add_argument("customer_ref", metavar="CUSTOMER_REF")
    revoke.set_defaults(handler=cmd_revoke)

    user = commands.add_parser(
        "user",
        help="back-office users",
        description="Manage the back office's users.",
    )
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = user_commands.add_parser(
        "create",
        help="create a back-office user",
        description="Create a back-office user. On a terminal the password is asked twice; "
        f"otherwise it is read from {NEW_USER_PASSWORD_ENV}. It is never taken from the "
        "command line. Passwords have at least 12 characters.",
    )
    create.add_argument("--email", required=True, help="the login, stored in lowercase")
    create.add_argument(
        "--role",
        required=True,
        choices=USER_ROLES,
        help="admin: everything; credit_manager: act on customers; viewer: read only",
    )
    create.add_argument("--name", default="", help="the name shown to other users")
    user.set_defaults(handler=cmd_user)
    reminders = commands.add_parser(
        "reminders",
        help="plan reminder runs",
        description="Plan the reminders scenarios call for (see docs/architecture.md).",
    )
    reminder_commands = reminders.add_subparsers(
        dest="reminders_command", required=True, metavar="ACTION"
    )
    plan = reminder_commands.add_parser(
        "plan",
        help="print what a run would send, changing nothing",
        description="Print, as a table, the messages a run would plan (no side effect).",
    )
    plan.add_argument(
        "--date",
        type=_iso_date,
        metavar="YYYY-MM-DD",
        help="plan as on this day (at PORTAL_REMINDER_PLAN_HOUR, company timezone)",
    )
    plan.add_argument("--customer", metavar="REF", help="only this customer")
    run = reminder_commands.add_parser(
        "run",
        help="plan and enqueue today's messages",
        description="Plan today's messages and put them in the outbox; `portal worker` "
        "delivers them. Running it twice the same day adds nothing.",
    )
    run.add_argument("--customer", metavar="REF", help="only this customer")
    run.add_argument(
        "--send-now",
        action="store_true",
        help="let the messages leave at once, outside business hours (demos)",
    )
    reminders.set_defaults(handler=cmd_reminders)

    scenarios = commands.add_parser(
        "scenarios",
        help="export, import or seed the reminder scenarios",
        description="The scenarios the back office edits, as a TOML file (docs/reminders.md).",
    )
    scenario_commands = scenarios.add_subparsers(
        dest="scenarios_command", required=True, metavar="ACTION"
    )
    scenario_export = scenario_commands.add_parser("export", help="write the current version")
    scenario_export.add_argument("file", nargs="?", default="-", help="a file, or - (stdout)")
    scenario_import = scenario_commands.add_parser("import", help="check and save a new version")
    scenario_import.add_argument("file")
    scenario_commands.add_parser("seed", help="store the default file if nothing is stored")
    scenarios.set_defaults(handler=cmd_scenarios)

    worker = commands.add_parser(
        "worker",
        help="plan once a day, deliver the reminder outbox and webhooks, apply queued imports",
        description="Plan the day's reminders from PORTAL_REMINDER_PLAN_HOUR (catching up a "
        "missed day once) and deliver the outbox: SMTP, SMS, letters, call tasks; deliver "
        "outgoing webhooks. "
        "Several workers may run at once on PostgreSQL.",
    )
    worker.add_argument("--once", action="store_true", help="deliver what is due, then exit")
    worker.add_argument("--no-plan", action="store_true", help="only deliver, never plan")
    worker.add_argument(
        "--send-now",
        action="store_true",
        help="deliver outside business hours too (demos, tests)",
    )
    worker.set_defaults(handler=cmd_worker)

    imp = commands.add_parser(
        "import",
        help="import customers, contacts, invoices or payments from a CSV or XLSX file",
        description="Read FILE (CSV as accounting software writes it, or XLSX), show what "
        "it would change (new, changed, unchanged and rejected rows, duplicates flagged), then "
        "apply it in batches. Rows are keyed by your own references: importing the same file "
        "twice changes nothing. See docs/imports.md.",
    )
    imp.add_argument("file", nargs="?", metavar="FILE", help="the file to import")
    imp.add_argument(
        "--kind",
        choices=("customers", "contacts", "invoices", "payments"),
        help="what the file holds (default: guessed from its column headers)",
    )
    imp.add_argument("--dry-run", action="store_true", help="show the preview, write nothing")
    imp.add_argument(
        "--settle-missing",
        action="store_true",
        help="the file lists every open invoice: mark the open invoices it no longer lists "
        "as settled outside Relance",
    )
    imp.add_argument(
        "--watch",
        metavar="DIR",
        help="import every file that lands in DIR, moving it to DIR/imported or DIR/failed",
    )
    imp.add_argument(
        "--interval", type=float, default=10.0, help="seconds between looks at DIR (--watch)"
    )
    imp.add_argument("--once", action="store_true", help="with --watch: one look, then exit")
    imp.set_defaults(handler=cmd_import)

    bank = commands.add_parser(
        "bank",
        help="bank statements: import them, matched to invoices",
        description="Bank statements (CAMT.053, CAMT.054, CFONB 120, CSV). See "
        "docs/bank-statements.md.",
    )
    bank_commands = bank.add_subparsers(dest="bank_command", required=True, metavar="ACTION")
    bank_import = bank_commands.add_parser(
        "import",
        help="import a statement file",
        description="Read FILE, record the payments it matches exactly and leave the other "
        "credit lines in the back office's lines to match. Lines already imported are "
        "skipped: importing the same file twice changes nothing.",
    )
    bank_import.add_argument("file", metavar="FILE", help="the statement file")
    bank_import.add_argument("--dry-run", action="store_true", help="say what it would do")
    bank.set_defaults(handler=cmd_bank)

    purge = commands.add_parser(
        "purge-imports",
        help="remove imported files kept longer than PORTAL_IMPORT_RETENTION_DAYS",
        description="Remove the original files of imports older than the retention period "
        "(the worker also does it daily). The import history stays.",
    )
    purge.set_defaults(handler=cmd_purge_imports)

    prune_api = commands.add_parser(
        "prune-api",
        help="remove stored API answers and finished webhook deliveries past their retention",
        description="Remove the answers stored for Idempotency-Key retries older than "
        "PORTAL_API_IDEMPOTENCY_HOURS, and webhook deliveries delivered or failed for good "
        "longer than PORTAL_WEBHOOK_RETENTION_DAYS ago, with their attempts and events "
        "(the worker also does it every minute). Deliveries still owed are kept.",
    )
    prune_api.set_defaults(handler=cmd_prune_api)

    cases = commands.add_parser(
        "cases",
        help="disputes, payment plans and promises",
        description="Work on cases from the command line.",
    )
    case_commands = cases.add_subparsers(dest="cases_command", required=True, metavar="ACTION")
    check = case_commands.add_parser(
        "check",
        help="settle completed plans and kept promises, break missed ones",
        description="Check every running payment plan and promise to pay: completed ones "
        "are settled, missed ones (after their grace period) are broken and go to a "
        "credit manager; reminder holds are released either way. Running it twice does "
        "nothing more.",
    )
    check.add_argument("--date", metavar="YYYY-MM-DD", help="the day to check as (default: today)")
    cases.set_defaults(handler=cmd_cases)
    return parser


def _iso_date(value: str) -> Any:
    import datetime as dt

    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
