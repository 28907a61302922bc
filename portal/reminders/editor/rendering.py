"""A message text written in the back office, rendered from a reminder's content: the
placeholders' values in the customer's language, the email's text and HTML parts (the
whole text escaped in HTML, the invoices table and the portal link added as markup) and
the SMS (GSM-7, at most 160 characters, the company name shortened first)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from babel.numbers import format_decimal
from jinja2 import Environment
from markupsafe import Markup, escape

from portal import i18n
from portal.i18n import format_date, translate_in
from portal.money import format_money
from portal.reminders.editor.sandbox import render_text
from portal.reminders.gsm import SMS_LIMIT, gsm7_length, to_gsm7
from portal.reminders.penalties import late_charges
from portal.reminders.render import ReminderContent, RenderedEmail, RenderError
from portal.settings import CompanyIdentity

# Where the invoices table goes; rendered text never holds a NUL otherwise.
TABLE_MARK = "\x00\x00"


def placeholder_values(
    content: ReminderContent, company: CompanyIdentity, company_name: str | None = None
) -> dict[str, Any]:
    locale = content.language

    def money(amount: int, currency: str) -> str:
        return format_money(amount, currency, locale)

    # Penalties as the law reckons them, whether or not this step claims them.
    charges = {
        invoice.id: invoice.charges
        or late_charges(
            invoice.remaining_minor,
            invoice.currency,
            invoice.due_date,
            content.today,
            content.ecb_rate,
        )
        for invoice in content.invoices
    }
    penalties: dict[str, int] = {}
    for invoice in content.invoices:
        penalties[invoice.currency] = (
            penalties.get(invoice.currency, 0) + charges[invoice.id].total_minor
        )
    invoices = [
        {
            "number": invoice.number,
            "due_date": format_date(invoice.due_date, locale),
            "amount": money(invoice.remaining_minor, invoice.currency),
            "days_late": invoice.days_late,
            "penalties": money(charges[invoice.id].total_minor, invoice.currency),
        }
        for invoice in content.invoices
    ]
    dues = sorted(invoice.due_date for invoice in content.invoices)
    return {
        "customer_name": content.customer_name,
        "contact_name": content.contact_name,
        "greeting_name": content.contact_name or content.customer_name,
        "invoices_table": TABLE_MARK,
        "invoice_count": len(content.invoices),
        "invoices": invoices,
        "total_due": ", ".join(money(t.remaining_minor, t.currency) for t in content.totals),
        "total_with_penalties": ", ".join(
            money(t.remaining_minor + penalties.get(t.currency, 0), t.currency)
            for t in content.totals
        ),
        "penalties_total": ", ".join(
            money(penalties.get(t.currency, 0), t.currency) for t in content.totals
        ),
        "penalty_rate": str(
            format_decimal(Decimal(content.ecb_rate) + 10, format="0.00", locale=locale)
        ),
        "due_dates": ", ".join(format_date(due, locale) for due in dues),
        "earliest_due_date": format_date(dues[0], locale) if dues else "",
        "days_late": max((invoice.days_late for invoice in content.invoices), default=0),
        "overdue": content.overdue,
        "portal_link": content.link,
        "today": format_date(content.today, locale),
        "company_name": company.name if company_name is None else company_name,
        "company_email": company.email,
        "company_phone": company.phone,
    }


def _text_table(content: ReminderContent) -> str:
    locale = content.language
    return "\n".join(
        "- "
        + translate_in(
            locale,
            "Invoice %(number)s, due %(date)s: %(amount)s",
            number=invoice.number,
            date=format_date(invoice.due_date, locale),
            amount=format_money(invoice.remaining_minor, invoice.currency, locale),
        )
        for invoice in content.invoices
    )


def _html_table(content: ReminderContent) -> Markup:
    locale = content.language
    head = "".join(
        f'<th scope="col" style="text-align:left;padding:4px 12px 4px 0;">{escape(text)}</th>'
        for text in (
            translate_in(locale, "Invoice"),
            translate_in(locale, "Due"),
            translate_in(locale, "Remaining"),
        )
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f'<td style="padding:4px 12px 4px 0;">{escape(cell)}</td>'
            for cell in (
                invoice.number,
                format_date(invoice.due_date, locale),
                format_money(invoice.remaining_minor, invoice.currency, locale),
            )
        )
        + "</tr>"
        for invoice in content.invoices
    )
    return Markup(  # noqa: S704 - every value above is escaped
        f'<table style="border-collapse: collapse;"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def text_to_html(text: str, content: ReminderContent) -> Markup:
    """Paragraphs of escaped text; the table where ``invoices_table`` stood, the portal
    link clickable."""
    link = str(escape(content.link))
    anchor = f'<a href="{link}">{link}</a>'
    table = str(_html_table(content))
    paragraphs = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        if block.strip() == TABLE_MARK:
            paragraphs.append(table)
            continue
        html = "<br>\n".join(str(escape(line)) for line in block.strip("\n").split("\n"))
        html = html.replace(TABLE_MARK, table)
        if link:
            html = html.replace(link, anchor)
        paragraphs.append(f"<p>{html}</p>")
    return Markup("\n".join(paragraphs))  # noqa: S704 - built from escaped parts


@dataclass(frozen=True)
class CustomText:
    """A saved text: ``subject`` (email only) and ``body``, in one language."""

    subject: str
    body: str

    def body_as_written(self, content: ReminderContent, company: CompanyIdentity) -> str:
        """The body with its placeholders filled, before the email's or the SMS's shaping
        (the table stays a mark for ``text_to_html``)."""
        try:
            return render_text(self.body, placeholder_values(content, company))
        except ValueError as error:
            raise RenderError(f"the message text cannot be rendered: {error}") from error

    def email(
        self, env: Environment, content: ReminderContent, company: CompanyIdentity
    ) -> RenderedEmail:
        values = placeholder_values(content, company)
        try:
            subject = render_text(self.subject, values).replace(TABLE_MARK, "")
            text = render_text(self.body, values)
        except ValueError as error:
            raise RenderError(f"the message text cannot be rendered: {error}") from error
        texts_for = getattr(company, "texts_for", None)
        token = i18n.current_locale.set(content.language)
        try:
            html = env.get_template("email/_custom_layout.html").render(
                c=content,
                company=company,
                body_html=text_to_html(text, content),
                brand_texts=texts_for(content.language) if texts_for else None,
            )
        finally:
            i18n.current_locale.reset(token)
        return RenderedEmail(
            " ".join(subject.split()), text.replace(TABLE_MARK, _text_table(content)), html
        )

    def sms(self, content: ReminderContent, company: CompanyIdentity) -> str:
        """As the file templates: GSM-7, 160 characters, the company name shrinks first."""
        name = company.name
        while True:
            values = placeholder_values(content, company, name)
            try:
                raw = render_text(self.body, values).replace(TABLE_MARK, "")
            except ValueError as error:
                raise RenderError(f"the SMS text cannot be rendered: {error}") from error
            text = to_gsm7(" ".join(raw.split()))
            if gsm7_length(text) <= SMS_LIMIT:
                return text
            if len(name) <= 8 or "company_name" not in self.body:
                raise RenderError(f"the SMS needs {gsm7_length(text)} characters, over 160")
            name = name[: len(name) - 4].rstrip() + "."
