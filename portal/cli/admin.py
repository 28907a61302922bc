"""Commands for the database schema, portal links and back-office users."""

from __future__ import annotations

import argparse
import os
import sys

from portal.cli.common import (
    NEW_USER_PASSWORD_ENV,
    PASSWORD_PROMPTS,
    migrated_settings_or_exit,
    prepare_sqlite_dir,
    settings_or_exit,
)


def cmd_db(args: argparse.Namespace) -> int:
    from portal import migrate

    settings = settings_or_exit()
    prepare_sqlite_dir(settings.database_url)
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

    settings = migrated_settings_or_exit()
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

    settings = migrated_settings_or_exit()
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

    settings = migrated_settings_or_exit()
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
