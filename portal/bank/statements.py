"""Importing a statement file: read it whole (any problem refuses the file, nothing is
written), keep the lines not seen before (account + entry reference), then match the new
credit lines and record what matched exactly; the rest waits for review."""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from portal import clock
from portal.bank import camt, camt053, camt054, cfonb120, csv_format
from portal.bank.errors import StatementError
from portal.bank.matcher import Decision, LineFacts, batch_size, chunks, decide
from portal.bank.models import BankLine, BankStatement, LineStatus
from portal.bank.parsed import ParsedStatement
from portal.bank.payments import (
    SYSTEM_ACTOR,
    LineRef,
    LineWrites,
    confirm_request,
    link_existing,
    note_confirmed,
    note_parts,
    part_reference,
    record_parts,
)
from portal.db import draw_ids, one_of
from portal.i18n import N_
from portal.invoices.models import Invoice, InvoiceStatus
from portal.ordered_writes import ordered_writes
from portal.payments.bulk import BankTransfer, prepare_transfers
from portal.payments.models import PaymentRequest
from portal.payments.service import OpenInvoice

MAX_BYTES = 64 * 1024 * 1024
_lines = cast(Table, BankLine.__table__)
_invoices = cast(Table, Invoice.__table__)


@dataclass(frozen=True)
class Account:
    """The company's bank account, as configured: statements of another one are refused."""

    iban: str
    currency: str


@dataclass(frozen=True)
class ImportResult:
    statement_id: int | None  # None: every line was imported before
    total: int
    new: int
    matched: int
    review: int
    debits: int


def read(
    data: bytes, account: Account, csv_mapping: Mapping[str, str] | None = None
) -> ParsedStatement:
    """The statement in ``data``, in whichever format it is, checked against ``account``."""
    if not data.strip():
        raise StatementError(N_("The file is empty."))
    if len(data) > MAX_BYTES:
        raise StatementError(
            N_("The file is larger than %(size)d MB."), size=MAX_BYTES // (1024 * 1024)
        )
    found = camt.detect(data)
    first = data.lstrip()[:2]
    if found is not None:
        parsed = camt053.parse(data) if found[0] == "053" else camt054.parse(data)
    elif first == b"01" and len(data.splitlines()[0].rstrip(b"\r")) == cfonb120.RECORD:
        parsed = cfonb120.parse(data, account.iban)
    elif data.lstrip().startswith(b"<"):
        raise StatementError(N_("This XML file is not a camt.053 or camt.054 statement."))
    else:
        parsed = csv_format.parse(data, account.iban, account.currency, csv_mapping)
    check(parsed, account)
    return parsed


def check(parsed: ParsedStatement, account: Account) -> None:
    iban = parsed.account_iban.replace(" ", "").upper()
    if iban != account.iban.replace(" ", "").upper():
        raise StatementError(
            N_("This statement is for account %(account)s, not the company's account."),
            account=iban,
        )
    currencies = {line.currency for line in parsed.lines} | (
        {parsed.currency} if parsed.currency else set()
    )
    wrong = sorted(currencies - {account.currency})
    if wrong:
        raise StatementError(
            N_("The statement is in %(found)s; the account is in %(expected)s."),
            found=", ".join(wrong),
            expected=account.currency,
        )
    if not parsed.lines:
        raise StatementError(N_("The statement has no entries."))


def import_statement(
    session: Session,
    company_id: int,
    account: Account,
    data: bytes,
    *,
    filename: str,
    uploaded_by: str,
    today: dt.date,
    csv_mapping: Mapping[str, str] | None = None,
) -> ImportResult:
    """Import ``data`` in the caller's transaction: read and check it whole (StatementError
    before anything is written), add its new lines, record the exact matches."""
    parsed = read(data, account, csv_mapping)
    with batch_work():
        stored = new_lines(
            session, company_id, parsed, data, filename=filename, uploaded_by=uploaded_by
        )
        if stored is None:
            return ImportResult(None, len(parsed.lines), 0, 0, 0, 0)
        decisions = decide(session, company_id, stored.facts)
        counts = apply(session, stored, decisions, today)
    return ImportResult(
        stored.statement.id,
        len(parsed.lines),
        len(stored.rows),
        counts["matched"],
        counts["review"],
        len(stored.rows) - len(stored.facts),
    )


