"""E-invoice readers: Factur-X / ZUGFeRD PDFs, CII and UBL 2.1 XML -> ``EInvoice``.

Pure parsing, no database: the import pipeline matches the buyer and stores the
invoice. Every failure is an ``EInvoiceError`` with a stable ``code`` and a
translated message, never a trace. The CII and UBL field mappings live in
``einvoice_cii`` and ``einvoice_ubl``, the field readers they share in ``einvoice_fields``.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from lxml import etree

from portal.i18n import gettext_ as _
from portal.xmlsafe import hardened_parser

MAX_BYTES = 20 * 1024 * 1024  # one file, and one member of a zip archive
MAX_ARCHIVE_MEMBERS = 500
MAX_ARCHIVE_BYTES = 200 * 1024 * 1024  # all members of one archive, uncompressed
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EInvoiceParty:
    """The seller or the buyer; missing address parts are empty strings."""

    name: str
    siren: str | None = None
    siret: str | None = None
    vat_number: str | None = None
    address_line1: str = ""
    address_line2: str = ""
    postcode: str = ""
    city: str = ""
    country: str | None = None  # ISO 3166 alpha-2
    email: str | None = None


@dataclass(frozen=True)
class EInvoice:
    """One invoice or credit note as the file states it; money in minor units."""

    format: str  # "factur-x" | "ubl" | "cii"
    profile: str | None  # guideline (CII) or customization (UBL) identifier
    kind: str  # "invoice" | "credit_note"
    type_code: str
    number: str
    issue_date: dt.date
    due_date: dt.date | None
    currency: str
    total_minor: int  # amount due, taxes included
    tax_exclusive_minor: int | None
    seller: EInvoiceParty
    buyer: EInvoiceParty
    referenced_invoice_numbers: tuple[str, ...] = ()
    buyer_reference: str | None = None
    payment_terms: str | None = None
    pdf: bytes | None = field(default=None, repr=False)
    filename: str = ""


class EInvoiceError(Exception):
    """A file that cannot be read as an e-invoice: ``code`` is stable, ``message`` translated."""

    def __init__(self, code: str, message: str, filename: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.filename = filename

    def __repr__(self) -> str:
        return f"EInvoiceError({self.code!r}, {self.message!r}, {self.filename!r})"


def missing(label: str, element: str) -> EInvoiceError:
    return EInvoiceError(
        "missing_field",
        _("Required field missing: %(field)s (%(element)s).", field=label, element=element),
    )


# -- reading ----------------------------------------------------------------------------


def read_einvoice(data: bytes, filename: str = "", *, max_bytes: int = MAX_BYTES) -> EInvoice:
    """Read one Factur-X/ZUGFeRD PDF or CII/UBL XML file; ``EInvoiceError`` if it is not one."""
    try:
        invoice = _read(data, max_bytes)
    except EInvoiceError as error:
        error.filename = filename
        raise
    return replace(invoice, filename=filename)


def read_einvoices(
    files: Iterable[tuple[str, bytes]], *, max_bytes: int = MAX_BYTES
) -> list[EInvoice | EInvoiceError]:
    """Read many files, each to an invoice or its error; zip archives are opened."""
    results: list[EInvoice | EInvoiceError] = []
    for filename, data in files:
        # A spreadsheet is a zip too: only a ``.zip`` (or a nameless upload) is opened.
        is_zip = not filename or filename.lower().endswith(".zip")
        if is_zip and data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            results.extend(_read_archive(filename, data, max_bytes))
            continue
        try:
            results.append(read_einvoice(data, filename, max_bytes=max_bytes))
        except EInvoiceError as error:
            results.append(error)
    return results


def _read(data: bytes, max_bytes: int) -> EInvoice:
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if not data.strip():
        raise EInvoiceError("empty", _("The file is empty."))
    if b"%PDF-" in data[:1024]:
        # Factur-X and ZUGFeRD 2 embed CII; an XRechnung PDF may embed UBL.
        invoice = _read_xml(parse_xml(_xml_from_pdf(data, max_bytes)))
        pdf_format = "factur-x" if invoice.format == "cii" else invoice.format
        return replace(invoice, format=pdf_format, pdf=data)
    if _looks_like_xml(data):
        return _read_xml(parse_xml(data))
    raise EInvoiceError(
        "not_einvoice",
        _("This file is neither a PDF nor an XML file: it cannot be an e-invoice."),
    )


def _read_xml(root: Any) -> EInvoice:
    from portal.imports.einvoice_cii import CII_ROOT, read_cii
    from portal.imports.einvoice_ubl import UBL_ROOTS, read_ubl

    tag = str(root.tag)
    if tag == CII_ROOT:
        return read_cii(root)
    if tag in UBL_ROOTS:
        return read_ubl(root)
    if tag.startswith("{urn:ferd:CrossIndustryDocument"):
        raise EInvoiceError(
            "unsupported_version",
            _("ZUGFeRD 1.0 invoices are not read; ask for a Factur-X or ZUGFeRD 2 invoice."),
        )
    raise EInvoiceError(
        "unknown_root",
        _(
            "This XML file is not an invoice: its root element %(element)s is neither a UBL "
            "Invoice or CreditNote nor a CII CrossIndustryInvoice.",
            element=etree.QName(root).localname,
        ),
    )


def _looks_like_xml(data: bytes) -> bool:
    head = data[:4]
    if head[:3] == b"\xef\xbb\xbf" or head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    return data.lstrip()[:1] == b"<"


def _xml_from_pdf(data: bytes, max_bytes: int) -> bytes:
    if b"%%EOF" not in data[-1024:]:
        raise EInvoiceError("truncated", _("The PDF file is truncated: its end is missing."))
    from facturx import get_xml_from_pdf

    names = ["factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml"]
    try:
        _name, xml = get_xml_from_pdf(data, check_xsd=False, filenames=names)
    except Exception as error:  # pypdf raises many kinds on a damaged or encrypted file
        _log.info("unreadable PDF: %r", error)
        raise EInvoiceError(
            "pdf_unreadable", _("The PDF file is damaged or encrypted and cannot be read.")
        ) from None
    if not xml:
        raise EInvoiceError(
            "pdf_no_invoice",
            _("This PDF holds no embedded e-invoice (Factur-X or ZUGFeRD XML)."),
        )
    if len(xml) > max_bytes:
        raise _too_large(max_bytes)
    return bytes(xml)


def _too_large(max_bytes: int) -> EInvoiceError:
    return EInvoiceError(
        "too_large", _("The file is larger than %(size)d MB.", size=max_bytes // (1024 * 1024))
    )


# -- XML --------------------------------------------------------------------------------


def parse_xml(data: bytes) -> Any:
    """The root element, parsed without DTDs, entities or network; errors are EInvoiceErrors."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise _doctype_error()
    parser = hardened_parser()
    try:
        parser.feed(data)
    except etree.XMLSyntaxError as error:
        raise _syntax_error(error, truncated=False) from None
    try:
        root = parser.close()
    except etree.XMLSyntaxError as error:
        raise _syntax_error(error, truncated=True) from None
    if root.getroottree().docinfo.doctype:  # a DTD in an encoding the byte check missed
        raise _doctype_error()
    return root


