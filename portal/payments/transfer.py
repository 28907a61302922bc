"""Paying by bank transfer: structured creditor references and the EPC (SEPA) QR code.

Pure domain code: no web, no database. Two things live here.

**ISO 11649 creditor references** (``RF`` + 2 check digits + up to 21 alphanumerics). The
reference names one customer and one payment request, and can be read back from what a bank
statement carries. Layout of the part after the check digits, all in base 36 (``0-9A-Z``)::

    L  C...C  R...R  K
    |  |      |      `-- ISO 7064 MOD 37,36 check character over L, C and R
    |  |      `-- the request id, base 36, no leading zero
    |  `-- the customer id, base 36, L characters, no leading zero
    `-- one base-36 digit: how many characters the customer id takes (1..Z)

e.g. customer 42, request 1234 -> ``2`` ``16`` ``YA`` ``8`` -> ``RF90 216Y A8``. Ids up to 10**12
take 8 characters each, so the body is at most 18 of the 21 characters allowed; any pair whose
two base-36 forms add up to 19 characters or fewer fits. Each pair has exactly one reference and
each reference exactly one pair: the parser refuses leading zeros and a missing request part.

Why the extra check character: ISO 11649's MOD 97-10 catches every single-character change
among digits or among letters, but not always a letter typed for a digit (a letter counts as two
decimal digits). MOD 37,36 catches every single substitution among the 36 alphanumerics, so a
reference with one character changed (typo or tampering) is always refused by the parser.

**EPC069-12 QR codes** ("Quick Response Code: guidelines to enable data capture for the
initiation of a SEPA credit transfer", version 002, character set 1 = UTF-8, identification
SCT), the code banking apps scan to fill in a transfer, rendered with segno at error
correction level M.
"""

from __future__ import annotations

import io
import unicodedata
from typing import Final

import segno
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError
from stdnum.iso7064 import mod_37_36

from portal.money import format_plain


class TransferError(ValueError):
    """A bank transfer detail cannot be used as given; the message says which and why."""


class InvalidCreditorReference(TransferError):
    """Text that is not a creditor reference issued by this portal (shape or check digits)."""


# --- ISO 11649 creditor references -----------------------------------------------------------

_DIGITS: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TYPED: Final = frozenset(_DIGITS + _DIGITS[10:].lower())
_PREFIX: Final = "RF"
REFERENCE_MAX_BODY: Final = 21  # characters after "RF" and the two check digits
REFERENCE_MAX_LENGTH: Final = len(_PREFIX) + 2 + REFERENCE_MAX_BODY  # 25


def _to_base36(value: int) -> str:
    if value == 0:
        return "0"
    out: list[str] = []
    while value:
        value, digit = divmod(value, 36)
        out.append(_DIGITS[digit])
    return "".join(reversed(out))


def _from_base36(text: str) -> int:
    if not text or (len(text) > 1 and text[0] == "0"):
        raise InvalidCreditorReference("not a reference issued by this portal")
    return int(text, 36)


def _mod97(alphanumerics: str) -> int:
    """ISO 7064 MOD 97-10 remainder, letters counted as A=10 .. Z=35."""
    return int("".join(str(_DIGITS.index(char)) for char in alphanumerics)) % 97


def _check_digits(body: str) -> str:
    """The two check digits of ``RF??<body>``, per ISO 11649."""
    return f"{98 - _mod97(body + _PREFIX + '00'):02d}"


def compact_creditor_reference(text: str) -> str:
    """User input (spaces, lowercase) to the compact form; raises if it is not a valid RF.

    Only the shape and the check digits are checked here: any valid ISO 11649 reference
    passes, including those this portal did not issue (see parse_creditor_reference).
    """
    spaceless = "".join(text.split())
    # Checked before upper-casing: str.upper() turns some letters into others ("ß" -> "SS").
    shape_ok = all(char in _TYPED for char in spaceless)
    compact = spaceless.upper()
    if (
        not shape_ok
        or len(compact) < len(_PREFIX) + 3
        or len(compact) > REFERENCE_MAX_LENGTH
        or not compact.startswith(_PREFIX)
        or not compact[2:4].isdigit()
    ):
        raise InvalidCreditorReference(
            "a creditor reference is RF, two check digits and 1 to 21 letters or digits"
        )
    if _mod97(compact[4:] + compact[:4]) != 1:
        raise InvalidCreditorReference("the check digits of this creditor reference do not match")
    return compact


