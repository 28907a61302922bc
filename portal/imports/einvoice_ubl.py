"""OASIS UBL 2.1 Invoice and CreditNote (Peppol BIS 3, XRechnung UBL, French CIUS)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from portal.i18n import gettext_ as _
from portal.imports.einvoice import (
    EInvoice,
    EInvoiceError,
    EInvoiceParty,
    missing,
    text,
    texts,
)
from portal.imports.einvoice_fields import (
    amount,
    country_code,
    currency,
    due_from_terms,
    french_ids,
    invoice_kind,
    iso_date,
    normalise_vat,
)

NS = {
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
}
_INVOICE = "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice"
_CREDIT_NOTE = "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote"
UBL_ROOTS = frozenset({_INVOICE, _CREDIT_NOTE})


def read_ubl(root: Any) -> EInvoice:
    is_invoice = root.tag == _INVOICE
    number = text(root, "cbc:ID", NS)
    if number is None:
        raise missing(_("invoice number"), "cbc:ID")
    issue_date = iso_date(text(root, "cbc:IssueDate", NS), "cbc:IssueDate", _("issue date"))
    code = currency(text(root, "cbc:DocumentCurrencyCode", NS), "cbc:DocumentCurrencyCode")
    type_element = "cbc:InvoiceTypeCode" if is_invoice else "cbc:CreditNoteTypeCode"
    # The type code is optional in UBL 2.1 itself: the root element then says it.
    type_code = text(root, type_element, NS) or ("380" if is_invoice else "381")
    terms = "; ".join(texts(root, "cac:PaymentTerms/cbc:Note", NS)) or None
    total = _amount(root, "cac:LegalMonetaryTotal/cbc:PayableAmount", code)
    if total is None:
        raise missing(_("amount due"), "cac:LegalMonetaryTotal/cbc:PayableAmount")
    return EInvoice(
        format="ubl",
        profile=text(root, "cbc:CustomizationID", NS),
        kind=invoice_kind(type_code, type_element),
        type_code=type_code,
        number=number,
        issue_date=issue_date,
        due_date=_due_date(root, terms, issue_date),
        currency=code,
        total_minor=total,
        tax_exclusive_minor=_amount(root, "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount", code),
        seller=_party(
            root.find("cac:AccountingSupplierParty/cac:Party", NS),
            "cac:AccountingSupplierParty",
            _("seller name"),
        ),
        buyer=_party(
            root.find("cac:AccountingCustomerParty/cac:Party", NS),
            "cac:AccountingCustomerParty",
            _("buyer name"),
        ),
        referenced_invoice_numbers=tuple(
            texts(root, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", NS)
        ),
        buyer_reference=text(root, "cbc:BuyerReference", NS),
        payment_terms=terms,
    )


def _due_date(root: Any, terms: str | None, issue_date: dt.date) -> dt.date | None:
    # cbc:DueDate exists on Invoice only; Peppol puts a credit note's in PaymentMeans.
    for path in (
        "cbc:DueDate",
        "cac:PaymentMeans/cbc:PaymentDueDate",
        "cac:PaymentTerms/cbc:PaymentDueDate",
    ):
        value = text(root, path, NS)
        if value is not None:
            return iso_date(value, path.rsplit("/", 1)[-1], _("due date"))
    return due_from_terms(terms, issue_date)


def _amount(root: Any, path: str, code: str) -> int | None:
    element = root.find(path, NS)
    element_name = path.rsplit("/", 1)[-1]
    if element is None or not (element.text or "").strip():
        return None
    declared = element.get("currencyID")
    if declared and declared.upper() != code:
        raise EInvoiceError(
            "bad_amount",
            _(
                "%(element)s is in %(declared)s but the invoice is in %(currency)s.",
                element=element_name,
                declared=declared[:10],
                currency=code,
            ),
        )
    return amount(str(element.text), code, element_name)


def _party(node: Any, element: str, label: str) -> EInvoiceParty:
    name = text(node, "cac:PartyLegalEntity/cbc:RegistrationName", NS) or text(
        node, "cac:PartyName/cbc:Name", NS
    )
    if node is None or name is None:
        raise missing(label, f"{element}/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName")
    ids: list[tuple[str | None, str]] = [
        (found.get("schemeID"), str(found.text).strip())
        for path in (
            "cac:PartyLegalEntity/cbc:CompanyID",
            "cac:PartyIdentification/cbc:ID",
            "cbc:EndpointID",
        )
        for found in node.iterfind(path, NS)
        if found.text and (found.get("schemeID") or path.startswith("cac:PartyLegalEntity"))
    ]
    vat = normalise_vat(
        next(
            (
                str(scheme.findtext("cbc:CompanyID", "", NS))
                for scheme in node.iterfind("cac:PartyTaxScheme", NS)
                if scheme.findtext("cac:TaxScheme/cbc:ID", "", NS).strip().upper() == "VAT"
            ),
            None,
        )
    )
    siren, siret = french_ids(ids, vat)
    address = node.find("cac:PostalAddress", NS)
    email = text(node, "cac:Contact/cbc:ElectronicMail", NS)
    if email is None:
        endpoint = node.find("cbc:EndpointID", NS)
        if endpoint is not None and endpoint.get("schemeID") == "EM" and endpoint.text:
            email = str(endpoint.text).strip()
    return EInvoiceParty(
        name=name,
        siren=siren,
        siret=siret,
        vat_number=vat,
        address_line1=text(address, "cbc:StreetName", NS) or "",
        address_line2=text(address, "cbc:AdditionalStreetName", NS) or "",
        postcode=text(address, "cbc:PostalZone", NS) or "",
        city=text(address, "cbc:CityName", NS) or "",
        country=country_code(text(address, "cac:Country/cbc:IdentificationCode", NS)),
        email=email,
    )
