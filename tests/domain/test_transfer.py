"""Bank transfer details: ISO 11649 creditor references and the EPC069-12 QR code."""

from __future__ import annotations

import io
import os
import re
import string
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import segno
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import iso11649
from stdnum.iso7064 import mod_37_36, mod_97_10

from portal.payments.transfer import (
    EPC_MAX_AMOUNT_MINOR,
    EPC_MAX_PAYLOAD_BYTES,
    EPC_MAX_QR_VERSION,
    InvalidCreditorReference,
    TransferError,
    creditor_reference,
    epc_payload,
    epc_qr_png,
    epc_qr_svg,
    format_creditor_reference,
    parse_creditor_reference,
)
from portal.settings import CompanyIdentity

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
COMPANY = CompanyIdentity()
IBAN = "FR7630006000011234567890189"
BIC = "AGRIFRPPXXX"
ALPHANUMERICS = string.digits + string.ascii_uppercase
ids = st.integers(min_value=0, max_value=10**12)


def payload(**overrides: Any) -> str:
    fields: dict[str, Any] = {
        "name": COMPANY.name,
        "iban": COMPANY.iban,
        "bic": COMPANY.bic,
        "amount_minor": 1234,
        "currency": "EUR",
    }
    fields.update(overrides)
    return epc_payload(**fields)


# --- ISO 11649 creditor references -----------------------------------------------------------


def test_known_reference_and_layout() -> None:
    # customer 42 = "16", request 1234 = "YA" in base 36; "2" = length of "16"; "8" = MOD 37,36.
    assert creditor_reference(42, 1234) == "RF90216YA8"
    assert format_creditor_reference("RF90216YA8") == "RF90 216Y A8"
    assert parse_creditor_reference("RF90 216Y A8") == (42, 1234)


def test_format_matches_the_iso_example() -> None:
    assert format_creditor_reference("RF18539007547034") == "RF18 5390 0754 7034"
    assert format_creditor_reference(" rf18 5390 0754 7034 ") == "RF18 5390 0754 7034"
    assert iso11649.format("RF18539007547034") == "RF18 5390 0754 7034"


@given(ids, ids)
def test_reference_round_trips_and_is_valid_iso_11649(customer_id: int, request_id: int) -> None:
    reference = creditor_reference(customer_id, request_id)
    assert iso11649.is_valid(reference)
    assert mod_97_10.is_valid(reference[4:] + reference[:4])
    assert re.fullmatch(r"RF[0-9]{2}[0-9A-Z]{1,21}", reference)
    assert len(reference) <= 25
    assert parse_creditor_reference(reference) == (customer_id, request_id)
    shown = format_creditor_reference(reference)
    assert shown.replace(" ", "") == reference
    assert all(len(group) == 4 for group in shown.split(" ")[:-1])
    assert iso11649.format(reference) == shown
    typed = "  " + shown.lower().replace(" ", "  ") + "\t"
    assert parse_creditor_reference(typed) == (customer_id, request_id)


@given(ids, ids, ids, ids)
def test_distinct_pairs_have_distinct_references(a: int, b: int, c: int, d: int) -> None:
    if (a, b) != (c, d):
        assert creditor_reference(a, b) != creditor_reference(c, d)


@settings(max_examples=40)
@given(ids, ids)
def test_any_single_character_change_is_refused(customer_id: int, request_id: int) -> None:
    reference = creditor_reference(customer_id, request_id)
    for position, original in enumerate(reference):
        for replacement in ALPHANUMERICS:
            if replacement == original:
                continue
            tampered = reference[:position] + replacement + reference[position + 1 :]
            with pytest.raises(InvalidCreditorReference):
                parse_creditor_reference(tampered)
            same_kind = original.isdigit() == replacement.isdigit()
            if same_kind:
                # ISO 11649 alone catches these; a letter typed for a digit is the extra
                # check character's job (see the module doc).
                assert not iso11649.is_valid(tampered), tampered


@pytest.mark.parametrize(
    "text",
    [
        "",
        "RF",
        "RF18",
        "RF19539007547034",  # wrong check digits
        "RF18539007547035",
        "XX18539007547034",
        "RFAB539007547034",
        "RF18-5390-0754-7034",
        "RF18 5390 0754 7034 ß",
        "RF" + "1" * 24,  # too long
    ],
)
def test_parser_refuses_what_is_not_a_valid_reference(text: str) -> None:
    with pytest.raises(InvalidCreditorReference):
        parse_creditor_reference(text)
    with pytest.raises(TransferError):
        format_creditor_reference(text)


def test_parser_refuses_valid_iso_references_in_another_layout() -> None:
    # ISO-valid, but not something creditor_reference would have produced.
    assert iso11649.is_valid("RF18539007547034")
    with pytest.raises(InvalidCreditorReference):
        parse_creditor_reference("RF18539007547034")
    # Customer length 0, leading zeros in either id, no request part, length past the end.
    for ids_part in ("0123", "2016YA", "2160YA", "216", "9123"):
        body = ids_part + mod_37_36.calc_check_digit(ids_part)
        reference = "RF" + mod_97_10.calc_check_digits(body + "RF") + body
        assert iso11649.is_valid(reference), reference
        with pytest.raises(InvalidCreditorReference):
            parse_creditor_reference(reference)


