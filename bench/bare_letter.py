"""The formal notice's layout drawn with fpdf2 alone: the benchmark's baseline for letters.

What a plain fpdf2 program does: a new FPDF per letter, the Unicode font (regular and
bold) added to it, the same header, address block, paragraph, six-column table and
closing lines as ``portal.reminders.render.render_letter``."""

from __future__ import annotations

from fpdf import FPDF

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def _line(pdf: FPDF, value: str, size: float = 10, bold: bool = False, height: float = 5) -> None:
    pdf.set_font("body", "B" if bold else "", size)
    pdf.multi_cell(0, height, value, new_x="LMARGIN", new_y="NEXT")


def bare_letter(company: str, invoice_lines: list[str]) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_font("body", "", FONT)
    pdf.add_font("body", "B", BOLD)
    pdf.add_page()
    _line(pdf, company, size=16, bold=True, height=8)
    _line(pdf, "12 rue de la Paix, 75002 Paris", size=9)
    pdf.ln(4)
    _line(pdf, "Mise en demeure de payer", size=13, bold=True)
    pdf.ln(2)
    _line(pdf, "Client 1234 SARL", bold=True)
    _line(pdf, "À l'attention de Contact 1234")
    _line(pdf, "Client reference: B0001234")
    _line(pdf, "Date : 11 mars 2026")
    pdf.ln(4)
    _line(
        pdf,
        "Malgré nos relances, les factures ci-dessous restent impayées. Nous vous mettons en "
        "demeure de régler les sommes dues sous huit jours à compter de ce courrier.",
    )
    pdf.ln(3)
    widths = (30, 25, 20, 35, 35, 35)
    pdf.set_font("body", "B", 9)
    pdf.set_fill_color(235, 239, 244)
    for width, title in zip(
        widths, ("Facture", "Échéance", "Retard", "Reste dû", "Pénalités", "Indemnité"), strict=True
    ):
        pdf.cell(width, 7, title, border="B", fill=True)
    pdf.ln()
    pdf.set_font("body", "", 9)
    for line in invoice_lines:
        number, amount, currency = [*line.split(), "", "", ""][:3]
        for index, value in enumerate(
            (number, "09/02/2026", "30", f"{amount} {currency}", "123,45 €", "40,00 €")
        ):
            pdf.cell(widths[index], 6, value, align="R" if index >= 2 else "L")
        pdf.ln()
    pdf.ln(4)
    _line(pdf, "Total dû : 1 234,56 €", bold=True)
    pdf.ln(2)
    _line(
        pdf,
        "Les pénalités de retard courent au taux de 12,15 % l'an (taux de la Banque centrale "
        "européenne majoré de 10 points) à compter du lendemain de l'échéance, et une indemnité "
        "forfaitaire de 40 EUR pour frais de recouvrement est due pour chaque facture en retard "
        "(code de commerce, articles L441-10 et D441-5).",
        size=9,
    )
    pdf.ln(3)
    _line(
        pdf, "Consultez et réglez vos factures en ligne : https://pay.relance.example/l/x", size=9
    )
    _line(pdf, "Virement sur l'IBAN FR76 3000 6000 0112 3456 7890 189, BIC AGRIFRPP.", size=9)
    return bytes(pdf.output())


def bare_letters(company: str, letters: list[str]) -> int:
    """Each letter's invoice lines as the outbox stores them ("number remaining currency")."""
    size = 0
    for lines in letters:
        size += len(bare_letter(company, lines.splitlines()))
    return size