@contextmanager
def batch_work() -> Iterator[None]:
    """Python's cycle collector paused while a statement is matched and recorded: the
    work builds hundreds of thousands of rows that live till the end (none is a cycle to
    free), and the collector went over all of them again and again, a third of the
    Python time of a 50,000-line statement. Resumed after (if it ran before)."""
    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running:
            gc.enable()


@dataclass
class NewLines:
    """A statement's lines not imported before: their rows (ids drawn, not written yet:
    ``apply`` writes each once, with what was decided) and the credit lines to match."""

    statement: BankStatement
    rows: list[dict[str, Any]]
    facts: list[LineFacts]

    def refs(self) -> dict[int, LineRef]:
        return {
            row["id"]: LineRef(
                row["id"],
                row["company_id"],
                row["booked_on"],
                row["amount_minor"],
                row["currency"],
                row["entry_reference"],
            )
            for row in self.rows
        }


def new_lines(
    session: Session,
    company_id: int,
    parsed: ParsedStatement,
    data: bytes,
    *,
    filename: str,
    uploaded_by: str,
) -> NewLines | None:
    """Add the statement and draw ids for the lines not imported before (None: every line
    was); the lines themselves are written by ``apply``, once, with their outcome."""
    iban = parsed.account_iban.replace(" ", "").upper()
    unique = {line.entry_reference: line for line in reversed(parsed.lines)}
    seen: set[str] = set()
    for part in chunks(sorted(unique), batch_size(session)):
        seen.update(
            session.scalars(
                select(BankLine.entry_reference).where(
                    BankLine.account_iban == iban, one_of(session, BankLine.entry_reference, part)
                )
            )
        )
    fresh = [line for line in parsed.lines if line.entry_reference not in seen]
    fresh = list({line.entry_reference: line for line in reversed(fresh)}.values())[::-1]
    if not fresh:
        return None
    now = clock.now()
    statement = BankStatement(
        company_id=company_id,
        account_iban=iban,
        format=parsed.format,
        statement_ref=parsed.statement_id[:128],
        filename=filename[:255] or "statement",
        file_sha256=hashlib.sha256(data).hexdigest(),
        lines_total=len(parsed.lines),
        lines_new=len(fresh),
        created_by=uploaded_by[:254],
        created_at=now,
    )
    session.add(statement)
    session.flush()
    rows: list[dict[str, Any]] = [
        {
            "company_id": company_id,
            "statement_id": statement.id,
            "account_iban": iban,
            "entry_reference": line.entry_reference[:128],
            "booked_on": line.booked_on,
            "amount_minor": line.amount_minor,
            "currency": line.currency,
            "credit": line.credit,
            "debtor_name": line.debtor_name[:140],
            "debtor_iban": line.debtor_iban.replace(" ", "").upper()[:34],
            "remittance": line.remittance,
            "structured_reference": line.structured_reference[:64],
            "end_to_end_id": line.end_to_end_id[:64],
            "status": LineStatus.REVIEW if line.credit else LineStatus.DEBIT,
            "matched_by": None,
            "customer_id": None,
            "suggestions": [],
            "decided_by_user_id": None,
            "decided_at": None,
            "created_at": now,
        }
        for line in fresh
        if line.amount_minor > 0
    ]
    for new_id, row in zip(draw_ids(session, _lines, len(rows)), rows, strict=True):
        row["id"] = new_id
    facts = [
        LineFacts(
            row["id"],
            row["amount_minor"],
            row["currency"],
            row["debtor_name"],
            row["debtor_iban"],
            row["remittance"],
            row["structured_reference"],
        )
        for row in rows
        if row["credit"]
    ]
    return NewLines(statement, rows, facts)


