"""Recording a bank statement's thousands of transfers at once, leaving the database exactly
as recording them one after the other would: ``requests.confirm_transfer`` for the money of
a payment request, ``service.record_payment`` for money naming invoices (provider ``bank``,
receipt owed, allocated to the named invoices first, then the oldest, the rest as credit).

One after the other costs several round trips per payment. Here what the payments read is
read first, in a few statements: the requests to confirm (locked), the invoices the
payments name (locked; all the open invoices of a payer only when its money goes beyond
what it names, see ``_read_invoices``), the declarations still open of their customers.
Each payment is then allocated in Python, in order, against the rows as the previous
payments left them (``service.plan_allocation``, the same code as one payment), and the
outcome written in a few statements per table (binary COPY, one UPDATE from arrays).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.orm import Session

from portal import clock
from portal.customers.models import Customer
from portal.db import draw_ids, one_of
from portal.invoices.models import Invoice, InvoiceStatus
from portal.ordered_writes import OrderedWrites, ordered_writes
from portal.payments.bulk_writes import Recorded, write_transfers
from portal.payments.models import Payment, PaymentMethod, PaymentRequest, PaymentRequestStatus
from portal.payments.service import (
    OpenInvoice,
    PaymentError,
    RecordedPayment,
    payment_row,
    plan_allocation,
    recorded_event,
)
from portal.payments.transfer import creditor_reference
from portal.payments.transfer_checks import (
    PaymentRequestError,
    check_confirmable,
    pending_until,
)
from portal.timeline.models import Actor
from portal.webhooks import events

BATCH = 20_000  # ids per query on PostgreSQL (one array parameter); SQLite counts them
SQLITE_BATCH = 900
_invoices = cast(Table, Invoice.__table__)
_requests = cast(Table, PaymentRequest.__table__)
_customers = cast(Table, Customer.__table__)
_payments = cast(Table, Payment.__table__)


@dataclass(frozen=True)
class BankTransfer:
    """One transfer to record: a request's money (``request_id``), or money for a customer
    naming ``invoice_ids`` (maybe none), recorded with ``provider_reference``."""

    customer_id: int
    amount_minor: int
    currency: str
    received_on: dt.date
    provider_reference: str = ""
    invoice_ids: tuple[int, ...] = ()
    request_id: int | None = None
    actor: Actor = Actor.SYSTEM
    actor_id: str | None = None


@dataclass
class _Invoice:
    id: int
    customer_id: int
    currency: str
    number: str
    amount_minor: int
    paid_minor: int
    status: InvoiceStatus
    transfer_pending_until: dt.date | None
    updated_at: dt.datetime | None
    due_date: dt.date


@dataclass
class _Request:
    id: int
    customer_id: int
    currency: str
    method: PaymentMethod
    status: PaymentRequestStatus
    invoice_ids: list[int]


_INVOICE_COLUMNS = (
    _invoices.c.id,
    _invoices.c.customer_id,
    _invoices.c.currency,
    _invoices.c.number,
    _invoices.c.amount_minor,
    _invoices.c.paid_minor,
    _invoices.c.status,
    _invoices.c.transfer_pending_until,
    _invoices.c.updated_at,
    _invoices.c.due_date,
)


@dataclass
class _State:
    """The rows the payments read, as the payments so far left them."""

    invoices: dict[int, _Invoice] = field(default_factory=dict)
    open: dict[tuple[int, str], list[_Invoice]] = field(default_factory=dict)
    requests: dict[int, _Request] = field(default_factory=dict)
    companies: dict[int, int] = field(default_factory=dict)
    # customer -> their declarations still open: request id -> (invoice ids, grace until)
    declared: dict[int, dict[int, tuple[list[int], dt.date | None]]] = field(default_factory=dict)


def _batches(session: Session, values: Sequence[int]) -> list[Sequence[int]]:
    size = BATCH if session.get_bind().dialect.name == "postgresql" else SQLITE_BATCH
    ordered = sorted(set(values))
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


def _rows(session: Session, query: Any) -> list[Any]:
    return list(session.execute(query))


def _read(session: Session, transfers: Sequence[BankTransfer]) -> _State:
    state = _State()
    request_ids = [t.request_id for t in transfers if t.request_id is not None]
    for part in _batches(session, request_ids):
        query = (
            select(
                _requests.c.id,
                _requests.c.customer_id,
                _requests.c.currency,
                _requests.c.method,
                _requests.c.status,
                _requests.c.invoice_ids,
            )
            .where(one_of(session, _requests.c.id, part))
            .order_by(_requests.c.id)
            .with_for_update()
        )
        for row in _rows(session, query):
            state.requests[row.id] = _Request(*row)
    payers = {t.customer_id for t in transfers if t.request_id is None}
    payers |= {r.customer_id for r in state.requests.values()}
    for part in _batches(session, list(payers)):
        query = select(_customers.c.id, _customers.c.company_id).where(
            one_of(session, _customers.c.id, part)
        )
        state.companies.update({row.id: row.company_id for row in _rows(session, query)})
    _read_invoices(session, state, transfers)
    confirming = {r.customer_id for r in state.requests.values()}
    for part in _batches(session, list(confirming)):
        query = select(
            _requests.c.id,
            _requests.c.customer_id,
            _requests.c.invoice_ids,
            _requests.c.grace_until,
        ).where(
            one_of(session, _requests.c.customer_id, part),
            _requests.c.method == PaymentMethod.TRANSFER,
            _requests.c.status == PaymentRequestStatus.DECLARED,
        )
        for row in _rows(session, query):
            state.declared.setdefault(row.customer_id, {})[row.id] = (
                row.invoice_ids,
                row.grace_until,
            )
    return state


def _read_invoices(session: Session, state: _State, transfers: Sequence[BankTransfer]) -> None:
    """The invoices the payments can change, locked: those they name (a request's, the
    line's), and every open one of the payers whose money goes beyond what they name
    (the oldest get the rest, as in ``record_payment``).

    Most payments pay exactly what they name: their payers' other invoices are neither
    read nor locked. Which payers go beyond is found on a first read without locks; each
    payer's invoices are then locked in one statement, in one order (customer, due date,
    id) as ``record_payment`` locks a customer's, so concurrent payments wait on each
    other instead of deadlocking. Should a payment made meanwhile change what is named
    (a rare race), the payers it pushes beyond are locked after, in a further statement.
    """
    named = {i for t in transfers if t.request_id is None for i in t.invoice_ids}
    named |= {i for r in state.requests.values() for i in r.invoice_ids}
    currencies = {t.currency for t in transfers} | {r.currency for r in state.requests.values()}
    probe = _State(requests=state.requests)
    first: list[Any] = []
    for part in _batches(session, list(named)):
        first += _rows(session, select(*_INVOICE_COLUMNS).where(_by_id(session, part)))
    _load(probe, first)
    beyond = _beyond_named(probe, transfers)
    seen = {i.id: (i.paid_minor, i.status) for i in probe.invoices.values()}
    owners: dict[int, list[int]] = {}
    for invoice in probe.invoices.values():
        owners.setdefault(invoice.customer_id, []).append(invoice.id)
    customers = sorted(set(owners) | {customer for customer, _c in beyond})
    wide = {customer for customer, _c in beyond}
    while customers:
        locked: list[Any] = []
        for part in _batches(session, customers):
            ids = [i for c in part for i in owners.pop(c, [])]
            everything = [c for c in part if c in wide]
            query = (
                select(*_INVOICE_COLUMNS)
                .where(
                    or_(
                        _by_id(session, ids),
                        and_(
                            one_of(session, _invoices.c.customer_id, everything),
                            _invoices.c.currency.in_(sorted(currencies)),
                            _invoices.c.status == InvoiceStatus.OPEN,
                        ),
                    )
                )
                .order_by(_invoices.c.customer_id, _invoices.c.due_date, _invoices.c.id)
                .with_for_update()
            )
            locked += _rows(session, query)
        _load(state, locked)
        if all(_as_seen(state.invoices.get(i), was) for i, was in seen.items()):
            return  # what is named is as first read: the same payers go beyond it
        more = {customer for customer, _c in _beyond_named(state, transfers)} - wide
        wide |= more
        customers = sorted(more)


def _as_seen(invoice: _Invoice | None, seen: tuple[int, InvoiceStatus]) -> bool:
    return invoice is not None and (invoice.paid_minor, invoice.status) == seen


def _by_id(session: Session, ids: Sequence[int]) -> Any:
    return one_of(session, _invoices.c.id, ids)


def _load(state: _State, rows: Sequence[Any]) -> None:
    """Add invoice rows to ``state``; each payer's open ones listed oldest due first."""
    for row in rows:
        invoice = _Invoice(*row)
        state.invoices[invoice.id] = invoice
    by_payer: dict[tuple[int, str], list[_Invoice]] = {}
    for invoice in state.invoices.values():
        if invoice.status is InvoiceStatus.OPEN:
            by_payer.setdefault((invoice.customer_id, invoice.currency), []).append(invoice)
    for invoices in by_payer.values():
        invoices.sort(key=lambda i: (i.due_date, i.id))
    state.open = by_payer