def test_reference_limits() -> None:
    assert parse_creditor_reference(creditor_reference(0, 0)) == (0, 0)
    big = 36**10 - 1  # ten base-36 characters
    assert parse_creditor_reference(creditor_reference(big, 36**9 - 1)) == (big, 36**9 - 1)
    with pytest.raises(TransferError, match="too large"):
        creditor_reference(big, 36**9)
    for bad in (-1, True):
        with pytest.raises(TransferError, match="non-negative integer"):
            creditor_reference(bad, 1)
        with pytest.raises(TransferError, match="non-negative integer"):
            creditor_reference(1, bad)


# --- EPC069-12 payload -----------------------------------------------------------------------


def test_payload_fields_in_order_with_a_reference() -> None:
    reference = creditor_reference(42, 1234)
    lines = payload(reference=reference).split("\n")
    assert lines == [
        "BCD",  # service tag
        "002",  # version
        "1",  # character set: UTF-8
        "SCT",  # identification: SEPA credit transfer
        "AGRIFRPPXXX",  # BIC of the beneficiary's bank
        "Relance Demo SAS",  # beneficiary name
        "FR7630006000011234567890189",  # beneficiary IBAN
        "EUR12.34",  # amount
        "",  # purpose
        "RF90216YA8",  # structured remittance information: the creditor reference
    ]


def test_payload_with_text_leaves_the_structured_reference_empty() -> None:
    lines = payload(text="Invoices 2024-001 and 2024-002").split("\n")
    assert len(lines) == 11
    assert lines[8:] == ["", "", "Invoices 2024-001 and 2024-002"]


def test_payload_ends_with_the_last_field_used() -> None:
    text = payload()
    assert text.split("\n")[-1] == "EUR12.34"
    assert len(text.split("\n")) == 8
    for variant in (text, payload(reference="RF18539007547034"), payload(text="x")):
        assert not variant.endswith(("\n", "\r"))
        assert "\r" not in variant


def test_bic_is_optional_in_version_002() -> None:
    for missing in (None, ""):
        lines = payload(bic=missing).split("\n")
        assert lines[1] == "002"
        assert lines[4] == ""
        assert lines[6] == IBAN


def test_iban_and_bic_are_written_compact_and_upper_case() -> None:
    lines = payload(iban="fr76 3000 6000 0112 3456 7890 189", bic="agri frpp").split("\n")
    assert lines[4] == "AGRIFRPP"
    assert lines[6] == IBAN


@pytest.mark.parametrize(
    ("minor", "field"),
    [
        (1, "EUR0.01"),
        (10, "EUR0.10"),
        (100, "EUR1.00"),
        (1234567, "EUR12345.67"),
        (EPC_MAX_AMOUNT_MINOR, "EUR999999999.99"),
    ],
)
def test_amount_format(minor: int, field: str) -> None:
    assert payload(amount_minor=minor).split("\n")[7] == field


@pytest.mark.parametrize("minor", [0, -1, EPC_MAX_AMOUNT_MINOR + 1, True, 12.5, "1234"])
def test_amount_out_of_range_or_not_cents(minor: object) -> None:
    with pytest.raises(TransferError, match="amount"):
        payload(amount_minor=minor)


@pytest.mark.parametrize("currency", ["USD", "CHF", "eur", ""])
def test_eur_only(currency: str) -> None:
    with pytest.raises(TransferError, match="EUR only"):
        payload(currency=currency)


@pytest.mark.parametrize("iban", ["FR7630006000011234567890188", "FR76", "", "not an iban"])
def test_invalid_iban(iban: str) -> None:
    with pytest.raises(TransferError, match="IBAN"):
        payload(iban=iban)


@pytest.mark.parametrize("bic", ["AGRI", "AGRIFRPPXX", "AGRI1RPP", "AGRIFRPPXXXX"])
def test_invalid_bic(bic: str) -> None:
    with pytest.raises(TransferError, match="BIC"):
        payload(bic=bic)


def test_name_utf8_with_accents() -> None:
    name = "Société Générale — Zoë Ünal & Cie"
    text = payload(name=name)
    assert text.split("\n")[5] == name
    assert name.encode("utf-8") in text.encode("utf-8")


def test_name_limit_is_70_characters() -> None:
    assert payload(name="é" * 70).split("\n")[5] == "é" * 70
    with pytest.raises(TransferError, match="70"):
        payload(name="a" * 71)


@pytest.mark.parametrize("name", ["", "   ", "Relance\nDemo", "Relance\rDemo", " Relance"])
def test_name_required_on_one_line(name: str) -> None:
    with pytest.raises(TransferError, match="beneficiary name"):
        payload(name=name)


def test_reference_or_text_never_both() -> None:
    with pytest.raises(TransferError, match="not both"):
        payload(reference="RF18539007547034", text="Invoice 1")


