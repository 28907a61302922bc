"""E-invoice readers: Factur-X PDFs made by the factur-x library, CII and UBL 2.1 XML."""

from __future__ import annotations

import datetime as dt
import io
import random
import time
import zipfile
from collections.abc import Iterator
from dataclasses import replace

import facturx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pypdf import PdfWriter
from stdnum import luhn
from stdnum.fr import siren as siren_number

from portal.i18n import current_locale
from portal.imports.einvoice import (
    EInvoice,
    EInvoiceError,
    EInvoiceParty,
    read_einvoice,
    read_einvoices,
)
from portal.imports.einvoice_fields import french_ids
from tests.einvoice_samples import (
    BASIC,
    BUYER,
    DATA,
    SELLER,
    Party,
    Sample,
    cii_xml,
    facturx_pdf,
    plain_pdf,
)

UBL_INVOICE = (DATA / "ubl-invoice.xml").read_bytes()
UBL_CREDIT_NOTE = (DATA / "ubl-credit-note.xml").read_bytes()


def refused(data: bytes, code: str, **options: int) -> EInvoiceError:
    with pytest.raises(EInvoiceError) as caught:
        read_einvoice(data, "sample", **options)
    assert caught.value.code == code, caught.value.message
    assert caught.value.filename == "sample"
    assert "Traceback" not in caught.value.message
    return caught.value


@pytest.fixture
def french() -> Iterator[None]:
    token = current_locale.set("fr")
    yield
    current_locale.reset(token)


@pytest.fixture
def english() -> Iterator[None]:
    token = current_locale.set("en")
    yield
    current_locale.reset(token)


def test_a_facturx_pdf_made_by_the_library_reads_back_every_field() -> None:
    xml = cii_xml()
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    pdf = facturx_pdf(xml)

    invoice = read_einvoice(pdf, "FA-2026-0042.pdf")

    assert invoice == EInvoice(
        format="factur-x",
        profile="urn:cen.eu:en16931:2017",
        kind="invoice",
        type_code="380",
        number="FA-2026-0042",
        issue_date=dt.date(2026, 11, 15),
        due_date=dt.date(2026, 12, 15),
        currency="EUR",
        total_minor=123456,
        tax_exclusive_minor=102880,
        seller=EInvoiceParty(
            name="Atelier Dupont SAS",
            siren="404833048",
            siret="40483304800014",
            vat_number="FR83404833048",
            address_line1="12 rue des Lilas",
            postcode="69003",
            city="Lyon",
            country="FR",
            email="compta@atelier-dupont.fr",
        ),
        buyer=EInvoiceParty(
            name="Boulangerie Martin & Fils",
            siren="552100554",
            vat_number="FR96552100554",
            address_line1="3 place du Marché",
            address_line2="Bâtiment B",
            postcode="69100",
            city="Villeurbanne",
            country="FR",
            email="factures@boulangerie-martin.fr",
        ),
        buyer_reference="CLI-0042",
        payment_terms="Paiement à 30 jours",
        pdf=pdf,
        filename="FA-2026-0042.pdf",
    )
    assert invoice.pdf == pdf  # the PDF itself is kept, to be stored with the invoice


def test_the_same_cii_alone_reads_as_cii_without_a_pdf() -> None:
    invoice = read_einvoice(cii_xml(), "FA-2026-0042.xml")
    from_pdf = read_einvoice(facturx_pdf(), "FA-2026-0042.xml")
    assert invoice.format == "cii"
    assert invoice.pdf is None
    assert replace(from_pdf, format="cii", pdf=None) == invoice


