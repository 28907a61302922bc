"""Invoices (upsert by number, read, list by change, cancel) and credit notes."""

from __future__ import annotations

from sqlalchemy import String, case, select, type_coerce

from portal.api import schemas as s
from portal.invoices import credit_notes, editing
from portal.invoices.models import Invoice, InvoiceStatus
from portal.timeline.models import Actor
from portal.web.api import problems
from portal.web.api.customers import by_reference
from portal.web.api.framework import ApiProblem, Call, Result, operation
from portal.web.api.pagination import changed_at, listed

TAG = "Invoices"
# The services' field names -> the body's.
INVOICE_FIELDS = {"amount": "amount_minor", "customer_id": "customer_reference"}


# The listing reads plain rows, each what InvoiceOut wants (no ORM objects, no Python per
# row): it is what a nightly sync calls most. ``remaining_minor`` as Invoice computes it.
_table = Invoice.__table__
_REMAINING = case(
    (_table.c.status == InvoiceStatus.CANCELLED.value, 0),
    (_table.c.amount_minor > _table.c.paid_minor, _table.c.amount_minor - _table.c.paid_minor),
    else_=0,
).label("remaining_minor")
_COLUMNS = [
    type_coerce(c, String).label("status") if c.name == "status" else c
    for c in _table.c
    if c.name in s.InvoiceOut.model_fields
] + [_REMAINING]


def invoice_out(invoice: Invoice) -> s.InvoiceOut:
    return s.InvoiceOut.model_validate(invoice)


def load_invoice(call: Call, invoice_id: int) -> Invoice:
    invoice = call.db.get(Invoice, invoice_id)
    if invoice is None or invoice.company_id != call.caller.company_id:
        raise ApiProblem(problems.not_found())
    return invoice


@operation(
    "POST",
    "/invoices",
    summary="Create or update an invoice by its number",
    tag=TAG,
    body=s.InvoiceIn,
    ok=(200, s.InvoiceUpserted),
    also=(201,),
    fields=INVOICE_FIELDS,
)
def upsert_invoice(call: Call) -> Result:
    body: s.InvoiceIn = call.body
    customer = by_reference(call, body.customer_reference)
    fields = editing.InvoiceFields(
        number=body.number,
        customer_id=customer.id,
        issue_date=body.issue_date,
        due_date=body.due_date,
        currency=body.currency,
        amount_minor=body.amount_minor,
    )
    invoice, outcome = editing.upsert_invoice(
        call.db, call.caller.company_id, fields, Actor.SYSTEM, call.caller.actor_id
    )
    call.db.flush()
    status = 201 if outcome is editing.Outcome.CREATED else 200
    return Result(status, s.InvoiceUpserted(outcome=outcome.value, invoice=invoice_out(invoice)))


@operation("GET", "/invoices/{invoice_id}", summary="An invoice", tag=TAG, ok=(200, s.InvoiceOut))
def get_invoice(call: Call) -> Result:
    return Result(200, invoice_out(load_invoice(call, call.path["invoice_id"])))


@operation(
    "GET",
    "/invoices",
    summary="Invoices, in the order they changed (cursor pagination)",
    tag=TAG,
    query=s.InvoiceListQuery,
    ok=(200, s.InvoicePage),
)
def list_invoices(call: Call) -> Result:
    query: s.InvoiceListQuery = call.query
    base = select(*_COLUMNS).where(Invoice.company_id == call.caller.company_id)
    if query.customer_id is not None:
        base = base.where(Invoice.customer_id == query.customer_id)
    if query.status is not None:
        base = base.where(Invoice.status == InvoiceStatus(query.status))
    rows, cursor = listed(
        call.db,
        base,
        query,
        changed=changed_at(Invoice.updated_at, Invoice.created_at),
        row_id=Invoice.id,
        scalars=False,
    )
    page_out = s.InvoicePage.model_validate(
        {"data": [row._mapping for row in rows], "next_cursor": cursor}
    )
    return Result(200, page_out)


@operation(
    "POST",
    "/invoices/{invoice_id}/cancel",
    summary="Cancel an invoice (what was paid on it becomes the customer's credit)",
    tag=TAG,
    body=s.CancelIn,
    ok=(200, s.InvoiceOut),
)
def cancel_invoice(call: Call) -> Result:
    invoice = load_invoice(call, call.path["invoice_id"])
    editing.cancel_invoice(
        call.db, invoice, Actor.SYSTEM, call.caller.actor_id, reason=call.body.reason
    )
    call.db.flush()
    return Result(200, invoice_out(invoice))


@operation(
    "POST",
    "/credit-notes",
    summary="Issue a credit note, once per number, applied to the invoices it names first",
    tag=TAG,
    body=s.CreditNoteIn,
    ok=(200, s.CreditNoteOut),
    also=(201,),
    fields={"amount": "amount_minor"},
)
def upsert_credit_note(call: Call) -> Result:
    body: s.CreditNoteIn = call.body
    customer = by_reference(call, body.customer_reference)
    fields = credit_notes.CreditNoteFields(
        number=body.number,
        issue_date=body.issue_date,
        currency=body.currency,
        amount_minor=body.amount_minor,
        reason=body.reason,
    )
    note, outcome = credit_notes.upsert_credit_note(
        call.db, customer, fields, body.applies_to, Actor.SYSTEM, call.caller.actor_id
    )
    call.db.flush()
    out = s.CreditNoteOut(
        id=note.id,
        number=note.number,
        customer_id=note.customer_id,
        issue_date=note.issue_date,
        currency=note.currency,
        amount_minor=note.amount_minor,
        status=note.status.value,
        applies_to=list(note.applies_to),
        outcome=outcome.value,
    )
    return Result(201 if outcome is editing.Outcome.CREATED else 200, out)