def test_reference_is_checked_and_compacted() -> None:
    assert payload(reference="rf18 5390 0754 7034").split("\n")[9] == "RF18539007547034"
    with pytest.raises(TransferError, match="check digits"):
        payload(reference="RF19539007547034")
    with pytest.raises(TransferError):
        payload(reference="Invoice 1")


def test_text_limit_is_140_characters() -> None:
    assert payload(text="x" * 140).split("\n")[10] == "x" * 140
    with pytest.raises(TransferError, match="140"):
        payload(text="x" * 141)
    for bad in ("", "two\nlines", "tab\there"):
        with pytest.raises(TransferError, match="remittance text"):
            payload(text=bad)


def test_payload_byte_limit() -> None:
    def longest(extra_two_byte_chars: int) -> str:
        text = "é" * extra_two_byte_chars + "x" * (140 - extra_two_byte_chars)
        return payload(name="N" * 70, amount_minor=EPC_MAX_AMOUNT_MINOR, text=text)

    ascii_only = longest(0)
    spare = EPC_MAX_PAYLOAD_BYTES - len(ascii_only.encode("utf-8"))
    assert spare > 0
    assert len(longest(spare).encode("utf-8")) == EPC_MAX_PAYLOAD_BYTES
    with pytest.raises(TransferError, match="331 bytes"):
        longest(spare + 1)
    with pytest.raises(TransferError, match="331 bytes"):
        payload(name="😀" * 70, text="é" * 140)


# --- the QR code -----------------------------------------------------------------------------


def _largest_payload() -> str:
    # 331 bytes: the most EPC069-12 allows, exactly what version 13-M holds.
    base = payload(name="N" * 70, amount_minor=EPC_MAX_AMOUNT_MINOR, text="x" * 140)
    spare = EPC_MAX_PAYLOAD_BYTES - len(base.encode("utf-8"))
    return payload(
        name="N" * 70,
        amount_minor=EPC_MAX_AMOUNT_MINOR,
        text="é" * spare + "x" * (140 - spare),
    )


def test_qr_uses_level_m_byte_mode_and_at_most_version_13() -> None:
    largest = _largest_payload()
    assert len(largest.encode("utf-8")) == EPC_MAX_PAYLOAD_BYTES
    for text in (payload(), largest):
        qr = segno.make(text, error="M", boost_error=False, mode="byte", encoding="utf-8")
        assert qr.error == "M"
        assert qr.mode == "byte"
        assert isinstance(qr.version, int)
        assert qr.version <= EPC_MAX_QR_VERSION
    with pytest.raises(TransferError, match="331 bytes"):
        epc_qr_png(largest + "x")


def test_svg_is_a_plain_image_with_a_title() -> None:
    svg = epc_qr_svg(payload(reference="RF18539007547034"), title="Pay <Relance> & co")
    assert svg.startswith("<?xml")
    root = ET.fromstring(svg.encode("utf-8"))  # noqa: S314 - our own output
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    assert int(root.attrib["width"]) == int(root.attrib["height"]) > 0
    assert [child.tag for child in root] == [f"{ns}title", f"{ns}path"]
    assert root.find(f"{ns}title").text == "Pay <Relance> & co"  # type: ignore[union-attr]
    for element in root.iter():
        for attribute in element.attrib:
            assert attribute != "style"
            assert not attribute.lower().startswith("on")
            assert "href" not in attribute
    lowered = svg.lower()
    assert "<script" not in lowered
    assert "<style" not in lowered
    assert "style=" not in lowered
    assert "javascript:" not in lowered


def test_scale_must_be_positive() -> None:
    with pytest.raises(TransferError):
        epc_qr_png(payload(), 0)
    with pytest.raises(TransferError):
        epc_qr_svg(payload(), scale=0)


def _decoder() -> tuple[Any, Any]:
    try:
        import zxingcpp
        from PIL import Image
    except ImportError:  # pragma: no cover - the test extra installs both
        if IN_CI:
            pytest.fail("zxing-cpp and Pillow come with the test extra: CI must have them")
        pytest.skip("zxing-cpp or Pillow is not installed (pip install -e '.[test]')")
    return zxingcpp, Image


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(payload(), id="amount-only"),
        pytest.param(payload(reference=creditor_reference(10**12, 10**12)), id="reference"),
        pytest.param(payload(bic=None, text="Facture n° 2024-001 — merci"), id="utf8-text"),
        pytest.param(payload(name="Société Générale — Zoë Ünal", amount_minor=1), id="utf8-name"),
        pytest.param(_largest_payload(), id="331-bytes"),
    ],
)
@pytest.mark.parametrize("scale", [2, 5])
def test_png_decodes_back_to_the_payload(text: str, scale: int) -> None:
    zxingcpp, image_module = _decoder()
    png = epc_qr_png(text, scale)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = image_module.open(io.BytesIO(png))
    results = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(results) == 1
    result = results[0]
    assert result.valid
    assert result.ec_level == "M"
    assert bytes(result.bytes) == text.encode("utf-8")
    assert result.text == text
