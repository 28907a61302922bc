"""Back office data entry for invoices and credit notes: create, edit, cancel, attach the
PDF. Credit managers and admins write; viewers get the 403 page.

Plain POST forms answered by a 303, or by the form again (400) with each message next to
its field. The services (``portal.invoices.editing``, ``portal.invoices.credit_notes``)
check the values and record the timeline; nothing is written when a field is refused.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import clock, i18n
from portal.changes import FieldErrors
from portal.customers.models import Customer
from portal.invoices import credit_notes, editing
from portal.invoices import service as invoices_service
from portal.invoices.credit_notes import CreditNoteFields
from portal.invoices.editing import InvoiceFields
from portal.invoices.models import CreditNote, Invoice
from portal.invoices.pdf_files import check_pdf, too_large_message
from portal.invoices.service import InvoiceLine, Scope
from portal.money import format_for_input
from portal.settings import Settings
from portal.timeline.models import Actor
from portal.users.models import User
from portal.web.backoffice import EDITORS, PREFIX, _context, _not_found, require_role
from portal.web.backoffice_customers import editor_and_customer, load_customer
from portal.web.forms import Form, body_too_large, read_form
from portal.web.rendering import render, unit_of_work

PDF_LIMIT = editing.PDF_MAX_BYTES


def _customer_url(customer_id: int, notice: str) -> str:
    return f"{PREFIX}/customers/{customer_id}?done={notice}#invoices"


def open_invoices(db: Session, customer: Customer) -> list[InvoiceLine]:
    """What a credit note or a payment can be allocated to: the customer's open invoices."""
    return invoices_service.open_invoices(db, Scope(customer.id))


def _load_invoice(request: Request, db: Session) -> Invoice | None:
    invoice = db.get(Invoice, request.path_params["invoice_id"])
    if invoice is None or invoice.company_id != request.app.state.company_id:
        return None
    return invoice


def _errors_of(*checks: Any) -> dict[str, str]:
    """Run each check; the field errors of all of them (first message per field)."""
    errors: dict[str, str] = {}
    for check in checks:
        try:
            check()
        except FieldErrors as refused:
            errors = {**refused.errors, **errors}
    return errors


# --- invoices ---------------------------------------------------------------------------------


def _read_invoice(form: Form, customer_id: int) -> InvoiceFields:
    currency = form.text("currency", 8).strip().upper()
    return InvoiceFields(
        number=form.text("number", 64),
        customer_id=customer_id,
        issue_date=form.date("issue_date"),
        due_date=form.date("due_date"),
        currency=currency,
        amount_minor=form.amount("amount", currency) or 0,
    )


def _invoice_values(invoice: Invoice) -> dict[str, str]:
    return {
        "number": invoice.number,
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "currency": invoice.currency,
        "amount": format_for_input(
            invoice.amount_minor, invoice.currency, i18n.current_locale.get()
        ),
    }


def _invoice_page(
    request: Request,
    user: User,
    customer: Customer,
    invoice: Invoice | None,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    status_code: int | None = None,
) -> Response:
    return render(
        request,
        "backoffice/invoice_form.html",
        _context(
            user,
            customer=customer,
            invoice=invoice,
            values=values,
            errors=errors,
            pdf_limit_mb=PDF_LIMIT // 1_048_576,
            notice=request.query_params.get("done"),
        ),
        status_code=status_code or (400 if errors else 200),
    )


def invoice_new(request: Request) -> Response:
    with unit_of_work(request) as db:
        found = editor_and_customer(request, db)
        if isinstance(found, Response):
            return found
        user, customer = found
        today = clock.today_in(customer.timezone)
        settings: Settings = request.app.state.settings
        values = {
            "issue_date": today.isoformat(),
            "due_date": (today + dt.timedelta(days=30)).isoformat(),
            "currency": settings.company.currency,
        }
        return _invoice_page(request, user, customer, None, values, {})


