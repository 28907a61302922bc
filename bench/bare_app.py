"""The baseline for bench/portal_page.py: a bare Starlette app rendering the portal home page.

It renders the very template the portal serves at ``/`` (templates/portal/home.html,
through portal.templating.make_environment) with a context of the same shape, but
built once in memory: no database, no session lookup, no middleware, no threadpool.
What the portal spends beyond this is the cost of everything around the template.

Served with::

    python -m uvicorn --factory --app-dir bench bare_app:asgi --workers 1

It reads the same PORTAL_* environment as the portal (company identity, languages).
The invoice plan below is also what bench/portal_page.py seeds into the database, so
both servers render the same 25 invoices.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from portal import clock, i18n
from portal.branding.service import default_look
from portal.invoices.models import InvoiceStatus
from portal.invoices.service import summarise
from portal.settings import PROJECT_ROOT, load_settings
from portal.templating import make_environment
from portal.web.site_config import look_version

TEMPLATE = "portal/home.html"
SHOW_FILTERS = ("all", "overdue", "upcoming")
HTMX_FILE = PROJECT_ROOT / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"

# The debtor whose page is measured.
CUSTOMER_REFERENCE = "BENCH-0001"
CUSTOMER_NAME = "Boulangerie Banc d'Essai SARL"
CUSTOMER_LANGUAGE = "fr"
CUSTOMER_TIMEZONE = "Europe/Paris"
OPEN_INVOICE_COUNT = 25


@dataclass(frozen=True)
class PlannedInvoice:
    number: str
    issue_date: dt.date
    due_date: dt.date
    amount_minor: int
    paid_minor: int
    currency: str = "EUR"


def invoice_plan(today: dt.date) -> list[PlannedInvoice]:
    """The measured customer's 25 open invoices: 15 overdue, 10 not yet due, some part paid."""
    plan = []
    for k in range(OPEN_INVOICE_COUNT):
        due = today + dt.timedelta(days=-88 + 6 * k + (k % 3))
        amount = 4_990 + (k * 7_919) % 250_000 + 100 * k
        paid = amount * (25 + 10 * (k % 4)) // 100 if k % 4 == 1 else 0
        plan.append(
            PlannedInvoice(
                number=f"FB-2026-{k + 1:04d}",
                issue_date=due - dt.timedelta(days=30 + k % 15),
                due_date=due,
                amount_minor=amount,
                paid_minor=paid,
            )
        )
    return plan


# -- in-memory objects shaped like the ORM rows the portal passes to the template --


@dataclass(frozen=True)
class Customer:
    id: int
    reference: str
    name: str
    language: str
    timezone: str


@dataclass(frozen=True)
class Access:
    session_id: str
    customer: Customer
    invoice_ids: frozenset[int] | None
    language: str | None


@dataclass(frozen=True)
class Invoice:
    id: int
    number: str
    issue_date: dt.date
    due_date: dt.date
    currency: str
    amount_minor: int
    paid_minor: int
    status: InvoiceStatus = InvoiceStatus.OPEN

    @property
    def remaining_minor(self) -> int:
        if self.status is InvoiceStatus.CANCELLED:
            return 0
        return max(self.amount_minor - self.paid_minor, 0)

    def days_overdue(self, today: dt.date) -> int:
        if self.remaining_minor == 0:
            return 0
        return max((today - self.due_date).days, 0)


def asgi() -> Starlette:
    """Entry point for ``uvicorn --factory bare_app:asgi``."""
    settings = load_settings()
    env = make_environment()
    htmx_available = HTMX_FILE.is_file()
    customer = Customer(1, CUSTOMER_REFERENCE, CUSTOMER_NAME, CUSTOMER_LANGUAGE, CUSTOMER_TIMEZONE)
    access = Access("bench", customer, None, None)
    today = clock.today_in(customer.timezone)
    invoices = [
        Invoice(
            1000 + n, p.number, p.issue_date, p.due_date, p.currency, p.amount_minor, p.paid_minor
        )
        for n, p in enumerate(invoice_plan(today))
    ]
    invoices.sort(key=lambda i: (i.due_date, i.number))
    totals = summarise(invoices, today)
    look = default_look(settings)  # the environment's look, as the portal shows without branding

    async def home(request: Request) -> Response:
        i18n.current_locale.set(customer.language)
        context: dict[str, Any] = {
            "request": request,
            "settings": settings,
            "company": settings.company,
            "locale": i18n.current_locale.get(),
            "languages": settings.languages,
            "htmx_available": htmx_available,
            "lookup_enabled": True,
            "look": look,
            "brand_texts": look.texts_for(customer.language),
            "brand_version": look_version(look),
            "embedded": False,
            "embed_host": None,
            "access": access,
            "customer": customer,
            "today": today,
            "totals": totals,
            "invoices": invoices,
            "open_invoices": invoices,
            "open_count": len(invoices),
            "show": "all",
            "filters": SHOW_FILTERS,
            "pending_ids": set(),
            "holds": {},
            "transfer_available": bool(settings.company.iban),
            "card_available": settings.stripe.enabled,
            "partial_payments": settings.partial_payments,
            "partial_minimum_minor": settings.partial_payment_minimum_minor,
            "pay_error": None,
            "pay_selected": {i.id for i in invoices},
            # Everything ticked, as the portal's default with no request on hold.
            "pay_total": (sum(i.remaining_minor for i in invoices), invoices[0].currency),
            "pay_amount": "",
        }
        html = env.get_template(TEMPLATE).render(context)
        response = HTMLResponse(html)
        response.headers["Vary"] = "HX-Request, Cookie, Accept-Language"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Language"] = customer.language
        return response

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/", home), Route("/healthz", healthz)])