def apply(
    session: Session, new: NewLines, decisions: list[Decision], today: dt.date
) -> Counter[str]:
    """Record the exact matches, all at once (``payments.bulk``: the same rows as one
    payment after the other, see ``apply_one_by_one``), then write the new lines, each
    once: matched with its payments, or to review with its suggestions."""
    lines = new.refs()
    transfers = []
    for decision in decisions:
        line = lines[decision.line_id]
        if not _records(decision):
            continue
        assert decision.customer_id is not None
        transfers.append(
            BankTransfer(
                decision.customer_id,
                line.amount_minor,
                line.currency,
                line.booked_on,
                provider_reference=part_reference(line, 1, 1),
                invoice_ids=tuple(decision.invoice_ids) if decision.request_id is None else (),
                request_id=decision.request_id,
                actor_id=SYSTEM_ACTOR,
            )
        )
    # As one by one, where each line is confirmed as of max(today, its booking day).
    latest = max([today, *(line.booked_on for line in lines.values())])
    prepared = prepare_transfers(session, transfers)
    payments = iter(prepared.payment_ids)
    counts: Counter[str] = Counter()
    writes = LineWrites()
    for decision in decisions:
        line = lines[decision.line_id]
        customer_id = decision.customer_id
        if _left_to_review(writes, line, decision, counts) or customer_id is None:
            continue
        rule = decision.rule or ""
        if decision.existing_payment_id is not None:
            link_existing(writes, line, decision.existing_payment_id, customer_id, rule)
        elif decision.request_id is not None:
            note_confirmed(writes, line, next(payments), customer_id, rule)
        else:
            parts = [(customer_id, line.amount_minor, decision.invoice_ids)]
            note_parts(writes, line, parts, [next(payments)], rule)
        counts["matched"] += 1
    with ordered_writes(session) as out:
        # The server stores the lines while the payments are planned, and so on.
        writes.write_lines(out, new.rows)
        prepared.record(out, today=latest)
        writes.write_links_and_events(out)
    return counts


def _left_to_review(
    writes: LineWrites, line: LineRef, decision: Decision, counts: Counter[str]
) -> bool:
    """Whether the decision leaves the line to review (noted so, with its suggestions)."""
    if decision.applies and decision.customer_id is not None:
        return False
    writes.done(line, LineStatus.REVIEW, suggestions=decision.suggestions)
    counts["review"] += 1
    return True


def _records(decision: Decision) -> bool:
    """Whether the decision becomes a new payment."""
    return (
        decision.applies
        and decision.customer_id is not None
        and decision.existing_payment_id is None
    )


def apply_one_by_one(
    session: Session, new: NewLines, decisions: list[Decision], today: dt.date
) -> Counter[str]:
    """``apply`` one payment after the other through the payment service (as the review
    queue records its answers): the reference the set-based path is tested against."""
    counts: Counter[str] = Counter()
    lines = new.refs()
    locked = _lock_open_invoices(session, decisions, lines)
    touched: set[int] = set()
    writes = LineWrites()
    for decision in decisions:
        line = lines[decision.line_id]
        customer_id = decision.customer_id
        if _left_to_review(writes, line, decision, counts) or customer_id is None:
            continue
        if customer_id in touched:
            locked.pop(customer_id, None)  # changed since it was read: read again
        touched.add(customer_id)
        rule = decision.rule or ""
        if decision.existing_payment_id is not None:
            link_existing(writes, line, decision.existing_payment_id, customer_id, rule)
        elif decision.request_id is not None:
            request = session.get(PaymentRequest, decision.request_id)
            assert request is not None
            confirm_request(session, writes, line, request, rule, today=today)
        else:
            parts = [(customer_id, line.amount_minor, decision.invoice_ids)]
            record_parts(session, writes, line, parts, rule, locked=locked)
        counts["matched"] += 1
    writes.write(session, new.rows)
    return counts


def _lock_open_invoices(
    session: Session, decisions: list[Decision], lines: dict[int, LineRef]
) -> dict[int, list[OpenInvoice]]:
    """The open invoices of the customers paid by invoice rules, locked in one statement per
    batch of customers (as ``record_payment`` would lock them one customer at a time)."""
    currency = {line.currency for line in lines.values()}
    wanted = sorted(
        {d.customer_id for d in decisions if d.applies and d.customer_id and not d.request_id}
    )
    out: dict[int, list[OpenInvoice]] = {c: [] for c in wanted}
    if len(currency) != 1 or not wanted:
        return {}
    code = currency.pop()
    for part in chunks(wanted, batch_size(session)):
        rows = session.execute(
            select(
                _invoices.c.customer_id,
                _invoices.c.id,
                _invoices.c.number,
                _invoices.c.amount_minor,
                _invoices.c.paid_minor,
            )
            .where(
                one_of(session, _invoices.c.customer_id, part),
                _invoices.c.currency == code,
                _invoices.c.status == InvoiceStatus.OPEN,
            )
            .order_by(_invoices.c.customer_id, _invoices.c.due_date, _invoices.c.id)
            .with_for_update()
        )
        for customer_id, *invoice in rows:
            out[customer_id].append(OpenInvoice(*invoice))
    return out