def invoice_edit(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        invoice = _load_invoice(request, db)
        if invoice is None:
            return _not_found(request, user)
        return _invoice_page(request, user, invoice.customer, invoice, _invoice_values(invoice), {})


async def invoice_save(request: Request) -> Response:
    if body_too_large(request, PDF_LIMIT):
        return await run_in_threadpool(_refuse_upload, request)
    form, pdf = await read_form(request, file_field="pdf", max_bytes=PDF_LIMIT)
    return await run_in_threadpool(_invoice_save, request, form, pdf)


def _refuse_upload(request: Request) -> Response:
    """A body too large to read: the form again, saying why, and nothing saved."""
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        invoice = _load_invoice(request, db) if "invoice_id" in request.path_params else None
        customer = invoice.customer if invoice else load_customer(request, db)
        if customer is None:
            return _not_found(request, user)
        values = _invoice_values(invoice) if invoice else {}
        errors = {"pdf": too_large_message(PDF_LIMIT)}
        return _invoice_page(request, user, customer, invoice, values, errors, status_code=413)


def _invoice_save(request: Request, data: FormData, pdf: bytes | None) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        invoice = _load_invoice(request, db) if "invoice_id" in request.path_params else None
        customer = invoice.customer if invoice else load_customer(request, db)
        if customer is None or ("invoice_id" in request.path_params and invoice is None):
            return _not_found(request, user)
        form = Form(data)
        fields = _read_invoice(form, customer.id)
        errors = form.with_errors(
            _errors_of(
                lambda: editing.validate_invoice(db, state.company_id, fields, invoice),
                lambda: check_pdf(pdf, PDF_LIMIT) if pdf is not None else None,
            )
        )
        if errors:
            return _invoice_page(request, user, customer, invoice, form.values, errors)
        actor_id = str(user.id)
        if invoice is None:
            invoice = editing.create_invoice(db, state.company_id, fields, Actor.USER, actor_id)
            notice = "invoice-created"
        else:
            editing.update_invoice(db, invoice, fields, Actor.USER, actor_id)
            notice = "invoice-saved"
        if pdf is not None:
            editing.attach_pdf(db, invoice, pdf, settings.documents_dir, Actor.USER, actor_id)
        customer_id = customer.id
    return RedirectResponse(_customer_url(customer_id, notice), status_code=303)


async def invoice_cancel(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    return await run_in_threadpool(_invoice_cancel, request, form)


def _invoice_cancel(request: Request, data: FormData) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        invoice = _load_invoice(request, db)
        if invoice is None:
            return _not_found(request, user)
        reason = Form(data).text("reason", 500)
        editing.cancel_invoice(db, invoice, Actor.USER, str(user.id), reason=reason)
        customer_id = invoice.customer_id
    return RedirectResponse(_customer_url(customer_id, "invoice-cancelled"), status_code=303)


# --- credit notes -----------------------------------------------------------------------------


def _credit_note_page(
    request: Request,
    db: Session,
    user: User,
    customer: Customer,
    values: dict[str, str],
    errors: dict[str, str],
    applies_to: list[str],
    status_code: int | None = None,
) -> Response:
    return render(
        request,
        "backoffice/credit_note_form.html",
        _context(
            user,
            customer=customer,
            values=values,
            errors=errors,
            invoices=open_invoices(db, customer),
            applies_to=applies_to,
            pdf_limit_mb=PDF_LIMIT // 1_048_576,
        ),
        status_code=status_code or (400 if errors else 200),
    )


def credit_note_new(request: Request) -> Response:
    with unit_of_work(request) as db:
        found = editor_and_customer(request, db)
        if isinstance(found, Response):
            return found
        user, customer = found
        settings: Settings = request.app.state.settings
        values = {
            "issue_date": clock.today_in(customer.timezone).isoformat(),
            "currency": settings.company.currency,
        }
        wanted = request.query_params.get("invoice", "")
        return _credit_note_page(request, db, user, customer, values, {}, [wanted])


async def credit_note_save(request: Request) -> Response:
    if body_too_large(request, PDF_LIMIT):
        return Response(too_large_message(PDF_LIMIT), status_code=413)
    form, pdf = await read_form(request, file_field="pdf", max_bytes=PDF_LIMIT)
    return await run_in_threadpool(_credit_note_save, request, form, pdf)


def _credit_note_save(request: Request, data: FormData, pdf: bytes | None) -> Response:
    settings: Settings = request.app.state.settings
    with unit_of_work(request) as db:
        found = editor_and_customer(request, db)
        if isinstance(found, Response):
            return found
        user, customer = found
        form = Form(data)
        currency = form.text("currency", 8).strip().upper()
        fields = CreditNoteFields(
            number=form.text("number", 64),
            issue_date=form.date("issue_date"),
            currency=currency,
            amount_minor=form.amount("amount", currency) or 0,
            reason=form.text("reason", 500),
        )
        numbers = [n for n in data.getlist("applies_to") if isinstance(n, str)][:100]
        pdf_errors = _errors_of(lambda: check_pdf(pdf, PDF_LIMIT) if pdf is not None else None)
        note = None
        errors = {**form.errors, **pdf_errors}
        if not errors:
            try:
                note = credit_notes.issue_credit_note(
                    db, customer, fields, numbers, Actor.USER, str(user.id)
                )
            except FieldErrors as refused:  # raised before anything was written
                errors = refused.errors
        if note is None:
            return _credit_note_page(request, db, user, customer, form.values, errors, numbers)
        if pdf is not None:
            editing.attach_pdf(db, note, pdf, settings.documents_dir, Actor.USER, str(user.id))
        customer_id = customer.id
    return RedirectResponse(_customer_url(customer_id, "credit-note-issued"), status_code=303)


def credit_note_cancel(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        note = db.get(CreditNote, request.path_params["credit_note_id"])
        if note is None or note.company_id != request.app.state.company_id:
            return _not_found(request, user)
        credit_notes.cancel_credit_note(db, note, Actor.USER, str(user.id))
        customer_id = note.customer_id
    return RedirectResponse(_customer_url(customer_id, "credit-note-cancelled"), status_code=303)


CUSTOMER = f"{PREFIX}/customers/{{customer_id:int}}"
INVOICE = f"{PREFIX}/invoices/{{invoice_id:int}}"

routes = [
    Route(f"{CUSTOMER}/invoices/new", invoice_new, methods=["GET"], name="admin_invoice_new"),
    Route(f"{CUSTOMER}/invoices/new", invoice_save, methods=["POST"], name="admin_invoice_add"),
    Route(f"{INVOICE}/edit", invoice_edit, methods=["GET"], name="admin_invoice_edit"),
    Route(f"{INVOICE}/edit", invoice_save, methods=["POST"], name="admin_invoice_save"),
    Route(f"{INVOICE}/cancel", invoice_cancel, methods=["POST"], name="admin_invoice_cancel"),
    Route(
        f"{CUSTOMER}/credit-notes/new",
        credit_note_new,
        methods=["GET"],
        name="admin_credit_note_new",
    ),
    Route(
        f"{CUSTOMER}/credit-notes/new",
        credit_note_save,
        methods=["POST"],
        name="admin_credit_note_add",
    ),
    Route(
        f"{PREFIX}/credit-notes/{{credit_note_id:int}}/cancel",
        credit_note_cancel,
        methods=["POST"],
        name="admin_credit_note_cancel",
    ),
]
