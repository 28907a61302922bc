"""Commands that serve the app: the server itself, and the demo."""

from __future__ import annotations

import argparse
import copy
import os
import sys
from typing import Any

from portal.cli.common import (
    DEMO_CUSTOMERS_SHOWN,
    migrated_settings_or_exit,
    prepare_sqlite_dir,
    settings_or_exit,
    shown_path,
)
from portal.cli.reminders import start_worker_thread
from portal.settings import Settings


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

        settings = settings_or_exit()
        prepare_sqlite_dir(settings.database_url)
        migrate.upgrade(settings.database_url)
    else:
        settings = migrated_settings_or_exit()
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

    settings = settings_or_exit()
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
    settings = settings_or_exit()
    prepare_sqlite_dir(settings.database_url)
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
    print(f"Import a sample accounting export:  portal import {shown_path(SAMPLE_FILE)}")
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
