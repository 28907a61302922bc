""" "Pay an invoice" without a link: the invoice number and a proof open a session scoped
to that invoice alone.

The proof is the amount due, or the customer's reference and postcode. Every attempt is
throttled per client and per invoice number typed (``users.throttle``, scopes
``lookup_client`` and ``lookup_invoice``), whatever it finds: the keys come from what was
typed, so an unknown number is counted exactly like a known one, and the refusal is the
same. Each attempt leaves one timeline row (on the invoice's customer when the number
exists, on the company's timeline otherwise); a refused wait leaves one row per wait.
The web layer pads every answer to the same duration (``web/lookup.py``).
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.access.service import start_session
from portal.customers.models import Customer
from portal.invoices.models import Invoice, InvoiceStatus
from portal.links.models import LinkScope
from portal.money import parse_amount
from portal.timeline.models import Actor
from portal.timeline.service import record
from portal.users import throttle

NUMBER_MAX = 64
TEXT_MAX = 64


@dataclass(frozen=True)
class LookupForm:
    """What the debtor typed, already checked for shape (``check_form``)."""

    invoice_number: str
    amount: str = ""
    reference: str = ""
    postcode: str = ""


@dataclass(frozen=True)
class LookupOutcome:
    """``secret`` when a session opened; ``retry_after`` when the attempt was refused."""

    secret: str | None = None
    retry_after: dt.timedelta | None = None
    customer_language: str | None = None


def check_form(form: LookupForm) -> dict[str, str]:
    """Field -> message id of what is missing; empty when the form can be looked up."""
    errors: dict[str, str] = {}
    if not form.invoice_number or len(form.invoice_number) > NUMBER_MAX:
        errors["invoice_number"] = "number"
    if form.amount:
        if len(form.amount) > TEXT_MAX:
            errors["amount"] = "amount"
        else:
            try:
                parse_amount(form.amount, "EUR")
            except ValueError:
                errors["amount"] = "amount"
    elif not (form.reference and form.postcode):
        errors["proof"] = "proof"
    if len(form.reference) > TEXT_MAX or len(form.postcode) > TEXT_MAX:
        errors["proof"] = "proof"
    return errors


def _fold(text: str) -> str:
    return "".join(text.split()).casefold()


def lookup_keys(secret: str, form: LookupForm, client_ip: str | None) -> list[tuple[str, str]]:
    return [
        ("lookup_client", (client_ip or "unknown")[:64]),
        ("lookup_invoice", throttle.digest(secret, "lookup", _fold(form.invoice_number))),
    ]


def _proven(invoice: Invoice, customer: Customer, form: LookupForm) -> bool:
    if form.amount:
        try:
            typed = parse_amount(form.amount, invoice.currency)
        except ValueError:
            return False
        due = invoice.amount_minor - invoice.paid_minor
        return hmac.compare_digest(str(typed).encode(), str(due).encode())
    same_reference = hmac.compare_digest(
        _fold(form.reference).encode(), _fold(customer.reference).encode()
    )
    same_postcode = hmac.compare_digest(
        _fold(form.postcode).encode(), _fold(customer.postcode or "").encode()
    )
    return bool(customer.postcode) and same_reference and same_postcode


def lookup(
    session: Session,
    form: LookupForm,
    *,
    company_id: int,
    throttle_secret: str,
    client_ip: str | None,
    user_agent: str | None,
    embed_origin: str | None,
) -> LookupOutcome:
    """Open a session on the one open invoice the form proves, or count a failure."""
    now = clock.now()
    keys = lookup_keys(throttle_secret, form, client_ip)
    wait = throttle.retry_after(session, keys, now)
    if wait is not None:
        if throttle.first_refusal(session, keys, now):
            record(
                session,
                company_id=company_id,
                actor=Actor.DEBTOR,
                action="portal.lookup_throttled",
                details={"ip": client_ip},
            )
        return LookupOutcome(retry_after=wait)
    row = session.execute(
        select(Invoice, Customer)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.company_id == company_id, Invoice.number == form.invoice_number.strip())
    ).first()
    invoice, customer = (row[0], row[1]) if row is not None else (None, None)
    proven = (
        invoice is not None
        and customer is not None
        and invoice.status is InvoiceStatus.OPEN
        and _proven(invoice, customer, form)
    )
    proof = "amount" if form.amount else "reference_postcode"
    if not proven or invoice is None or customer is None:
        throttle.record_failure(session, keys, now)
        record(
            session,
            company_id=company_id,
            customer_id=customer.id if customer is not None else None,
            actor=Actor.DEBTOR,
            action="portal.lookup_failed",
            details={"ip": client_ip, "proof": proof},
        )
        return LookupOutcome()
    throttle.forget(session, keys[1:])
    scope = LinkScope(customer_id=customer.id, invoice_ids=[invoice.id], created_at=now)
    session.add(scope)
    session.flush()
    secret = start_session(
        session, customer, scope.id, client_ip, user_agent, embed_origin=embed_origin
    )
    record(
        session,
        company_id=company_id,
        customer_id=customer.id,
        actor=Actor.DEBTOR,
        action="portal.lookup_opened",
        subject_type="invoice",
        subject_id=invoice.id,
        details={
            "ip": client_ip,
            "proof": proof,
            "number": invoice.number,
            "embedded": embed_origin is not None,
        },
    )
    return LookupOutcome(secret=secret, customer_language=customer.language)
