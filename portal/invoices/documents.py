"""Invoice and statement documents: PDF (fpdf2) and CSV, in the debtor's language."""

from __future__ import annotations

import copy
import datetime as dt
import io
import logging
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from fontTools import ttLib  # type: ignore[import-untyped]
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

from portal import csvsafe
from portal.company.models import Company
from portal.customers.models import Customer
from portal.i18n import format_date, translate_in
from portal.invoices.models import Invoice
from portal.invoices.pdf_brand import PdfBrand
from portal.invoices.service import InvoiceLine, summarise
from portal.money import format_money, format_plain
from portal.payments.transfer import format_iban

log = logging.getLogger(__name__)

_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
)


class DocumentNotFound(Exception):
    pass


@cache
def _unicode_font(configured: str) -> Path | None:
    for candidate in (configured, *_FONT_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@cache
def _parsed_font(path: str, style: str) -> TTFFont:
    """A TTF parsed once per process (fpdf2 takes about 0.1 s per font and document)."""
    host = FPDF()
    host.add_font("body", style, path)
    font = host.fonts[f"body{style}"]
    assert isinstance(font, TTFFont)
    return font


def _loaded_font(path: str, style: str, index: int) -> TTFFont:
    """A document's own handle on the parsed font: the tables and width maps are shared
    (documents only read them), what a document changes (the glyphs it uses) is its own."""
    font = copy.copy(_parsed_font(path, style))
    font.i = index
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font.subset = SubsetMap(font)
    return font


# Tables fpdf2 drops when it embeds a font (fpdf/output.py), removed once here: otherwise
# each document decompiles them (GSUB, GPOS: most of the embedding's time) only to drop them.
_DROPPED_TABLES = (
    "FFTM", "GDEF", "GPOS", "GSUB", "MATH", "hdmx", "meta", "sbix", "CBDT", "CBLC", "EBDT",
    "EBLC", "EBSC", "SVG ", "CPAL", "COLR",
)  # fmt: skip


@cache
def _font_bytes(path: str) -> bytes:
    font = ttLib.TTFont(path, recalcTimestamp=False, lazy=True)
    for tag in _DROPPED_TABLES:
        if tag in font:
            del font[tag]
    out = io.BytesIO()
    font.save(out)  # tables never read are copied as they are: quick
    return out.getvalue()


def _fresh_tables(path: str) -> ttLib.TTFont:
    return ttLib.TTFont(io.BytesIO(_font_bytes(path)), recalcTimestamp=False, lazy=True)


class _Document(FPDF):
    """A page with the company's header; falls back to a core font without a TTF."""

    def __init__(self, font_path: str, brand: PdfBrand | None = None) -> None:
        super().__init__(format="A4")
        self.brand = brand or PdfBrand()
        self.set_auto_page_break(auto=True, margin=18)
        font = _unicode_font(font_path)
        if font is not None:
            bold = font.with_name(font.name.replace(".ttf", "-Bold.ttf"))
            for style, path in (("", font), ("B", bold if bold.is_file() else font)):
                self.fonts[f"body{style}"] = _loaded_font(str(path), style, len(self.fonts) + 1)
            self.family = "body"
            self.unicode = True
        else:
            self.family = "helvetica"
            self.unicode = False

    def output(self, *args: Any, **kwargs: Any) -> Any:
        # Embedding subsets each font in place: give this document's fonts their own
        # tables first, read lazily from the bytes kept in memory (cheap), so the parsed
        # fonts shared by every document stay whole.
        for font in self.fonts.values():
            if isinstance(font, TTFFont):
                font.ttfont = _fresh_tables(str(font.ttffile))
        return super().output(*args, **kwargs)

    def footer(self) -> None:
        if not self.brand.legal:
            return
        self.set_y(-15)
        self.set_font(self.family, "", 7)
        self.set_text_color(90, 90, 90)
        self.multi_cell(0, 3.5, self.text_for(self.brand.legal), align="C")
        self.set_text_color(0, 0, 0)

    def text_for(self, value: str) -> str:
        if self.unicode:
            return value
        # Core PDF fonts only know Latin-1: spell the euro and use plain spaces.
        value = value.replace("\u202f", " ").replace("\xa0", " ").replace("€", "EUR")
        return value.encode("latin-1", "replace").decode("latin-1")

    def write_line(
        self, value: str, size: float = 10, bold: bool = False, height: float = 5
    ) -> None:
        self.set_font(self.family, "B" if bold else "", size)
        self.multi_cell(0, height, self.text_for(value), new_x="LMARGIN", new_y="NEXT")

    def draw_table(
        self,
        widths: Sequence[float],
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        align_right: Sequence[int] = (),
    ) -> None:
        self.set_font(self.family, "B", 9)
        self.set_fill_color(235, 239, 244)
        for width, title in zip(widths, header, strict=True):
            self.cell(width, 7, self.text_for(title), border="B", fill=True)
        self.ln()
        self.set_font(self.family, "", 9)
        for row in rows:
            for index, (width, value) in enumerate(zip(widths, row, strict=True)):
                self.cell(
                    width, 6, self.text_for(value), align="R" if index in align_right else "L"
                )
            self.ln()


def _translator(locale: str) -> Callable[..., str]:
    def translate(message: str, **variables: object) -> str:
        return translate_in(locale, message, **variables)

    return translate


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _header(pdf: _Document, company: Company, title: str) -> None:
    pdf.add_page()
    brand = pdf.brand
    if brand.logo:
        try:
            pdf.image(io.BytesIO(brand.logo), x=pdf.w - pdf.r_margin - 30, y=10, w=30)
        except Exception:  # a logo fpdf2 cannot draw leaves the page without it
            log.warning("could not draw the company's logo on a document")
    if brand.colour:
        pdf.set_text_color(*_rgb(brand.colour))
    pdf.write_line(company.name, size=16, bold=True, height=8)
    pdf.set_text_color(0, 0, 0)
    pdf.write_line(company.address.replace("\n", ", "), size=9)
    legal = " · ".join(p for p in (company.registration, company.vat_number) if p)
    if legal:
        pdf.write_line(legal, size=9)
    pdf.ln(6)
    pdf.write_line(title, size=14, bold=True, height=7)
    pdf.ln(2)


def invoice_pdf(
    company: Company,
    customer: Customer,
    invoice: Invoice,
    locale: str,
    font_path: str = "",
    brand: PdfBrand | None = None,
) -> bytes:
    """A generated invoice copy, for invoices the company did not upload a PDF for."""
    t = _translator(locale)
    pdf = _Document(font_path, brand)
    _header(pdf, company, t("Invoice %(number)s", number=invoice.number))
    pdf.write_line(
        t("Customer: %(name)s (%(reference)s)", name=customer.name, reference=customer.reference)
    )
    pdf.write_line(t("Issue date: %(date)s", date=format_date(invoice.issue_date, locale)))
    pdf.write_line(t("Due date: %(date)s", date=format_date(invoice.due_date, locale)))
    pdf.ln(4)

    def money(amount: int) -> str:
        return format_money(amount, invoice.currency, locale)

    pdf.draw_table(
        (120, 60),
        (t("Description"), t("Amount")),
        [
            (t("Invoice total"), money(invoice.amount_minor)),
            (t("Already paid"), money(invoice.paid_minor)),
            (t("Remaining"), money(invoice.remaining_minor)),
        ],
        align_right=(1,),
    )
    pdf.ln(6)
    if company.iban:
        pdf.write_line(
            t(
                "Pay by bank transfer to IBAN %(iban)s, BIC %(bic)s.",
                iban=format_iban(company.iban),
                bic=company.bic,
            ),
            size=9,
        )
    pdf.write_line(t("This document is a copy generated by the payment portal."), size=8)
    return bytes(pdf.output())


def statement_pdf(
    company: Company,
    customer: Customer,
    invoices: Sequence[InvoiceLine],
    locale: str,
    today: dt.date,
    font_path: str = "",
    brand: PdfBrand | None = None,
) -> bytes:
    """An account statement: every open and paid invoice with what remains."""
    t = _translator(locale)
    pdf = _Document(font_path, brand)
    _header(pdf, company, t("Account statement"))
    pdf.write_line(
        t("Customer: %(name)s (%(reference)s)", name=customer.name, reference=customer.reference)
    )
    pdf.write_line(t("Statement date: %(date)s", date=format_date(today, locale)))
    pdf.ln(4)
    rows = [
        (
            invoice.number,
            format_date(invoice.issue_date, locale, "short"),
            format_date(invoice.due_date, locale, "short"),
            format_money(invoice.amount_minor, invoice.currency, locale),
            format_money(invoice.remaining_minor, invoice.currency, locale),
        )
        for invoice in invoices
    ]
    pdf.draw_table(
        (40, 30, 30, 40, 40),
        (t("Invoice"), t("Issued"), t("Due"), t("Amount"), t("Remaining")),
        rows,
        align_right=(3, 4),
    )
    pdf.ln(4)
    for totals in summarise(invoices, today):
        pdf.write_line(
            t(
                "Total due: %(amount)s",
                amount=format_money(totals.due_minor, totals.currency, locale),
            ),
            bold=True,
        )
        pdf.write_line(
            t(
                "Overdue: %(amount)s",
                amount=format_money(totals.overdue_minor, totals.currency, locale),
            )
        )
    return bytes(pdf.output())


def statement_csv(invoices: Sequence[InvoiceLine], today: dt.date) -> str:
    """Machine-readable statement: ISO dates, decimal amounts with a dot, one row per invoice.

    Through ``portal.csvsafe``: an invoice number like ``=HYPERLINK(...)`` is written as
    text; amounts (plain decimal numbers) and day counts stay numbers."""
    return csvsafe.csv_text(
        [
            "invoice_number",
            "issue_date",
            "due_date",
            "currency",
            "amount",
            "paid",
            "remaining",
            "status",
            "days_overdue",
        ],
        (
            [
                invoice.number,
                invoice.issue_date.isoformat(),
                invoice.due_date.isoformat(),
                invoice.currency,
                format_plain(invoice.amount_minor, invoice.currency),
                format_plain(invoice.paid_minor, invoice.currency),
                format_plain(invoice.remaining_minor, invoice.currency),
                invoice.status.value,
                invoice.days_overdue(today),
            ]
            for invoice in invoices
        ),
        numeric=["amount", "paid", "remaining", "days_overdue"],
    )


def stored_pdf(documents_dir: Path, relative_path: str) -> Path:
    """The stored file for an invoice, refusing any path that leaves the documents directory."""
    root = documents_dir.resolve()
    candidate = (root / relative_path).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        raise DocumentNotFound(relative_path)
    return candidate
