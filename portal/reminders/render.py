"""What a reminder says: email (text and HTML), SMS (GSM-7, 160 characters) and letters
(PDF), rendered at send time from the invoices still due then."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from babel import Locale
from jinja2 import Environment

from portal import i18n
from portal.company.models import Company
from portal.customers.models import Customer
from portal.i18n import format_date, translate_in
from portal.invoices.pdf_brand import PdfBrand
from portal.money import format_money
from portal.payments.transfer import format_iban
from portal.reminders import letters
from portal.reminders.gsm import SMS_LIMIT, gsm7_length, to_gsm7
from portal.reminders.penalties import LateCharges, late_charges
from portal.settings import CompanyIdentity
from portal.templating import render_email_parts


class RenderError(ValueError):
    """The message cannot be rendered within its channel's limits."""


@dataclass(frozen=True)
class DueInvoice:
    id: int
    number: str
    due_date: dt.date
    currency: str
    remaining_minor: int
    days_late: int
    charges: LateCharges | None = None


@dataclass(frozen=True)
class Total:
    currency: str
    remaining_minor: int
    charges_minor: int

    @property
    def with_charges_minor(self) -> int:
        return self.remaining_minor + self.charges_minor


@dataclass(frozen=True)
class ReminderContent:
    """Everything a template needs; plain values only."""

    customer_name: str
    contact_name: str
    language: str
    step: str
    link: str
    today: dt.date
    invoices: list[DueInvoice]
    penalties: bool = False
    ecb_rate: str = "0"
    totals: list[Total] = field(default_factory=list)
    # The promised date of a promise broken since the customer's last message: the first
    # message after it says the promise was not kept.
    promise_broken_on: dt.date | None = None
    country: str = ""  # the customer's: how its dates are written (i18n.regional)

    @property
    def overdue(self) -> bool:
        return any(invoice.days_late > 0 for invoice in self.invoices)


def due_invoices(
    rows: list[tuple[int, str, dt.date, str, int]],
    today: dt.date,
    *,
    penalties: bool,
    ecb_rate: str,
) -> tuple[list[DueInvoice], list[Total]]:
    """(id, number, due, currency, remaining) rows -> invoices with charges and totals per
    currency (never adding different currencies)."""
    invoices = []
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for invoice_id, number, due, currency, remaining in rows:
        charges = (
            late_charges(remaining, currency, due, today, ecb_rate)
            if penalties and due < today
            else None
        )
        invoices.append(
            DueInvoice(
                invoice_id, number, due, currency, remaining, max((today - due).days, 0), charges
            )
        )
        sums[currency][0] += remaining
        sums[currency][1] += charges.total_minor if charges else 0
    totals = [Total(c, values[0], values[1]) for c, values in sorted(sums.items())]
    return invoices, totals


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_email(
    env: Environment, template: str, content: ReminderContent, company: CompanyIdentity
) -> RenderedEmail:
    context = {"c": content, "company": company}
    return RenderedEmail(
        *render_email_parts(env, template, content.language, context, content.country)
    )


def warm_up_templates(env: Environment) -> None:
    """Load and compile the reminder templates (and the letters' fonts) once, up front."""
    from portal.invoices.documents import _Document
    from portal.templating import _email_overlays

    html_env, text_env = _email_overlays(env)
    for name in env.list_templates(filter_func=lambda n: n.startswith(("email/reminder_", "sms/"))):
        (html_env if name.endswith(".html") else text_env).get_template(name)
        env.get_template(name)
    _Document("")  # parses the fonts (portal.invoices.documents: once per process)


def render_sms(
    env: Environment, template: str, content: ReminderContent, company: CompanyIdentity
) -> str:
    """At most 160 GSM-7 septets, link included: the company name shrinks first."""
    token = i18n.current_locale.set(content.language)
    region_token = i18n.current_region.set(content.country)
    try:
        name = company.name
        while True:
            text = to_gsm7(
                " ".join(
                    env.get_template(f"sms/{template}.txt")
                    .render(c=content, company_name=name)
                    .split()
                )
            )
            if gsm7_length(text) <= SMS_LIMIT:
                return text
            if len(name) <= 8:
                raise RenderError(f"the SMS needs {gsm7_length(text)} characters, over 160")
            name = name[: len(name) - 4].rstrip() + "."
    finally:
        i18n.current_region.reset(region_token)
        i18n.current_locale.reset(token)


LINK_MARK = "{link}"


def render_edited(message: object, channel: object, link: str) -> tuple[str, str, str]:
    """A reminder whose text a credit manager edited: (subject, text, html), with the fresh
    link where ``{link}`` stands (or at the end). Texts must still fit one SMS."""
    from html import escape

    from portal.reminders.models import Channel, ReminderMessage

    assert isinstance(message, ReminderMessage)
    text = message.edited_text or ""
    text = text.replace(LINK_MARK, link) if LINK_MARK in text else f"{text.rstrip()}\n\n{link}"
    if channel is Channel.SMS:
        sms = to_gsm7(" ".join(text.split()))
        if gsm7_length(sms) > SMS_LIMIT:
            raise RenderError(f"the SMS needs {gsm7_length(sms)} characters, over 160")
        return "", sms, ""
    paragraphs = "".join(
        "<p>" + escape(part).replace("\n", "<br>") + "</p>" for part in text.split("\n\n")
    )
    html = paragraphs.replace(escape(link), f'<a href="{escape(link)}">{escape(link)}</a>')
    return message.edited_subject or "", text, f"<!doctype html><html><body>{html}</body></html>"