def test_a_basic_profile_credit_note_names_the_invoices_it_credits() -> None:
    sample = Sample(
        number="AV-2026-0003",
        type_code="381",
        profile=BASIC,
        due_date=None,
        terms=None,
        net_minor=10000,
        tax_minor=2000,
        referenced=("FA-2026-0042",),
        # BASIC has no contact person: the email is the buyer's electronic address.
        buyer=replace(BUYER, contact_email=None, email="factures@boulangerie-martin.fr"),
    )
    xml = cii_xml(sample)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="basic")
    invoice = read_einvoice(facturx_pdf(xml))
    assert invoice.kind == "credit_note"
    assert invoice.profile == BASIC
    assert invoice.referenced_invoice_numbers == ("FA-2026-0042",)
    assert invoice.total_minor == 12000
    assert invoice.due_date is None  # neither a date nor terms: the importer decides
    assert invoice.buyer.email == "factures@boulangerie-martin.fr"


def test_ubl_invoice() -> None:
    invoice = read_einvoice(UBL_INVOICE, "ubl-invoice.xml")
    assert invoice.format == "ubl"
    assert invoice.profile == (
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
    )
    assert (invoice.kind, invoice.number, invoice.currency) == ("invoice", "FA-2026-0117", "EUR")
    assert invoice.issue_date == dt.date(2026, 11, 5)
    assert invoice.due_date == dt.date(2026, 12, 15)  # cbc:DueDate wins over the terms
    assert (invoice.total_minor, invoice.tax_exclusive_minor) == (123456, 102880)
    assert invoice.buyer_reference == "CLI-0042"
    assert invoice.pdf is None
    assert invoice.seller == EInvoiceParty(
        name="Atelier Dupont SAS",  # the registration name, before the trading name
        siren="404833048",
        vat_number="FR83404833048",
        address_line1="12 rue des Lilas",
        postcode="69003",
        city="Lyon",
        country="FR",
        email="compta@atelier-dupont.fr",
    )
    assert invoice.buyer == EInvoiceParty(
        name="Boulangerie Martin SARL",
        siren="552100554",  # from the SIRET (scheme 0009)
        siret="55210055400013",
        vat_number="FR96552100554",  # spaces removed
        address_line1="3 place du Marché",
        address_line2="Bâtiment B",
        postcode="69100",
        city="Villeurbanne",
        country="FR",
        email="factures@boulangerie-martin.fr",  # the EM electronic address
    )


def test_ubl_credit_note_with_referenced_invoices_and_due_date_from_terms() -> None:
    credit = read_einvoice(UBL_CREDIT_NOTE, "ubl-credit-note.xml")
    assert (credit.kind, credit.type_code, credit.number) == ("credit_note", "381", "AV-2026-0009")
    assert credit.referenced_invoice_numbers == ("FA-2026-0117", "FA-2026-0120")
    assert credit.total_minor == 12000
    assert credit.payment_terms == "Remboursement à 15 jours"
    assert credit.due_date == dt.date(2026, 12, 5)  # issued 20 November, 15 days
    assert credit.seller.siren == "404833048"  # from the 0225 e-invoicing address
    assert credit.buyer.siren == "552100554"  # from the French VAT number
    assert credit.buyer.name == "Boulangerie Martin"  # trading name when no legal name


@pytest.mark.parametrize(
    ("currency", "text", "minor"),
    [
        ("EUR", "1234.56", 123456),
        ("EUR", "1234.5", 123450),
        ("EUR", "1234.560", 123456),  # exact: nothing to round
        ("EUR", "0", 0),
        ("EUR", "-12.00", -1200),
        ("JPY", "1234", 1234),
        ("KWD", "1.234", 1234),
    ],
)
def test_amounts_are_read_exactly_in_minor_units(currency: str, text: str, minor: int) -> None:
    sample = Sample(currency=currency, net_minor=0, tax_minor=0, amount_text=text)
    assert read_einvoice(cii_xml(sample)).total_minor == minor


@pytest.mark.parametrize(
    ("currency", "text"),
    [("EUR", "12.345"), ("JPY", "12.5"), ("EUR", "12,50"), ("EUR", "1e3"), ("EUR", "NaN")],
)
def test_amounts_that_would_need_rounding_or_guessing_are_refused(
    currency: str, text: str, english: None
) -> None:
    error = refused(cii_xml(Sample(currency=currency, amount_text=text)), "bad_amount")
    assert "DuePayableAmount" in error.message


