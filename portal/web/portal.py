"""The debtor's pages: summary, invoices, documents, language and logout."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from portal import clock, i18n
from portal.access import service as access_service
from portal.access.service import PortalAccess
from portal.cases import service as cases
from portal.cases.models import CaseKind
from portal.company.models import Company
from portal.invoices import service as invoices
from portal.invoices.models import InvoiceStatus
from portal.invoices.service import InvoiceLine, Scope
from portal.money import parse_amount
from portal.settings import Settings
from portal.timeline.models import Actor
from portal.timeline.service import record
from portal.web.context import (
    choose_language,
    clear_session_cookie,
    current_access,
    current_access_and_open_invoices,
    embed_host,
    remember_language,
    safe_next,
    use_language,
)
from portal.web.rendering import page_view, render, unit_of_work

SHOW_FILTERS = ("all", "overdue", "upcoming")


def _scope(access: PortalAccess) -> Scope:
    return Scope(access.customer.id, access.invoice_ids)


def _no_session(request: Request) -> Response:
    """Without a live session: the welcome page, which offers a fresh link."""
    use_language(choose_language(request))
    status = 200 if request.url.path == "/" else 401
    return render(request, "portal/welcome.html", {"access": None}, status_code=status)


@dataclass(frozen=True)
class Hold:
    """What the home page says of an invoice the debtor already asked about."""

    kind: CaseKind
    promised_date: dt.date | None


def held_invoices(db: Session, open_items: list[InvoiceLine]) -> dict[int, Hold]:
    """The open invoices the debtor already asked about: in a live dispute, plan or promise.
    Read with the lines when the home page's query brought them, else asked for."""
    if all(i.hold_loaded for i in open_items):
        return {
            i.id: Hold(CaseKind(i.hold_kind), i.hold_promised_date)
            for i in open_items
            if i.hold_kind is not None
        }
    live = cases.live_case_of(db, [i.id for i in open_items])
    return {number: Hold(case.kind, case.promised_date) for number, case in live.items()}


def selection_total(
    open_items: list[InvoiceLine], selected: set[int], amount: int | None = None
) -> tuple[int, str] | None:
    """What the pay buttons pay for this selection: (minor units, currency), or None when
    nothing, or more than one currency, is chosen."""
    chosen = [i for i in open_items if i.id in selected]
    currencies = {i.currency for i in chosen}
    if len(currencies) != 1:
        return None
    total = sum(i.remaining_minor for i in chosen)
    if amount is not None and 0 < amount < total:
        total = amount
    return total, currencies.pop()


def home_context(
    request: Request,
    db: Session,
    access: PortalAccess,
    open_items: list[InvoiceLine] | None = None,
    *,
    pay_selected: list[str] | None = None,
    pay_amount: str = "",
) -> dict[str, Any]:
    """The home page's context (also re-rendered by the payment form with its error).

    ``pay_selected``: the invoices ticked for payment (posted, or the page asked again with
    ``choose``); by default every invoice the debtor has not already asked about."""
    settings: Settings = request.app.state.settings
    today = clock.today_in(access.customer.timezone)
    if open_items is None:
        open_items = invoices.open_invoices(db, _scope(access))
    show = request.query_params.get("show", "all")
    if show not in SHOW_FILTERS:
        show = "all"
    if pay_selected is None and request.query_params.get("choose"):
        pay_selected = request.query_params.getlist("invoice")
        pay_amount = request.query_params.get("amount", "")
    shown = [i for i in open_items if show == "all" or (show == "overdue") == (i.due_date < today)]
    pending_ids = {i.id for i in open_items if i.payment_pending(today)}
    holds = held_invoices(db, open_items)
    if pay_selected is None:
        selected = {i.id for i in shown if i.id not in pending_ids and i.id not in holds}
    else:
        selected = {int(v) for v in pay_selected if v.isdigit()}
    selected &= {i.id for i in shown}
    amount: int | None = None
    if pay_amount.strip():
        try:
            amount = parse_amount(pay_amount, settings.company.currency)
        except ValueError:
            amount = None
    return {
        "access": access,
        "customer": access.customer,
        "today": today,
        "totals": invoices.summarise(open_items, today, pending_ids | set(holds)),
        "invoices": shown,
        "open_invoices": open_items,
        "open_count": len(open_items),
        "show": show,
        "filters": SHOW_FILTERS,
        "pending_ids": pending_ids,
        "holds": holds,
        "transfer_available": bool(settings.company.iban),
        "card_available": settings.stripe.enabled,
        "partial_payments": settings.partial_payments,
        "partial_minimum_minor": settings.partial_payment_minimum_minor,
        "pay_error": None,
        "pay_selected": selected,
        "pay_total": selection_total(shown, selected, amount),
        "pay_amount": pay_amount,
    }


