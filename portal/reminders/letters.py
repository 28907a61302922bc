"""What a letter needs besides its text: the address block placed for a window envelope,
the QR code to the portal and the EPC payment QR code; and registered letters (lettre
recommandée) through a postal provider's adapter.

The address block follows the French DL window envelope (110 x 220 mm, window 45 x 100 mm
on the right, 20 mm from the right edge and 15 mm from the bottom): on an A4 sheet folded
in three it sits 110 mm from the left edge and 45 mm from the top, 85 mm wide.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import segno

from portal.payments.transfer import TransferError, epc_payload, epc_qr_png

if TYPE_CHECKING:
    from portal.invoices.documents import _Document

ADDRESS_X_MM = 110.0
ADDRESS_Y_MM = 45.0
ADDRESS_WIDTH_MM = 85.0
ADDRESS_BOTTOM_MM = 90.0  # the letter's text starts below the window
QR_SIZE_MM = 32.0
REGISTERED_TEMPLATE = "formal_notice_registered"


def place_address(pdf: _Document, lines: list[str]) -> None:
    """Write the address block inside the envelope's window, then move below it."""
    y = pdf.get_y()
    pdf.set_xy(ADDRESS_X_MM, ADDRESS_Y_MM)
    for index, line in enumerate(lines[:6]):  # La Poste: six lines at most
        pdf.set_font(pdf.family, "B" if index == 0 else "", 10)
        pdf.set_x(ADDRESS_X_MM)
        pdf.cell(ADDRESS_WIDTH_MM, 5, pdf.text_for(line), new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(y, ADDRESS_BOTTOM_MM))


def portal_qr_png(link: str) -> bytes:
    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind="png", scale=4, border=4)
    return out.getvalue()


def payment_qr_png(
    *, name: str, iban: str, bic: str, amount_minor: int, currency: str, text: str
) -> bytes | None:
    """The EPC QR code for the total, or None when it cannot be made (no IBAN, not euros)."""
    if not iban or currency != "EUR" or amount_minor <= 0:
        return None
    try:
        payload = epc_payload(
            name=name[:70],
            iban=iban,
            bic=bic or None,
            amount_minor=amount_minor,
            currency=currency,
            text=text[:140],
        )
        return epc_qr_png(payload)
    except TransferError:
        return None


def draw_codes(pdf: _Document, codes: list[tuple[bytes, str]]) -> None:
    """The QR codes side by side, each with its caption under it."""
    if not codes:
        return
    if pdf.get_y() + QR_SIZE_MM + 12 > pdf.h - 20:
        pdf.add_page()
    top = pdf.get_y() + 2
    for index, (png, caption) in enumerate(codes):
        x = pdf.l_margin + index * (QR_SIZE_MM + 40)
        pdf.image(io.BytesIO(png), x=x, y=top, w=QR_SIZE_MM, h=QR_SIZE_MM)
        pdf.set_xy(x, top + QR_SIZE_MM + 1)
        pdf.set_font(pdf.family, "", 8)
        pdf.multi_cell(QR_SIZE_MM + 30, 4, pdf.text_for(caption))
    pdf.set_y(top + QR_SIZE_MM + 10)


# --- registered letters -------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredLetter:
    message_id: int
    recipient: str
    address: list[str]
    pdf: bytes
    idempotency_key: str


class RegisteredMailProvider(Protocol):
    """A postal provider that prints, posts and tracks a registered letter.

    ``send`` returns the tracking number, and must return the same one when called again
    with the same idempotency key (a retry after a crash is not a second letter). It
    raises ``portal.reminders.sms.DeliveryError`` (``permanent`` for a refused address).
    """

    def send(self, letter: RegisteredLetter) -> str: ...


class LocalRegisteredMail:
    """The local stand-in: keeps the PDF under ``<letters>/registered/`` and answers a
    tracking number derived from the key, as a real provider would answer its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, letter: RegisteredLetter) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{letter.idempotency_key}.pdf"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(letter.pdf)
        temporary.replace(path)
        return f"LOCAL-{letter.idempotency_key}".upper()