@pytest.mark.parametrize(
    ("ids", "vat", "expected"),
    [
        ([("0002", "404833048")], None, ("404833048", None)),  # legal id, SIREN scheme
        ([("0009", "40483304800014")], None, ("404833048", "40483304800014")),
        ([("0002", "40483304800014")], None, ("404833048", "40483304800014")),
        ([], "FR83404833048", ("404833048", None)),
        ([("0225", "404833048_COMPTA")], None, ("404833048", None)),
        ([(None, "404833048")], None, ("404833048", None)),  # an unschemed legal id
        ([("0002", "404833049")], None, (None, None)),  # check digit wrong: not taken
        ([], "FR00404833048", (None, None)),  # VAT key wrong
        ([], "DE123456789", (None, None)),
        ([("0088", "3012345678901")], None, (None, None)),  # a GLN says nothing
        ([("0002", "552100554")], "FR83404833048", ("552100554", None)),  # explicit first
    ],
)
def test_siren_comes_from_legal_ids_siret_or_french_vat(
    ids: list[tuple[str | None, str]], vat: str | None, expected: tuple[str | None, str | None]
) -> None:
    assert french_ids(ids, vat) == expected


@given(st.integers(0, 10**8 - 1), st.integers(0, 9999))
def test_any_valid_siren_is_found_from_its_vat_number_or_siret(base: int, nic: int) -> None:
    siren = f"{base:08d}{luhn.calc_check_digit(f'{base:08d}')}"
    siret_base = f"{siren}{nic:04d}"
    siret = siret_base + luhn.calc_check_digit(siret_base)
    assume(siren != "356000000")  # La Poste's SIRETs follow another check digit rule
    assert french_ids([], "FR" + siren_number.to_tva(siren)) == (siren, None)
    assert french_ids([("0009", siret)], None) == (siren, siret)


def test_a_foreign_buyer_has_no_siren() -> None:
    buyer = Party(name="Bäckerei Müller GmbH", vat="DE123456789", city="Köln", country="DE")
    invoice = read_einvoice(cii_xml(Sample(buyer=buyer)))
    assert invoice.buyer.siren is None
    assert invoice.buyer.vat_number == "DE123456789"
    assert invoice.buyer.country == "DE"


@pytest.mark.parametrize(
    ("terms", "due"),
    [
        ("Paiement à 45 jours", dt.date(2026, 12, 30)),
        ("Net 30", dt.date(2026, 12, 15)),
        ("Payable à réception", dt.date(2026, 11, 15)),
        ("45 jours fin de mois", None),  # two readings exist: the importer decides
        ("30 ou 60 jours", None),
    ],
)
def test_due_date_falls_back_to_payment_terms(terms: str, due: dt.date | None) -> None:
    invoice = read_einvoice(cii_xml(Sample(due_date=None, terms=terms)))
    assert invoice.due_date == due
    assert invoice.payment_terms == terms


# -- refused input ----------------------------------------------------------------------