@page_view
def home(request: Request, db: Session) -> Response:
    access, open_items = current_access_and_open_invoices(request, db)
    if access is None:
        return _no_session(request)
    use_language(choose_language(request, access))
    context = home_context(request, db, access, open_items)
    # The pay buttons follow the ticked invoices (htmx asks for them alone).
    block = "pay_actions" if request.query_params.get("part") == "pay" else "invoice_table"
    return render(request, "portal/home.html", context, block=block)


@page_view
def paid(request: Request, db: Session) -> Response:
    access = current_access(request, db)
    if access is None:
        return _no_session(request)
    use_language(choose_language(request, access))
    today = clock.today_in(access.customer.timezone)
    items = invoices.paid_invoices(db, _scope(access))
    return render(
        request,
        "portal/paid.html",
        {"access": access, "customer": access.customer, "invoices": items, "today": today},
    )


@page_view
def invoice_detail(request: Request, db: Session) -> Response:
    invoice_id: int = request.path_params["invoice_id"]
    access = current_access(request, db)
    if access is None:
        return _no_session(request)
    use_language(choose_language(request, access))
    invoice = invoices.get_invoice(db, _scope(access), invoice_id)
    if invoice is None:
        raise HTTPException(404)
    today = clock.today_in(access.customer.timezone)
    is_open = invoice.status is InvoiceStatus.OPEN and invoice.remaining_minor > 0
    pending = is_open and invoice.payment_pending(today)
    settings: Settings = request.app.state.settings
    return render(
        request,
        "portal/invoice.html",
        {
            "access": access,
            "customer": access.customer,
            "invoice": invoice,
            "today": today,
            "pending": pending,
            "case": cases.live_case_of(db, [invoice.id]).get(invoice.id) if is_open else None,
            "can_pay": is_open and not pending,
            "transfer_available": bool(settings.company.iban),
            "card_available": settings.stripe.enabled,
        },
    )


def _company(request: Request, db: Session) -> Company:
    company = db.get(Company, request.app.state.company_id)
    assert company is not None
    return company


def invoice_pdf(request: Request) -> Response:
    from portal.invoices import documents  # fpdf2 loads with the first PDF: see pdf_brand

    invoice_id: int = request.path_params["invoice_id"]
    settings: Settings = request.app.state.settings
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        language = choose_language(request, access)
        use_language(language)
        invoice = invoices.get_invoice(db, _scope(access), invoice_id)
        if invoice is None:
            raise HTTPException(404)
        record(
            db,
            company_id=access.customer.company_id,
            customer_id=access.customer.id,
            actor=Actor.DEBTOR,
            action="invoice.downloaded",
            subject_type="invoice",
            subject_id=invoice.id,
            details={"number": invoice.number},
        )
        filename = f"{invoice.number}.pdf".replace("/", "-").replace('"', "")
        headers = {
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        }
        if invoice.pdf_path:
            try:
                path = documents.stored_pdf(settings.documents_dir, invoice.pdf_path)
            except documents.DocumentNotFound:
                path = None
            if path is not None:
                return FileResponse(path, media_type="application/pdf", headers=headers)
        body = documents.invoice_pdf(
            _company(request, db),
            access.customer,
            invoice,
            language,
            settings.pdf_font_path,
            request.app.state.site.look.pdf_brand(language),
        )
        return Response(body, media_type="application/pdf", headers=headers)


