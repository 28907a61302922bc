"""Deciding what each new credit line pays, for a whole statement at once.

Rules, in order (the first that finds something decides):

1. ``rf``: a creditor reference of this portal (exact, then tolerant of spaces, case and
   line breaks) names a customer's payment request: the request is confirmed with the
   line's amount (partial payments and overpayments are allocated as usual).
2. ``invoice_number``: open invoice numbers in the remittance text, all of one customer.
3. ``amount_name`` / ``amount_iban``: the amount equals one open invoice (or one declared
   transfer) of the customer whose name is the debtor's, or who paid from that IBAN before.

A rule that finds several possibilities, or something it cannot apply, sends the line to
review with ranked suggestions. The database is read a few times per statement (chunks of
ids), never once per line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy import Table, and_, select
from sqlalchemy.orm import Session

from portal.bank.models import BankLine, BankLinePayment, LineStatus
from portal.bank.references import creditor_references, invoice_tokens, name_key
from portal.customers.models import Customer
from portal.db import one_of
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import Payment, PaymentMethod, PaymentRequest, PaymentRequestStatus
from portal.payments.transfer import creditor_reference

CHUNK = 900
T = TypeVar("T")
_invoices = cast(Table, Invoice.__table__)


@dataclass(frozen=True)
class LineFacts:
    id: int
    amount_minor: int
    currency: str
    debtor_name: str
    debtor_iban: str
    remittance: str
    structured_reference: str


@dataclass
class Decision:
    """What to do with one line: apply (request, or invoices of a customer), or review."""

    line_id: int
    rule: str | None = None
    customer_id: int | None = None
    request_id: int | None = None
    invoice_ids: list[int] = field(default_factory=list)
    existing_payment_id: int | None = None  # the transfer was confirmed by hand already
    suggestions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def applies(self) -> bool:
        return self.rule is not None


def batch_size(session: Session) -> int:
    """Values per ``IN``: one array parameter on PostgreSQL takes many; SQLite counts them."""
    return 20_000 if session.get_bind().dialect.name == "postgresql" else CHUNK


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass(frozen=True)
class _Open:
    id: int
    customer_id: int
    number: str
    currency: str
    remaining: int
    status: str


def _invoices_where(
    session: Session, company_id: int, column: Any, values: Iterable[Any]
) -> list[_Open]:
    found: list[_Open] = []
    ordered = sorted(set(values))
    for part in chunks(ordered, batch_size(session)):
        rows = session.execute(
            select(
                _invoices.c.id,
                _invoices.c.customer_id,
                _invoices.c.number,
                _invoices.c.currency,
                _invoices.c.amount_minor - _invoices.c.paid_minor,
                _invoices.c.status,
            ).where(_invoices.c.company_id == company_id, one_of(session, column, part))
        )
        found.extend(_Open(*row) for row in rows)
    return found


def _suggestion(reason: str, score: int, customer_id: int, **values: Any) -> dict[str, Any]:
    return {"reason": reason, "score": score, "customer_id": customer_id, **values}


def decide(session: Session, company_id: int, lines: Sequence[LineFacts]) -> list[Decision]:
    decisions = {line.id: Decision(line.id) for line in lines}
    undecided = _by_reference(session, company_id, lines, decisions)
    undecided = _by_invoice_number(session, company_id, undecided, decisions)
    _by_amount(session, company_id, undecided, decisions)
    taken: set[int] = set()
    for decision in decisions.values():
        if decision.request_id is not None:
            if decision.request_id in taken:
                # A second line paying one request in the same file: new money, a person looks.
                decision.suggestions.append(
                    _suggestion("rf", 90, decision.customer_id or 0, request_id=decision.request_id)
                )
                decision.rule = decision.request_id = decision.customer_id = None
            else:
                taken.add(decision.request_id)
        decision.suggestions.sort(key=lambda s: -int(s["score"]))
        del decision.suggestions[8:]
    return [decisions[line.id] for line in lines]


def _by_reference(
    session: Session, company_id: int, lines: Sequence[LineFacts], decisions: dict[int, Decision]
) -> list[LineFacts]:
    found: dict[int, tuple[list[tuple[int, int]], bool]] = {}
    for line in lines:
        pairs, exact = creditor_references(line.structured_reference, line.remittance)
        if pairs:
            found[line.id] = (pairs, exact)
    request_ids = sorted({request for pairs, _e in found.values() for _c, request in pairs})
    requests: dict[int, PaymentRequest] = {}
    for part in chunks(request_ids, batch_size(session)):
        for request in session.scalars(
            select(PaymentRequest)
            .join(Customer, Customer.id == PaymentRequest.customer_id)
            .where(one_of(session, PaymentRequest.id, part), Customer.company_id == company_id)
        ):
            requests[request.id] = request
    confirmed = [r for r in requests.values() if r.status is PaymentRequestStatus.CONFIRMED]
    already = _confirmed_payments(session, confirmed)
    undecided = []
    for line in lines:
        pairs, exact = found.get(line.id, ([], False))
        known = [requests[r] for c, r in pairs if r in requests and requests[r].customer_id == c]
        decision = decisions[line.id]
        if len(known) != 1:
            for request in known:
                decision.suggestions.append(_request_suggestion(request, 100))
            if not known:
                undecided.append(line)
            continue
        request = known[0]
        usable = request.method is PaymentMethod.TRANSFER and request.currency == line.currency
        if usable and request.status in (PaymentRequestStatus.OPEN, PaymentRequestStatus.DECLARED):
            decision.rule = "rf" if exact else "rf_tolerant"
            decision.customer_id = request.customer_id
            decision.request_id = request.id
        elif usable and request.id in already and request.amount_minor == line.amount_minor:
            decision.rule = "rf" if exact else "rf_tolerant"
            decision.customer_id = request.customer_id
            decision.existing_payment_id = already.pop(request.id)
        else:
            decision.suggestions.append(_request_suggestion(request, 90))
    return undecided


def _request_suggestion(request: PaymentRequest, score: int) -> dict[str, Any]:
    return _suggestion(
        "rf",
        score,
        request.customer_id,
        request_id=request.id,
        invoice_ids=sorted(request.invoice_ids),
        status=request.status.value,
    )


def _confirmed_payments(session: Session, requests: Sequence[PaymentRequest]) -> dict[int, int]:
    """Requests confirmed by hand whose payment no bank line has taken yet -> payment id."""
    by_reference = {creditor_reference(r.customer_id, r.id): r.id for r in requests}
    out: dict[int, int] = {}
    for part in chunks(sorted(by_reference), batch_size(session)):
        rows = session.execute(
            select(Payment.provider_reference, Payment.id)
            .outerjoin(BankLinePayment, BankLinePayment.payment_id == Payment.id)
            .where(
                Payment.provider == "bank",
                one_of(session, Payment.provider_reference, part),
                BankLinePayment.id.is_(None),
            )
        )
        for reference, payment_id in rows:
            out[by_reference[reference]] = payment_id
    return out


def _by_invoice_number(
    session: Session, company_id: int, lines: Sequence[LineFacts], decisions: dict[int, Decision]
) -> list[LineFacts]:
    tokens = {line.id: invoice_tokens(line.remittance, line.structured_reference) for line in lines}
    every = set().union(*tokens.values()) if tokens else set()
    by_number: dict[str, list[_Open]] = defaultdict(list)
    for invoice in _invoices_where(session, company_id, _invoices.c.number, every):
        by_number[invoice.number].append(invoice)
    undecided = []
    for line in lines:
        found = {i.id: i for t in tokens[line.id] for i in by_number.get(t, [])}.values()
        open_ = [i for i in found if i.status == InvoiceStatus.OPEN and i.remaining > 0]
        same_currency = [i for i in open_ if i.currency == line.currency]
        customers = {i.customer_id for i in same_currency}
        decision = decisions[line.id]
        if len(customers) == 1 and len(same_currency) == len(found):
            decision.rule = "invoice_number"
            decision.customer_id = customers.pop()
            decision.invoice_ids = sorted(i.id for i in same_currency)
            continue
        for invoice in found:
            decision.suggestions.append(
                _suggestion(
                    "invoice_number",
                    80 if invoice in same_currency else 40,
                    invoice.customer_id,
                    invoice_ids=[invoice.id],
                )
            )
        if not found:
            undecided.append(line)
    return undecided


def _known_ibans(session: Session, company_id: int, ibans: Iterable[str]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = defaultdict(set)
    for part in chunks(sorted(set(ibans) - {""}), batch_size(session)):
        rows = session.execute(
            select(BankLine.debtor_iban, BankLine.customer_id)
            .where(
                BankLine.company_id == company_id,
                one_of(session, BankLine.debtor_iban, part),
                BankLine.status == LineStatus.MATCHED,
                BankLine.customer_id.is_not(None),
            )
            .distinct()
        )
        for iban, customer_id in rows:
            if customer_id is not None:
                out[iban].add(int(customer_id))
    return out


def _by_amount(
    session: Session, company_id: int, lines: Sequence[LineFacts], decisions: dict[int, Decision]
) -> None:
    if not lines:
        return
    names: dict[str, set[int]] = defaultdict(set)
    for customer_id, name in session.execute(
        select(Customer.id, Customer.name).where(Customer.company_id == company_id)
    ):
        names[name_key(name)].add(int(customer_id))
    ibans = _known_ibans(session, company_id, (line.debtor_iban for line in lines))
    candidates: dict[int, dict[int, str]] = {}
    for line in lines:
        found: dict[int, str] = dict.fromkeys(ibans.get(line.debtor_iban, ()), "amount_iban")
        for customer_id in names.get(name_key(line.debtor_name), set()) if line.debtor_name else ():
            found.setdefault(customer_id, "amount_name")
        candidates[line.id] = found
    customer_ids = {c for found in candidates.values() for c in found}
    invoices: dict[int, list[_Open]] = defaultdict(list)
    for part in chunks(sorted(customer_ids), batch_size(session)):
        rows = session.execute(
            select(
                _invoices.c.id,
                _invoices.c.customer_id,
                _invoices.c.number,
                _invoices.c.currency,
                _invoices.c.amount_minor - _invoices.c.paid_minor,
                _invoices.c.status,
            ).where(
                and_(
                    one_of(session, _invoices.c.customer_id, part),
                    _invoices.c.status == InvoiceStatus.OPEN,
                )
            )
        )
        for row in rows:
            invoices[row[1]].append(_Open(*row))
    declared: dict[int, list[PaymentRequest]] = defaultdict(list)
    for part in chunks(sorted(customer_ids), batch_size(session)):
        for request in session.scalars(
            select(PaymentRequest).where(
                one_of(session, PaymentRequest.customer_id, part),
                PaymentRequest.method == PaymentMethod.TRANSFER,
                PaymentRequest.status == PaymentRequestStatus.DECLARED,
            )
        ):
            declared[request.customer_id].append(request)
    for line in lines:
        _decide_by_amount(line, candidates[line.id], invoices, declared, decisions[line.id])


def _decide_by_amount(
    line: LineFacts,
    customers: dict[int, str],
    invoices: dict[int, list[_Open]],
    declared: dict[int, list[PaymentRequest]],
    decision: Decision,
) -> None:
    requests = [
        (r, customers[c])
        for c in customers
        for r in declared.get(c, [])
        if r.currency == line.currency
        and line.amount_minor in (r.declared_amount_minor, r.amount_minor)
    ]
    exact = [
        (i, customers[c])
        for c in customers
        for i in invoices.get(c, [])
        if i.currency == line.currency and i.remaining == line.amount_minor
    ]
    if len(requests) == 1:
        request, reason = requests[0]
        decision.rule, decision.customer_id, decision.request_id = (
            reason,
            request.customer_id,
            request.id,
        )
        return
    if not requests and len(exact) == 1:
        invoice, reason = exact[0]
        decision.rule, decision.customer_id = reason, invoice.customer_id
        decision.invoice_ids = [invoice.id]
        return
    for request, _reason in requests:
        decision.suggestions.append(_request_suggestion(request, 70))
    for invoice, reason in exact:
        decision.suggestions.append(
            _suggestion(reason, 60, invoice.customer_id, invoice_ids=[invoice.id])
        )
    for customer_id, reason in customers.items():
        open_ids = [i.id for i in invoices.get(customer_id, []) if i.currency == line.currency]
        if open_ids:
            decision.suggestions.append(
                _suggestion(reason, 30, customer_id, invoice_ids=open_ids[:20])
            )
