"""The ``portal`` command's arguments, each command pointing at its handler."""

from __future__ import annotations

import argparse

from portal.cli.admin import cmd_db, cmd_link, cmd_revoke, cmd_user
from portal.cli.common import (
    NEW_USER_PASSWORD_ENV,
    USER_ROLES,
    iso_date,
)
from portal.cli.data import cmd_bank, cmd_import, cmd_prune_api, cmd_purge_imports
from portal.cli.reminders import cmd_cases, cmd_reminders, cmd_scenarios, cmd_worker
from portal.cli.server import cmd_demo, cmd_serve


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
        type=iso_date,
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