def _beyond_named(state: _State, transfers: Sequence[BankTransfer]) -> set[tuple[int, str]]:
    """The payers (customer, currency) one of whose payments, allocated in order over the
    open invoices it names as ``state`` has them, leaves money over: the rest goes to
    their oldest invoices, which must be read. (What ``plan_allocation`` does with the
    named invoices, the oldest due first, without building its shares.)"""
    paid: dict[int, int] = {}
    beyond: set[tuple[int, str]] = set()
    for transfer in transfers:
        key, named = _payer(state, transfer)
        if key is None or key in beyond or transfer.amount_minor <= 0:
            continue
        chosen = set(named)
        left = transfer.amount_minor
        for invoice in state.open.get(key, ()):
            if invoice.id not in chosen:
                continue
            already = paid.get(invoice.id, invoice.paid_minor)
            part = min(left, invoice.amount_minor - already)
            if part > 0:
                paid[invoice.id] = already + part
                left -= part
                if not left:
                    break
        if left:
            beyond.add(key)
    return beyond


def _payer(state: _State, transfer: BankTransfer) -> tuple[tuple[int, str] | None, Sequence[int]]:
    """Whose invoices ``transfer`` pays (customer, currency), and the ones it names."""
    if transfer.request_id is None:
        return (transfer.customer_id, transfer.currency), transfer.invoice_ids
    request = state.requests.get(transfer.request_id)
    if request is None:
        return None, ()
    return (request.customer_id, request.currency), sorted(request.invoice_ids)


