"""E-invoices made for the tests: a CII (Factur-X EN 16931) builder and Factur-X PDFs.

The XML follows the Factur-X 1.0 EN 16931 schema (``facturx.xml_check_xsd`` accepts it),
so the PDFs come from the ``factur-x`` library itself, XSD check included.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import facturx
from fpdf import FPDF

from portal.money import minor_digits

DATA = Path(__file__).parent / "data" / "einvoices"
EN16931 = "urn:cen.eu:en16931:2017"
BASIC = "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic"


@dataclass(frozen=True)
class Party:
    name: str
    siren: str | None = None
    siret: str | None = None
    vat: str | None = None
    line1: str = ""
    line2: str = ""
    postcode: str = ""
    city: str = ""
    country: str = "FR"
    email: str | None = None
    contact_email: str | None = None


SELLER = Party(
    name="Atelier Dupont SAS",
    siren="404833048",
    siret="40483304800014",
    vat="FR83404833048",
    line1="12 rue des Lilas",
    postcode="69003",
    city="Lyon",
    email="compta@atelier-dupont.fr",
)
BUYER = Party(
    name="Boulangerie Martin & Fils",
    siren="552100554",
    vat="FR96552100554",
    line1="3 place du Marché",
    line2="Bâtiment B",
    postcode="69100",
    city="Villeurbanne",
    contact_email="factures@boulangerie-martin.fr",
)


@dataclass(frozen=True)
class Sample:
    number: str = "FA-2026-0042"
    type_code: str = "380"
    profile: str = EN16931
    issue_date: dt.date = dt.date(2026, 11, 15)
    due_date: dt.date | None = dt.date(2026, 12, 15)
    terms: str | None = "Paiement à 30 jours"
    currency: str = "EUR"
    net_minor: int = 102880
    tax_minor: int = 20576
    seller: Party = SELLER
    buyer: Party = BUYER
    buyer_reference: str | None = "CLI-0042"
    referenced: tuple[str, ...] = field(default=())
    amount_text: str | None = None  # DuePayableAmount written as is

    @property
    def total_minor(self) -> int:
        return self.net_minor + self.tax_minor


def decimal_text(minor: int, currency: str) -> str:
    return f"{Decimal(minor).scaleb(-minor_digits(currency)):f}"


def _el(tag: str, value: str | None, **attributes: str) -> str:
    if value is None:
        return ""
    attrs = "".join(f" {name}={quoteattr(text)}" for name, text in attributes.items())
    return f"<{tag}{attrs}>{escape(value)}</{tag}>"


def _date(tag: str, value: dt.date) -> str:
    return f'<{tag}><udt:DateTimeString format="102">{value:%Y%m%d}</udt:DateTimeString></{tag}>'


def _party(tag: str, party: Party) -> str:
    legal = (
        f"<ram:SpecifiedLegalOrganization>{_el('ram:ID', party.siren, schemeID='0002')}"
        "</ram:SpecifiedLegalOrganization>"
        if party.siren
        else ""
    )
    contact = (
        "<ram:DefinedTradeContact><ram:EmailURIUniversalCommunication>"
        f"{_el('ram:URIID', party.contact_email)}"
        "</ram:EmailURIUniversalCommunication></ram:DefinedTradeContact>"
        if party.contact_email
        else ""
    )
    uri = (
        "<ram:URIUniversalCommunication>"
        f"{_el('ram:URIID', party.email, schemeID='EM')}</ram:URIUniversalCommunication>"
        if party.email
        else ""
    )
    tax = (
        "<ram:SpecifiedTaxRegistration>"
        f"{_el('ram:ID', party.vat, schemeID='VA')}</ram:SpecifiedTaxRegistration>"
        if party.vat
        else ""
    )
    return (
        f"<{tag}>{_el('ram:GlobalID', party.siret, schemeID='0009')}{_el('ram:Name', party.name)}"
        f"{legal}{contact}<ram:PostalTradeAddress>"
        f"{_el('ram:PostcodeCode', party.postcode or None)}"
        f"{_el('ram:LineOne', party.line1 or None)}{_el('ram:LineTwo', party.line2 or None)}"
        f"{_el('ram:CityName', party.city or None)}{_el('ram:CountryID', party.country)}"
        f"</ram:PostalTradeAddress>{uri}{tax}</{tag}>"
    )


def cii_xml(sample: Sample = Sample()) -> bytes:
    """A Factur-X / EN 16931 CrossIndustryInvoice with one line at 20 % VAT."""
    cur = sample.currency
    net = decimal_text(sample.net_minor, cur)
    tax = decimal_text(sample.tax_minor, cur)
    total = decimal_text(sample.total_minor, cur)
    terms = (
        f"<ram:SpecifiedTradePaymentTerms>{_el('ram:Description', sample.terms)}"
        + (_date("ram:DueDateDateTime", sample.due_date) if sample.due_date else "")
        + "</ram:SpecifiedTradePaymentTerms>"
        if sample.terms or sample.due_date
        else ""
    )
    referenced = "".join(
        "<ram:InvoiceReferencedDocument>"
        f"{_el('ram:IssuerAssignedID', number)}</ram:InvoiceReferencedDocument>"
        for number in sample.referenced
    )
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice
  xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
  xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
  xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
  xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
<rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter>
{_el("ram:ID", sample.profile)}
</ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>
<rsm:ExchangedDocument>{_el("ram:ID", sample.number)}{_el("ram:TypeCode", sample.type_code)}
{_date("ram:IssueDateTime", sample.issue_date)}</rsm:ExchangedDocument>
<rsm:SupplyChainTradeTransaction>
<ram:IncludedSupplyChainTradeLineItem>
 <ram:AssociatedDocumentLineDocument><ram:LineID>1</ram:LineID></ram:AssociatedDocumentLineDocument>
 <ram:SpecifiedTradeProduct><ram:Name>Entretien du four</ram:Name></ram:SpecifiedTradeProduct>
 <ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice>
  <ram:ChargeAmount>{net}</ram:ChargeAmount></ram:NetPriceProductTradePrice>
 </ram:SpecifiedLineTradeAgreement>
 <ram:SpecifiedLineTradeDelivery>
  <ram:BilledQuantity unitCode="C62">1</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>
 <ram:SpecifiedLineTradeSettlement>
  <ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode><ram:CategoryCode>S</ram:CategoryCode>
   <ram:RateApplicablePercent>20</ram:RateApplicablePercent></ram:ApplicableTradeTax>
  <ram:SpecifiedTradeSettlementLineMonetarySummation>
   <ram:LineTotalAmount>{net}</ram:LineTotalAmount>
  </ram:SpecifiedTradeSettlementLineMonetarySummation>
 </ram:SpecifiedLineTradeSettlement>
</ram:IncludedSupplyChainTradeLineItem>
<ram:ApplicableHeaderTradeAgreement>{_el("ram:BuyerReference", sample.buyer_reference)}
{_party("ram:SellerTradeParty", sample.seller)}
{_party("ram:BuyerTradeParty", sample.buyer)}
</ram:ApplicableHeaderTradeAgreement>
<ram:ApplicableHeaderTradeDelivery/>
<ram:ApplicableHeaderTradeSettlement>
 <ram:InvoiceCurrencyCode>{cur}</ram:InvoiceCurrencyCode>
 <ram:ApplicableTradeTax><ram:CalculatedAmount>{tax}</ram:CalculatedAmount>
  <ram:TypeCode>VAT</ram:TypeCode><ram:BasisAmount>{net}</ram:BasisAmount>
  <ram:CategoryCode>S</ram:CategoryCode><ram:RateApplicablePercent>20</ram:RateApplicablePercent>
 </ram:ApplicableTradeTax>
 {terms}
 <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
  <ram:LineTotalAmount>{net}</ram:LineTotalAmount>
  <ram:TaxBasisTotalAmount>{net}</ram:TaxBasisTotalAmount>
  <ram:TaxTotalAmount currencyID="{cur}">{tax}</ram:TaxTotalAmount>
  <ram:GrandTotalAmount>{total}</ram:GrandTotalAmount>
  <ram:DuePayableAmount>{sample.amount_text or total}</ram:DuePayableAmount>
 </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
 {referenced}
</ram:ApplicableHeaderTradeSettlement>
</rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"""
    return xml.encode("utf-8")


def plain_pdf(title: str = "Facture FA-2026-0042") -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(text=title)
    return bytes(pdf.output())


def facturx_pdf(xml: bytes | None = None) -> bytes:
    """A Factur-X PDF made by the ``factur-x`` library, which checks the XML's schema."""
    return bytes(facturx.generate_from_binary(plain_pdf(), xml or cii_xml()))