def test_truncated_pdf() -> None:
    pdf = facturx_pdf()
    refused(pdf[: len(pdf) // 2], "truncated")


def test_damaged_pdf() -> None:
    refused(b"%PDF-1.7\n" + b"\x00garbage" * 100 + b"\n%%EOF\n", "pdf_unreadable")


def test_pdf_without_an_embedded_invoice(french: None) -> None:
    error = refused(plain_pdf(), "pdf_no_invoice")
    assert "Factur-X" in error.message
    assert "Ce PDF" in error.message


def test_random_bytes() -> None:
    noise = random.Random(10).randbytes(4096)
    assert not noise.startswith((b"%PDF", b"<", b"PK"))
    refused(noise, "not_einvoice")


def test_empty_and_too_large_files() -> None:
    refused(b"  \n", "empty")
    refused(UBL_INVOICE, "too_large", max_bytes=1024)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&lol9;</Invoice>"""


def test_billion_laughs_is_refused_at_once() -> None:
    started = time.perf_counter()
    refused(BILLION_LAUGHS, "xml_doctype")
    refused(BILLION_LAUGHS.decode().encode("utf-16"), "xml_doctype")  # past the byte check
    assert time.perf_counter() - started < 1.0


def test_an_external_entity_is_never_resolved() -> None:
    xxe = UBL_INVOICE.replace(
        b"<Invoice ",
        b'<!DOCTYPE Invoice [<!ENTITY secret SYSTEM "file:///etc/hostname">]>\n<Invoice ',
    ).replace(b"FA-2026-0117", b"&secret;")
    error = refused(xxe, "xml_doctype")
    hostname = open("/etc/hostname", "rb").read().strip().decode()  # noqa: SIM115
    assert hostname not in error.message
    refused(xxe.decode().encode("utf-16"), "xml_doctype")


def test_ubl_without_a_number_says_which_field(english: None) -> None:
    error = refused(UBL_INVOICE.replace(b"<cbc:ID>FA-2026-0117</cbc:ID>", b""), "missing_field")
    assert error.message == "Required field missing: invoice number (cbc:ID)."


def test_missing_field_in_french(french: None) -> None:
    xml = cii_xml().replace(b"<ram:DuePayableAmount>1234.56</ram:DuePayableAmount>", b"")
    error = refused(xml, "missing_field")
    assert error.message == "Champ obligatoire manquant : montant dû (ram:DuePayableAmount)."


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (cii_xml()[:-200], "truncated"),
        (UBL_INVOICE[:1000], "truncated"),
        (b"<Invoice><cbc:ID>1</Invoice>", "bad_xml"),
        ("<?xml version='1.0'?><a>Crème brûlée</a>".encode("latin-1"), "bad_encoding"),
        (cii_xml().replace(b"UTF-8", b"klingon"), "bad_encoding"),
        (b"<?xml version='1.0'?><Order xmlns='urn:example'/>", "unknown_root"),
        (
            b"<rsm:CrossIndustryDocument xmlns:rsm='urn:ferd:CrossIndustryDocument:invoice:1p0'/>",
            "unsupported_version",
        ),
        (
            cii_xml(Sample(issue_date=dt.date(2026, 11, 15))).replace(b"20261115", b"20261345"),
            "bad_date",
        ),
        (UBL_INVOICE.replace(b"2026-11-05", b"5 novembre"), "bad_date"),
        (cii_xml(Sample(currency="XYZ")), "bad_currency"),
        (cii_xml(Sample(type_code="325")), "unsupported_type"),  # a pro forma
        (
            UBL_INVOICE.replace(
                b'PayableAmount currencyID="EUR"', b'PayableAmount currencyID="USD"'
            ),
            "bad_amount",
        ),
        (cii_xml(Sample(buyer=replace(BUYER, name=""))), "missing_field"),
    ],
)
def test_bad_input_is_refused_with_its_code(data: bytes, code: str, english: None) -> None:
    refused(data, code)


def test_latin1_xml_that_says_so_is_read() -> None:
    xml = cii_xml().decode().replace("UTF-8", "ISO-8859-1").encode("latin-1")
    assert read_einvoice(xml).buyer.address_line1 == "3 place du Marché"


# -- many files and archives ------------------------------------------------------------


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_many_files_and_a_zip_archive_at_once() -> None:
    archive = _zip({"a/FA-2026-0042.pdf": facturx_pdf(), "notes.txt": b"hello", "a/": b""})
    results = read_einvoices(
        [("ubl-invoice.xml", UBL_INVOICE), ("broken.xml", b"<a>"), ("lot.zip", archive)]
    )
    assert [getattr(r, "number", None) or getattr(r, "code", None) for r in results] == [
        "FA-2026-0117",
        "truncated",
        "FA-2026-0042",
        "not_einvoice",
    ]
    assert [r.filename for r in results] == [
        "ubl-invoice.xml",
        "broken.xml",
        "lot.zip/a/FA-2026-0042.pdf",
        "lot.zip/notes.txt",
    ]


def test_zip_bombs_are_refused_by_declared_and_actual_size() -> None:
    limit = 64 * 1024
    bomb = _zip({"bomb.xml": b"<a>" + b" " * (10 * limit) + b"</a>"})
    assert len(bomb) < limit
    [result] = read_einvoices([("bomb.zip", bomb)], max_bytes=limit)
    assert isinstance(result, EInvoiceError)
    assert result.code == "too_large"
    # The same member claiming to be small: reading stops at the limit all the same.
    lying = bytearray(bomb)
    central = lying.index(b"PK\x01\x02")
    lying[central + 24 : central + 28] = (100).to_bytes(4, "little")
    [result] = read_einvoices([("bomb.zip", bytes(lying))], max_bytes=limit)
    assert isinstance(result, EInvoiceError)
    assert result.code in ("too_large", "bad_zip")
    [result] = read_einvoices([("bad.zip", b"PK\x03\x04" + b"\x00" * 50)])
    assert isinstance(result, EInvoiceError)
    assert result.code == "bad_zip"


def test_a_spreadsheet_is_not_opened_as_an_archive() -> None:
    [result] = read_einvoices([("clients.xlsx", _zip({"xl/workbook.xml": b"<workbook/>"}))])
    assert isinstance(result, EInvoiceError)
    assert (result.code, result.filename) == ("not_einvoice", "clients.xlsx")


def test_a_password_protected_pdf_is_refused() -> None:
    writer = PdfWriter(clone_from=io.BytesIO(facturx_pdf()))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    refused(buffer.getvalue(), "pdf_unreadable")


# -- property: generated fields -> CII -> read back equal --------------------------------

_words = st.text(
    alphabet=st.characters(categories=["L", "N"], include_characters="&<>'\"-./"),
    min_size=1,
    max_size=20,
)
_names = st.lists(_words, min_size=1, max_size=4).map(" ".join)
_currencies = st.sampled_from(["EUR", "JPY", "USD", "CHF", "KWD"])
_dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))


@settings(max_examples=60, deadline=None)
@given(
    number=_words,
    kind=st.sampled_from(["380", "381", "384", "389", "261"]),
    currency=_currencies,
    issue=_dates,
    due=st.none() | _dates,
    net=st.integers(0, 10**12),
    tax=st.integers(0, 10**11),
    seller_name=_names,
    buyer_name=_names,
    city=_names,
    referenced=st.lists(_words, max_size=3).map(tuple),
)
def test_generated_invoices_read_back_equal(
    number: str,
    kind: str,
    currency: str,
    issue: dt.date,
    due: dt.date | None,
    net: int,
    tax: int,
    seller_name: str,
    buyer_name: str,
    city: str,
    referenced: tuple[str, ...],
) -> None:
    sample = Sample(
        number=number,
        type_code=kind,
        currency=currency,
        issue_date=issue,
        due_date=due,
        terms=None,
        net_minor=net,
        tax_minor=tax,
        seller=replace(SELLER, name=seller_name),
        buyer=replace(BUYER, name=buyer_name, city=city),
        referenced=referenced,
    )
    invoice = read_einvoice(cii_xml(sample))
    assert invoice.number == number
    assert invoice.kind == ("credit_note" if kind in ("381", "261") else "invoice")
    assert (invoice.issue_date, invoice.due_date) == (issue, due)
    assert (invoice.currency, invoice.total_minor) == (currency, net + tax)
    assert invoice.tax_exclusive_minor == net
    assert (invoice.seller.name, invoice.buyer.name) == (seller_name, buyer_name)
    assert invoice.buyer.city == city
    assert invoice.referenced_invoice_numbers == referenced


def test_a_pdf_embedding_ubl_reads_as_ubl_with_its_pdf() -> None:
    writer = PdfWriter(clone_from=io.BytesIO(plain_pdf()))
    writer.add_attachment("xrechnung.xml", UBL_INVOICE)
    buffer = io.BytesIO()
    writer.write(buffer)
    invoice = read_einvoice(buffer.getvalue())
    assert (invoice.format, invoice.number) == ("ubl", "FA-2026-0117")
    assert invoice.pdf == buffer.getvalue()