def statement(request: Request) -> Response:
    from portal.invoices import documents  # fpdf2 loads with the first PDF: see pdf_brand

    kind = request.path_params["kind"]
    if kind not in ("pdf", "csv"):
        raise HTTPException(404)
    settings: Settings = request.app.state.settings
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        language = choose_language(request, access)
        use_language(language)
        today = clock.today_in(access.customer.timezone)
        items = invoices.all_invoices(db, _scope(access))
        stem = f"statement-{access.customer.reference}-{today.isoformat()}"
        headers = {
            "Content-Disposition": f'attachment; filename="{stem}.{kind}"',
            "Cache-Control": "no-store",
        }
        if kind == "csv":
            return Response(
                documents.statement_csv(items, today),
                media_type="text/csv; charset=utf-8",
                headers=headers,
            )
        body = documents.statement_pdf(
            _company(request, db),
            access.customer,
            items,
            language,
            today,
            settings.pdf_font_path,
            request.app.state.site.look.pdf_brand(language),
        )
        return Response(body, media_type="application/pdf", headers=headers)


def _with_frame_language(target: str, language: str) -> str:
    """The widget's entry page carries its language in the address: a cookie set inside
    a frame on another site would never come back."""
    parts = urlsplit(target)
    if parts.path != "/embed":
        return target
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "lang"] + [("lang", language)]
    return urlunsplit(("", "", parts.path, urlencode(query), ""))


async def switch_language(request: Request) -> Response:
    form = await request.form()
    settings: Settings = request.app.state.settings
    raw = form.get("language")
    language = i18n.normalise(raw if isinstance(raw, str) else None, settings.languages)
    raw_next = form.get("next")
    target = safe_next(raw_next if isinstance(raw_next, str) else None)
    if language is not None:
        target = _with_frame_language(target, language)
    response = RedirectResponse(target, status_code=303)
    if language is None:
        return response
    remember_language(response, settings, language)
    session_factory = request.app.state.session_factory

    def remember() -> None:
        with session_factory() as db, db.begin():
            access = current_access(request, db)
            if access is not None:
                access_service.set_language(db, access.session_id, language)

    await run_in_threadpool(remember)
    return response


def logout(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is not None:
            access_service.end_session(db, access.session_id)
            record(
                db,
                company_id=access.customer.company_id,
                customer_id=access.customer.id,
                actor=Actor.DEBTOR,
                action="portal.logged_out",
            )
            language = choose_language(request, access)
        else:
            language = choose_language(request)
    host = access.embed_origin if access is not None else None
    # Inside the widget, the logged-out page stays in the widget's layout.
    target = f"/logged-out?{urlencode({'host': host})}" if host else "/logged-out"
    response = RedirectResponse(target, status_code=303)
    clear_session_cookie(response, settings, embedded=host is not None)
    remember_language(response, settings, language)
    return response


async def logged_out(request: Request) -> Response:
    # No I/O: rendered on the event loop.
    use_language(choose_language(request))
    host = embed_host(request, request.query_params.get("host"))
    return render(request, "portal/logged_out.html", {"access": None, "embed_host": host})


routes = [
    Route("/", home, name="home"),
    Route("/paid", paid, name="paid"),
    Route("/invoices/{invoice_id:int}", invoice_detail, name="invoice"),
    Route("/invoices/{invoice_id:int}/pdf", invoice_pdf, name="invoice_pdf"),
    Route("/statement.{kind:str}", statement, name="statement"),
    Route("/language", switch_language, methods=["POST"], name="language"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/logged-out", logged_out, name="logged_out"),
]