def _doctype_error() -> EInvoiceError:
    return EInvoiceError(
        "xml_doctype",
        _("The XML file declares a DTD or entities, which e-invoices never do: refused."),
    )


def _syntax_error(error: Any, *, truncated: bool) -> EInvoiceError:
    line = int(error.position[0]) if error.position else 0
    if error.code in (32, 81):  # unsupported encoding, bytes invalid in the encoding
        return EInvoiceError(
            "bad_encoding",
            _(
                "The XML file is not in the encoding it declares (UTF-8 when it declares "
                "none), line %(line)d.",
                line=line,
            ),
        )
    if error.code in (89, 114):  # entity loop or amplification
        return _doctype_error()
    if truncated:
        return EInvoiceError("truncated", _("The XML file is truncated: its end is missing."))
    return EInvoiceError(
        "bad_xml", _("The XML file is not well-formed (line %(line)d).", line=line)
    )


def text(node: Any, path: str, namespaces: dict[str, str]) -> str | None:
    """The stripped text of the first element at ``path``, None when absent or blank."""
    found = node.find(path, namespaces) if node is not None else None
    if found is None or found.text is None:
        return None
    value = " ".join(str(found.text).split())
    return value or None


def texts(node: Any, path: str, namespaces: dict[str, str]) -> list[str]:
    values = (" ".join(str(found.text or "").split()) for found in node.iterfind(path, namespaces))
    return [value for value in values if value]


def _read_archive(filename: str, data: bytes, max_bytes: int) -> list[EInvoice | EInvoiceError]:
    """Each member of a zip archive, read with size limits; a zip bomb is refused."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [
            info
            for info in archive.infolist()
            if not info.is_dir() and not info.filename.startswith(("__MACOSX/", "."))
        ]
    except (zipfile.BadZipFile, ValueError, OSError):
        return [EInvoiceError("bad_zip", _("The zip archive is damaged."), filename)]
    declared = sum(info.file_size for info in members)
    if len(members) > MAX_ARCHIVE_MEMBERS or declared > MAX_ARCHIVE_BYTES:
        return [
            EInvoiceError(
                "zip_too_large",
                _(
                    "The zip archive holds too much (at most %(count)d files and %(size)d MB).",
                    count=MAX_ARCHIVE_MEMBERS,
                    size=MAX_ARCHIVE_BYTES // (1024 * 1024),
                ),
                filename,
            )
        ]
    results: list[EInvoice | EInvoiceError] = []
    budget = MAX_ARCHIVE_BYTES  # the actual sizes, in case the declared ones lie
    for info in members:
        name = f"{filename}/{info.filename}"
        try:
            member = _archive_member(archive, info, min(max_bytes, budget))
            budget -= len(member)
            results.append(read_einvoice(member, name, max_bytes=max_bytes))
        except EInvoiceError as error:
            error.filename = name
            results.append(error)
    return results


def _archive_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int) -> bytes:
    if info.file_size > max_bytes:
        raise _too_large(max_bytes)
    try:
        with archive.open(info) as member:
            content = member.read(max_bytes + 1)  # the declared size may lie
    except (zipfile.BadZipFile, RuntimeError, ValueError, OSError, EOFError):
        raise EInvoiceError(
            "bad_zip", _("This file of the zip archive is damaged or encrypted.")
        ) from None
    if len(content) > max_bytes:
        raise _too_large(max_bytes)
    return content
