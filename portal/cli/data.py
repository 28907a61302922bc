"""Commands for data in and housekeeping: imports, bank statements, retention."""

from __future__ import annotations

import argparse
import sys

from portal.cli.common import (
    company_session,
)


def cmd_bank(args: argparse.Namespace) -> int:
    from pathlib import Path

    from portal.bank import terminal

    target = Path(args.file)
    if not target.is_file():
        sys.exit(f"portal bank import: {target} is not a file")
    settings, engine, factory, company_id = company_session()
    try:
        return terminal.import_file(factory, settings, company_id, target, dry_run=args.dry_run)
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
    settings, engine, factory, company_id = company_session()
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

    settings, engine, factory, _company_id = company_session()
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

    settings, engine, factory, _company_id = company_session()
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
