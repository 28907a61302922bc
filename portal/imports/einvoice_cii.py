"""UN/CEFACT Cross Industry Invoice (CII D16B): Factur-X, ZUGFeRD 2 and XRechnung CII."""

from __future__ import annotations

import datetime as dt
from typing import Any

from portal.i18n import gettext_ as _
from portal.imports.einvoice import (
    EInvoice,
    EInvoiceParty,
    missing,
    text,
    texts,
)
from portal.imports.einvoice_fields import (
    amount,
    basic_date,
    country_code,
    currency,
    due_from_terms,
    french_ids,
    invoice_kind,
    normalise_vat,
)

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
CII_ROOT = f"{{{NS['rsm']}}}CrossIndustryInvoice"
_DOCUMENT = "rsm:ExchangedDocument"
_AGREEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
_SETTLEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
_SUMMATION = f"{_SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
_TERMS = f"{_SETTLEMENT}/ram:SpecifiedTradePaymentTerms"


def read_cii(root: Any) -> EInvoice:
    issue_date = _date(root, f"{_DOCUMENT}/ram:IssueDateTime", _("issue date"))
    code = currency(
        text(root, f"{_SETTLEMENT}/ram:InvoiceCurrencyCode", NS), "ram:InvoiceCurrencyCode"
    )
    due_element = root.find(f"{_TERMS}/ram:DueDateDateTime", NS)
    terms = "; ".join(texts(root, f"{_TERMS}/ram:Description", NS)) or None
    due_date = (
        _date(root, f"{_TERMS}/ram:DueDateDateTime", _("due date"))
        if due_element is not None
        else due_from_terms(terms, issue_date)
    )
    total = text(root, f"{_SUMMATION}/ram:DuePayableAmount", NS)
    if total is None:
        raise missing(_("amount due"), "ram:DuePayableAmount")
    tax_exclusive = text(root, f"{_SUMMATION}/ram:TaxBasisTotalAmount", NS)
    number = text(root, f"{_DOCUMENT}/ram:ID", NS)
    if number is None:
        raise missing(_("invoice number"), "rsm:ExchangedDocument/ram:ID")
    type_code = text(root, f"{_DOCUMENT}/ram:TypeCode", NS)
    return EInvoice(
        format="cii",
        profile=text(
            root,
            "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
            NS,
        ),
        kind=invoice_kind(type_code, "ram:TypeCode"),
        type_code=type_code or "",
        number=number,
        issue_date=issue_date,
        due_date=due_date,
        currency=code,
        total_minor=amount(total, code, "ram:DuePayableAmount"),
        tax_exclusive_minor=(
            amount(tax_exclusive, code, "ram:TaxBasisTotalAmount") if tax_exclusive else None
        ),
        seller=_party(
            root.find(f"{_AGREEMENT}/ram:SellerTradeParty", NS),
            "SellerTradeParty",
            _("seller name"),
        ),
        buyer=_party(
            root.find(f"{_AGREEMENT}/ram:BuyerTradeParty", NS), "BuyerTradeParty", _("buyer name")
        ),
        referenced_invoice_numbers=tuple(
            texts(root, f"{_SETTLEMENT}/ram:InvoiceReferencedDocument/ram:IssuerAssignedID", NS)
        ),
        buyer_reference=text(root, f"{_AGREEMENT}/ram:BuyerReference", NS),
        payment_terms=terms,
    )


def _date(root: Any, path: str, label: str) -> dt.date:
    element = root.find(f"{path}/udt:DateTimeString", NS)
    value = None if element is None else " ".join(str(element.text or "").split()) or None
    return basic_date(
        value,
        None if element is None else element.get("format"),
        path.rsplit("/", 1)[-1],
        label,
    )


def _party(node: Any, element: str, label: str) -> EInvoiceParty:
    name = text(node, "ram:Name", NS)
    if node is None or name is None:
        raise missing(label, f"ram:{element}/ram:Name")
    ids: list[tuple[str | None, str]] = [
        (found.get("schemeID"), str(found.text).strip())
        for path in ("ram:GlobalID", "ram:URIUniversalCommunication/ram:URIID")
        for found in node.iterfind(path, NS)
        if found.text and found.get("schemeID")
    ]
    legal = node.find("ram:SpecifiedLegalOrganization/ram:ID", NS)
    if legal is not None and legal.text:
        ids.insert(0, (legal.get("schemeID"), str(legal.text).strip()))
    vat = normalise_vat(
        next(
            (
                str(found.text)
                for found in node.iterfind("ram:SpecifiedTaxRegistration/ram:ID", NS)
                if found.get("schemeID") == "VA" and found.text
            ),
            None,
        )
    )
    siren, siret = french_ids(ids, vat)
    address = node.find("ram:PostalTradeAddress", NS)
    email = text(node, "ram:DefinedTradeContact/ram:EmailURIUniversalCommunication/ram:URIID", NS)
    if email is None:
        email = next(
            (
                str(found.text).strip()
                for found in node.iterfind("ram:URIUniversalCommunication/ram:URIID", NS)
                if found.get("schemeID") == "EM" and found.text
            ),
            None,
        )
    return EInvoiceParty(
        name=name,
        siren=siren,
        siret=siret,
        vat_number=vat,
        address_line1=text(address, "ram:LineOne", NS) or "",
        address_line2=text(address, "ram:LineTwo", NS) or "",
        postcode=text(address, "ram:PostcodeCode", NS) or "",
        city=text(address, "ram:CityName", NS) or "",
        country=country_code(text(address, "ram:CountryID", NS)),
        email=email,
    )