def render_letter(
    company: Company,
    customer: Customer,
    content: ReminderContent,
    brand: PdfBrand | None = None,
    *,
    registered: bool = False,
) -> bytes:
    """The formal notice (mise en demeure) as a PDF, in the customer's language: the
    address in the envelope's window, the QR codes to the portal and to pay."""
    # fpdf2 loads when a letter is drawn: a process that never draws one stays ~25 MB lighter.
    from portal.invoices.documents import _Document, _header

    locale = content.language
    dates = i18n.regional(locale, customer.country)  # 28/09/2026 for a UK customer
    pdf = _Document("", brand)
    _header(pdf, company, "")
    attention = (
        [translate_in(locale, "For the attention of %(name)s", name=content.contact_name)]
        if content.contact_name
        else []
    )
    letters.place_address(
        pdf, [customer.name, *attention, *postal_address(customer, company.country, locale)]
    )
    pdf.write_line(translate_in(locale, "Formal notice to pay"), size=14, bold=True, height=7)
    if registered:
        pdf.write_line(translate_in(locale, "Registered letter with acknowledgement of receipt"))
    pdf.write_line(
        translate_in(locale, "Customer reference: %(reference)s", reference=customer.reference)
    )
    pdf.write_line(
        translate_in(locale, "Date: %(date)s", date=format_date(content.today, dates, "long"))
    )
    pdf.ln(4)
    pdf.write_line(
        translate_in(
            locale,
            "Despite our earlier reminders, the invoices below remain unpaid. We hereby give "
            "you formal notice to pay the amounts due within eight days of this letter.",
        )
    )
    pdf.ln(3)

    def money(amount: int, currency: str) -> str:
        return format_money(amount, currency, locale)

    rows = []
    for invoice in content.invoices:
        charges = invoice.charges
        rows.append(
            (
                invoice.number,
                format_date(invoice.due_date, dates, "short"),
                str(invoice.days_late),
                money(invoice.remaining_minor, invoice.currency),
                money(charges.penalty_minor, invoice.currency) if charges else "-",
                money(charges.indemnity_minor, invoice.currency) if charges else "-",
            )
        )
    pdf.draw_table(
        (30, 25, 20, 35, 35, 35),
        (
            translate_in(locale, "Invoice"),
            translate_in(locale, "Due"),
            translate_in(locale, "Days late"),
            translate_in(locale, "Remaining"),
            translate_in(locale, "Penalties"),
            translate_in(locale, "Indemnity"),
        ),
        rows,
        align_right=(2, 3, 4, 5),
    )
    pdf.ln(4)
    for total in content.totals:
        pdf.write_line(
            translate_in(
                locale,
                "Total due: %(amount)s",
                amount=money(total.with_charges_minor, total.currency),
            ),
            bold=True,
        )
    if content.penalties:
        pdf.ln(2)
        pdf.write_line(
            translate_in(
                locale,
                "Late-payment penalties run at %(rate)s%% a year (the European Central Bank's "
                "rate plus 10 points) from the day after the due date, and a fixed indemnity "
                "of 40 EUR for recovery costs is due for each late invoice (French commercial "
                "code, articles L441-10 and D441-5).",
                rate=_percent(content.ecb_rate, locale),
            ),
            size=9,
        )
    pdf.ln(3)
    pdf.write_line(
        translate_in(locale, "See and pay your invoices online: %(link)s", link=content.link),
        size=9,
    )
    if company.iban:
        pdf.write_line(
            translate_in(
                locale,
                "Pay by bank transfer to IBAN %(iban)s, BIC %(bic)s.",
                iban=format_iban(company.iban),
                bic=company.bic,
            ),
            size=9,
        )
    codes = [(letters.portal_qr_png(content.link), translate_in(locale, "Your invoices online"))]
    if len(content.totals) == 1:
        total = content.totals[0]
        payment = letters.payment_qr_png(
            name=company.legal_name or company.name,
            iban=company.iban,
            bic=company.bic,
            amount_minor=total.with_charges_minor,
            currency=total.currency,
            text=" ".join(invoice.number for invoice in content.invoices),
        )
        if payment is not None:
            codes.append((payment, translate_in(locale, "Scan with your banking app to pay")))
    letters.draw_codes(pdf, codes)
    return bytes(pdf.output())


def postal_address(customer: Customer, home_country: str, locale: str) -> list[str]:
    """The customer's address block: street, town, and the country's name when the letter
    crosses a border."""
    lines = customer.address_lines
    if lines and customer.country and customer.country != home_country:
        lines.append(Locale.parse(locale).territories.get(customer.country, customer.country))
    return lines


def _percent(ecb_rate: str, locale: str) -> str:
    from decimal import Decimal

    from babel.numbers import format_decimal

    return str(format_decimal(Decimal(ecb_rate) + 10, format="0.00", locale=locale))