def creditor_reference(customer_id: int, request_id: int) -> str:
    """The compact RF reference for one customer's payment request (see the module doc)."""
    for label, value in (("customer id", customer_id), ("request id", request_id)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TransferError(f"the {label} must be a non-negative integer")
    customer = _to_base36(customer_id)
    request = _to_base36(request_id)
    if len(customer) + len(request) + 2 > REFERENCE_MAX_BODY:  # + L and K
        raise TransferError("customer and request ids too large for a creditor reference")
    ids = _DIGITS[len(customer)] + customer + request
    body = ids + str(mod_37_36.calc_check_digit(ids))
    return _PREFIX + _check_digits(body) + body


def parse_creditor_reference(text: str) -> tuple[int, int]:
    """``(customer_id, request_id)`` from a reference as typed or printed (spaces, any case).

    Raises InvalidCreditorReference on wrong check digits or a reference this portal would
    not have issued.
    """
    body = compact_creditor_reference(text)[4:]
    if len(body) < 4 or not mod_37_36.is_valid(body):  # L, C, R and K: 4 at least
        raise InvalidCreditorReference("not a reference issued by this portal")
    ids = body[:-1]
    customer_length = _DIGITS.index(ids[0])
    customer, request = ids[1 : 1 + customer_length], ids[1 + customer_length :]
    if customer_length == 0 or len(customer) != customer_length or not request:
        raise InvalidCreditorReference("not a reference issued by this portal")
    return _from_base36(customer), _from_base36(request)


def format_iban(text: str) -> str:
    """For people: groups of four, ``FR7630006000011234567890189`` -> ``FR76 3000 … 189``."""
    compact = "".join(text.split()).upper()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def format_creditor_reference(text: str) -> str:
    """For display: groups of four, ``RF18539007547034`` -> ``RF18 5390 0754 7034``."""
    compact = compact_creditor_reference(text)
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


# --- EPC069-12 QR code -----------------------------------------------------------------------

EPC_SERVICE_TAG: Final = "BCD"
EPC_VERSION: Final = "002"
EPC_CHARACTER_SET: Final = "1"  # UTF-8
EPC_IDENTIFICATION: Final = "SCT"
EPC_CURRENCY: Final = "EUR"
EPC_MIN_AMOUNT_MINOR: Final = 1  # EUR 0.01
EPC_MAX_AMOUNT_MINOR: Final = 99_999_999_999  # EUR 999999999.99
EPC_MAX_NAME: Final = 70
EPC_MAX_REFERENCE: Final = 35
EPC_MAX_TEXT: Final = 140
EPC_MAX_PAYLOAD_BYTES: Final = 331
EPC_MAX_QR_VERSION: Final = 13
EPC_ERROR_LEVEL: Final = "M"
QR_QUIET_ZONE: Final = 4  # modules of white around the code, as ISO/IEC 18004 asks
# Control characters (line breaks included) and line/paragraph separators.
_FORBIDDEN_CATEGORIES: Final = frozenset({"Cc", "Zl", "Zp"})


def _free_text(label: str, value: str, limit: int, *, required: bool) -> str:
    if not isinstance(value, str):
        raise TransferError(f"the {label} must be text")
    if required and not value.strip():
        raise TransferError(f"the {label} is required")
    if len(value) > limit:
        raise TransferError(f"the {label} is longer than {limit} characters")
    # A line break would shift every following field; other control characters have no
    # business in a bank transfer.
    if any(unicodedata.category(char) in _FORBIDDEN_CATEGORIES for char in value):
        raise TransferError(f"the {label} contains a line break or a control character")
    if value != value.strip():
        raise TransferError(f"the {label} starts or ends with a space")
    return value


def epc_payload(
    *,
    name: str,
    iban: str,
    bic: str | None,
    amount_minor: int,
    currency: str,
    reference: str | None = None,
    text: str | None = None,
) -> str:
    """The EPC069-12 (version 002, UTF-8, SCT) payload: one field per line, LF separated.

    Lines: BCD, 002, 1, SCT, BIC (empty when none), beneficiary name, IBAN, amount
    (``EUR12.34``), purpose (always empty), then either the structured ISO 11649
    ``reference`` or the unstructured ``text``, never both. Nothing follows the last field
    used: without a reference or text the payload ends with the amount.
    """
    name = _free_text("beneficiary name", name, EPC_MAX_NAME, required=True)
    try:
        iban_compact = str(stdnum_iban.validate(iban))
    except ValidationError:
        raise TransferError("the IBAN is not valid") from None
    bic_compact = ""
    if bic:
        try:
            bic_compact = str(stdnum_bic.validate(bic))
        except ValidationError:
            raise TransferError("the BIC is not valid") from None
    if currency != EPC_CURRENCY:
        raise TransferError(f"a SEPA transfer QR code is in EUR only, not {currency!r}")
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TransferError("the amount must be a whole number of cents")
    if not EPC_MIN_AMOUNT_MINOR <= amount_minor <= EPC_MAX_AMOUNT_MINOR:
        raise TransferError("the amount must be between EUR 0.01 and EUR 999999999.99")
    if reference is not None and text is not None:
        raise TransferError("give a structured reference or a free text, not both")

    fields = [
        EPC_SERVICE_TAG,
        EPC_VERSION,
        EPC_CHARACTER_SET,
        EPC_IDENTIFICATION,
        bic_compact,
        name,
        iban_compact,
        EPC_CURRENCY + format_plain(amount_minor, EPC_CURRENCY),
    ]
    if reference is not None:
        reference_compact = compact_creditor_reference(reference)
        if len(reference_compact) > EPC_MAX_REFERENCE:  # pragma: no cover - RF max is 25
            raise TransferError(f"the reference is longer than {EPC_MAX_REFERENCE} characters")
        fields += ["", reference_compact]  # empty purpose, structured remittance
    elif text is not None:
        text = _free_text("remittance text", text, EPC_MAX_TEXT, required=True)
        fields += ["", "", text]  # empty purpose and structured remittance, then the text
    payload = "\n".join(fields)
    if len(payload.encode("utf-8")) > EPC_MAX_PAYLOAD_BYTES:
        raise TransferError(
            f"the QR code content is over {EPC_MAX_PAYLOAD_BYTES} bytes: shorten the name or text"
        )
    return payload


def _epc_qr(payload: str) -> segno.QRCode:
    if len(payload.encode("utf-8")) > EPC_MAX_PAYLOAD_BYTES:
        raise TransferError(f"the QR code content is over {EPC_MAX_PAYLOAD_BYTES} bytes")
    # Byte mode, UTF-8 as announced by the character set field, no ECI header, level M
    # exactly (segno would otherwise raise it when the symbol has room to spare).
    qr = segno.make(
        payload,
        error=EPC_ERROR_LEVEL,
        boost_error=False,
        mode="byte",
        encoding="utf-8",
        micro=False,
    )
    # 331 bytes is exactly the byte-mode capacity of version 13-M, the largest EPC069-12 allows.
    return qr


def epc_qr_svg(
    payload: str,
    *,
    title: str = "QR code to pay by SEPA credit transfer",
    scale: int = 4,
) -> str:
    """The QR code as a standalone SVG document, to serve as ``<img src>`` under a strict CSP.

    segno writes a ``<title>`` (escaped), a single path and presentation attributes: no
    ``style`` attribute, no ``<style>``, no script. The page still gives the ``<img>`` an alt.
    """
    if scale < 1:
        raise TransferError("the QR code scale must be at least 1")
    out = io.BytesIO()
    _epc_qr(payload).save(
        out, kind="svg", scale=scale, border=QR_QUIET_ZONE, title=title, xmldecl=True
    )
    return out.getvalue().decode("utf-8")


def epc_qr_png(payload: str, scale: int = 4) -> bytes:
    """The QR code as a PNG image, ``scale`` pixels per module, with the quiet zone."""
    if scale < 1:
        raise TransferError("the QR code scale must be at least 1")
    out = io.BytesIO()
    _epc_qr(payload).save(out, kind="png", scale=scale, border=QR_QUIET_ZONE)
    return out.getvalue()