@dataclass
class PreparedTransfers:
    """Transfers whose rows are read and locked, and their payments' ids drawn (in order):
    ``record`` plans and writes them."""

    transfers: Sequence[BankTransfer]
    state: _State
    payment_ids: list[int]
    listening: set[int]  # companies whose outgoing events are stored

    def record(self, writes: OrderedWrites, *, today: dt.date) -> list[RecordedPayment]:
        """Record the transfers in order, exactly as one ``confirm_transfer`` /
        ``record_payment`` after the other would; raises what they would raise
        (PaymentRequestError, PaymentError) before any payment is written."""
        return _record(self, writes, today)


def prepare_transfers(session: Session, transfers: Sequence[BankTransfer]) -> PreparedTransfers:
    """Read and lock what ``transfers`` change, in the caller's transaction; draw the ids
    of their payments."""
    state = _State()
    if transfers:
        session.flush()
        state = _read(session, transfers)
    ids = draw_ids(session, _payments, len(transfers))
    companies = set(state.companies.values())
    listening = events.listening_companies(session, companies) if companies else set()
    return PreparedTransfers(transfers, state, ids, listening)


def record_transfers(
    session: Session, transfers: Sequence[BankTransfer], *, today: dt.date
) -> list[RecordedPayment]:
    """Record ``transfers`` in order, in the caller's transaction, exactly as one
    ``confirm_transfer`` / ``record_payment`` after the other would; raises what they would
    raise (PaymentRequestError, PaymentError) before anything is written."""
    prepared = prepare_transfers(session, transfers)
    with ordered_writes(session) as writes:
        return prepared.record(writes, today=today)


