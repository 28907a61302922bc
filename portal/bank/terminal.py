"""`portal bank import FILE`: the same import as the back office, from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.bank import csv_format
from portal.bank.errors import StatementError
from portal.bank.statements import Account, import_statement
from portal.db import transaction
from portal.settings import Settings


def import_file(
    factory: sessionmaker[Session],
    settings: Settings,
    company_id: int,
    path: Path,
    *,
    dry_run: bool = False,
    out: Any = print,
) -> int:
    """Import (or with ``dry_run`` only check) the statement at ``path``; 0, or 1 on refusal."""
    data = path.read_bytes()
    account = Account(settings.company.iban, settings.company.currency)
    try:
        with transaction(factory) as db:
            header = (
                csv_format.header_of(data) if not data.lstrip().startswith((b"<", b"01")) else []
            )
            saved = csv_format.saved_mapping(db, company_id, header) if header else None
            with db.begin_nested() as attempt:
                result = import_statement(
                    db,
                    company_id,
                    account,
                    data,
                    filename=path.name,
                    uploaded_by="command line",
                    today=clock.today_in(settings.company.timezone),
                    csv_mapping=saved,
                )
                if dry_run:
                    attempt.rollback()
    except StatementError as error:
        out(f"{path}: refused, nothing imported: {error}")
        return 1
    verb = "would import" if dry_run else "imported"
    out(
        f"{path}: {verb} {result.new} new lines of {result.total}: {result.matched} recorded as "
        f"payments, {result.review} to match by hand, {result.debits} debits ignored."
    )
    return 0