def _record(
    prepared: PreparedTransfers, writes: OrderedWrites, today: dt.date
) -> list[RecordedPayment]:
    if not prepared.transfers:
        return []
    state = prepared.state
    now = clock.now()
    recorded: list[Recorded] = []
    touched: dict[int, _Invoice] = {}
    for transfer in prepared.transfers:
        request = None
        customer_id, currency = transfer.customer_id, transfer.currency
        invoice_ids: Sequence[int] = transfer.invoice_ids
        reference = transfer.provider_reference
        if transfer.request_id is not None:
            request = state.requests.get(transfer.request_id)
            if request is None:
                raise PaymentRequestError(PaymentRequestError.NOT_CONFIRMABLE)
            check_confirmable(
                request.method, request.status, transfer.amount_minor, transfer.received_on, today
            )
            customer_id, currency = request.customer_id, request.currency
            invoice_ids = sorted(request.invoice_ids)
            reference = creditor_reference(customer_id, request.id)
        elif transfer.amount_minor <= 0:
            raise PaymentError("amount must be positive")
        company_id = state.companies[customer_id]
        key = (customer_id, currency)
        payable = state.open.get(key, [])
        locked = [OpenInvoice(i.id, i.number, i.amount_minor, i.paid_minor) for i in payable]
        shares, credit = plan_allocation(transfer.amount_minor, locked, invoice_ids)
        for share in shares:
            invoice = state.invoices[share.invoice_id]
            invoice.paid_minor, invoice.status = share.paid_minor, share.status
            invoice.updated_at = now
            if share.settled:
                invoice.transfer_pending_until = None
            touched[invoice.id] = invoice
        if any(share.settled for share in shares):
            state.open[key] = [i for i in payable if i.status is InvoiceStatus.OPEN]
        if request is not None:
            request.status = PaymentRequestStatus.CONFIRMED
            _recompute_pending(state, request, now, touched)
        recorded.append(
            Recorded(
                payment=payment_row(
                    customer_id,
                    amount_minor=transfer.amount_minor,
                    currency=currency,
                    method=PaymentMethod.TRANSFER,
                    provider="bank",
                    provider_reference=reference,
                    received_at=dt.datetime.combine(transfer.received_on, dt.time(12), dt.UTC),
                    created_at=now,
                    payment_request_id=request.id if request is not None else None,
                    receipt=True,
                ),
                shares=shares,
                event=recorded_event(
                    company_id,
                    customer_id,
                    actor=transfer.actor,
                    actor_id=transfer.actor_id,
                    amount_minor=transfer.amount_minor,
                    currency=currency,
                    method=PaymentMethod.TRANSFER,
                    shares=shares,
                    credit_minor=credit,
                    reference=reference,
                ),
                credit_minor=credit,
                received_on=transfer.received_on,
            )
        )
    invoice_rows = [
        {
            "id": i.id,
            "paid_minor": i.paid_minor,
            "status": i.status,
            "transfer_pending_until": i.transfer_pending_until,
            "updated_at": i.updated_at,
        }
        for i in sorted(touched.values(), key=lambda i: i.id)
    ]
    return write_transfers(
        writes, prepared.payment_ids, recorded, invoice_rows, now, prepared.listening
    )


def _recompute_pending(
    state: _State, request: _Request, now: dt.datetime, touched: dict[int, _Invoice]
) -> None:
    """As ``requests._recompute_pending``: the request's invoices stay "payment pending"
    only while a declaration still open covers them (an invoice changed is stamped)."""
    declared = state.declared.get(request.customer_id, {})
    declared.pop(request.id, None)
    for invoice_id in sorted(set(request.invoice_ids)):
        invoice = state.invoices.get(invoice_id)
        if invoice is None:
            continue
        pending = pending_until(invoice_id, declared.values())
        if pending != invoice.transfer_pending_until:
            invoice.transfer_pending_until = pending
            invoice.updated_at = now
            touched[invoice_id] = invoice
