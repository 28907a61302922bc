"""The XML Schema subset CAMT.053 and CAMT.054 files are validated against.

The official ISO 20022 XSDs cannot be downloaded where this runs and no package ships
them, so this module writes the part of them that Relance reads, in the official element
order and with the official simple types (amounts, currency codes, IBANs, ISO dates, the
credit/debit indicator), for camt.053.001.02 / .001.08 and camt.054.001.02 / .001.08.
Elements Relance does not read are declared where the official schema puts them, with any
content (``xs:anyType``); an element in the wrong place, a missing required element or a
malformed value is refused, as the official schema would refuse it.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from lxml import etree

VERSIONS: Final = ("001.02", "001.08")
ROOTS: Final = {"053": ("BkToCstmrStmt", "Stmt"), "054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}


def namespace(message: str, version: str) -> str:
    return f"urn:iso:std:iso:20022:tech:xsd:camt.{message}.{version}"


def _any(*names: str, many: bool = False) -> str:
    upper = "unbounded" if many else "1"
    return "".join(
        f'<xs:element name="{n}" type="xs:anyType" minOccurs="0" maxOccurs="{upper}"/>'
        for n in names
    )


def _el(name: str, type_: str, optional: bool = True, many: bool = False) -> str:
    low = "0" if optional else "1"
    upper = "unbounded" if many else "1"
    return f'<xs:element name="{name}" type="{type_}" minOccurs="{low}" maxOccurs="{upper}"/>'


def _complex(name: str, body: str) -> str:
    return f'<xs:complexType name="{name}"><xs:sequence>{body}</xs:sequence></xs:complexType>'


_SIMPLE = """
<xs:simpleType name="Max35Text"><xs:restriction base="xs:string">
  <xs:minLength value="1"/><xs:maxLength value="35"/></xs:restriction></xs:simpleType>
<xs:simpleType name="Max140Text"><xs:restriction base="xs:string">
  <xs:minLength value="1"/><xs:maxLength value="140"/></xs:restriction></xs:simpleType>
<xs:simpleType name="Currency"><xs:restriction base="xs:string">
  <xs:pattern value="[A-Z]{3,3}"/></xs:restriction></xs:simpleType>
<xs:simpleType name="IBAN"><xs:restriction base="xs:string">
  <xs:pattern value="[A-Z]{2,2}[0-9]{2,2}[a-zA-Z0-9]{1,30}"/></xs:restriction></xs:simpleType>
<xs:simpleType name="Indicator"><xs:restriction base="xs:string">
  <xs:enumeration value="CRDT"/><xs:enumeration value="DBIT"/></xs:restriction></xs:simpleType>
<xs:simpleType name="Decimal"><xs:restriction base="xs:decimal">
  <xs:minInclusive value="0"/><xs:fractionDigits value="5"/><xs:totalDigits value="18"/>
</xs:restriction></xs:simpleType>
<xs:complexType name="Amount"><xs:simpleContent><xs:extension base="Decimal">
  <xs:attribute name="Ccy" type="Currency" use="required"/></xs:extension></xs:simpleContent>
</xs:complexType>
<xs:complexType name="DateChoice"><xs:choice>
  <xs:element name="Dt" type="xs:date"/><xs:element name="DtTm" type="xs:dateTime"/>
</xs:choice></xs:complexType>
<xs:complexType name="AccountId"><xs:choice>
  <xs:element name="IBAN" type="IBAN"/><xs:element name="Othr" type="xs:anyType"/>
</xs:choice></xs:complexType>
"""


def _party(version: str) -> str:
    party = _complex(
        "Party", _el("Nm", "Max140Text") + _any("PstlAdr", "Id", "CtryOfRes", "CtctDtls")
    )
    if version == "001.02":
        return party + _complex(
            "DebtorParty", _el("Nm", "Max140Text") + _any("PstlAdr", "Id", "CtryOfRes", "CtctDtls")
        )
    return party + (
        '<xs:complexType name="DebtorParty"><xs:choice>'
        '<xs:element name="Pty" type="Party"/><xs:element name="Agt" type="xs:anyType"/>'
        "</xs:choice></xs:complexType>"
    )


@cache
def schema_text(message: str, version: str) -> str:
    root, container = ROOTS[message]
    v8 = version == "001.08"
    account = _complex(
        "Account",
        _el("Id", "AccountId", optional=False)
        + _any("Tp")
        + _el("Ccy", "Currency")
        + _any("Nm", *(["Prxy"] if v8 else []), "Ownr", "Svcr"),
    )
    refs = _complex(
        "Refs",
        _any("MsgId")
        + _el("AcctSvcrRef", "Max35Text")
        + _any("PmtInfId", "InstrId")
        + _el("EndToEndId", "Max35Text")
        + _any(*(["UETR"] if v8 else []), "TxId", "MndtId", "ChqNb", "ClrSysRef")
        + _any(*(["AcctOwnrTxId", "AcctSvcrTxId", "MktInfrstrctrTxId", "PrcgId"] if v8 else []))
        + _any("Prtry", many=True),
    )
    related = _complex(
        "RelatedParties",
        _any("InitgPty")
        + _el("Dbtr", "DebtorParty")
        + _el("DbtrAcct", "Account")
        + _any("UltmtDbtr", "Cdtr", "CdtrAcct", "UltmtCdtr", "TradgPty")
        + _any("Prtry", many=True),
    )
    creditor_ref = _complex("CreditorRef", _any("Tp") + _el("Ref", "Max35Text"))
    structured = _complex(
        "Structured",
        _any("RfrdDocInf", many=True)
        + _any("RfrdDocAmt")
        + _el("CdtrRefInf", "CreditorRef")
        + _any("Invcr", "Invcee", *(["TaxRmt", "GrnshmtRmt"] if v8 else []))
        + _any("AddtlRmtInf", many=True),
    )
    remittance = _complex(
        "Remittance", _el("Ustrd", "Max140Text", many=True) + _el("Strd", "Structured", many=True)
    )
    tx = _complex(
        "TxDetails",
        _el("Refs", "Refs")
        + (_el("Amt", "Amount") if v8 else "")
        + _any("AmtDtls")
        + _any("Avlbty", many=True)
        + _any("BkTxCd", "Chrgs", "Intrst")
        + _el("RltdPties", "RelatedParties")
        + _any("RltdAgts", *(["LclInstrm"] if v8 else []), "Purp")
        + _any("RltdRmtInf", many=True)
        + _el("RmtInf", "Remittance")
        + _any("RltdDts", "RltdPric")
        + _any("RltdQties", many=True)
        + _any("FinInstrmId", "Tax", "RtrInf", "CorpActn", "SfkpgAcct")
        + _any("CshDpst", many=True)
        + _any("CardTx", "AddtlTxInf")
        + _any("SplmtryData", many=True),
    )
    details = _complex("EntryDetails", _any("Btch") + _el("TxDtls", "TxDetails", many=True))
    entry = _complex(
        "Entry",
        _el("NtryRef", "Max35Text")
        + _el("Amt", "Amount", optional=False)
        + _el("CdtDbtInd", "Indicator", optional=False)
        + _any("RvslInd")
        + '<xs:element name="Sts" type="xs:anyType"/>'
        + _el("BookgDt", "DateChoice")
        + _el("ValDt", "DateChoice")
        + _el("AcctSvcrRef", "Max35Text")
        + _any("Avlbty", many=True)
        + '<xs:element name="BkTxCd" type="xs:anyType"/>'
        + _any("ComssnWvrInd", "AddtlInfInd", "AmtDtls", "Chrgs", "TechInptChanl", "Intrst")
        + (_any("CardTx") if v8 else "")
        + _el("NtryDtls", "EntryDetails", many=True)
        + _any("AddtlNtryInf"),
    )
    statement_body = (
        _el("Id", "Max35Text", optional=False)
        + _any(("StmtPgntn" if message == "053" else "NtfctnPgntn") if v8 else "ElctrncSeqNb")
        + (_any("ElctrncSeqNb") if v8 else "")
        + _any("RptgSeq", "LglSeqNb") * (1 if v8 else 0)
        + (_any("LglSeqNb") if not v8 and message == "053" else "")
        + '<xs:element name="CreDtTm" type="xs:dateTime"/>'
        + _any("FrToDt", "CpyDplctInd", "RptgSrc")
        + _el("Acct", "Account", optional=False)
        + _any("RltdAcct")
        + _any("Intrst", many=True)
        + (_any("Bal", many=True) if message == "053" else "")
        + _any("TxsSummry")
        + _el("Ntry", "Entry", many=True)
        + _any("AddtlStmtInf" if message == "053" else "AddtlNtfctnInf")
    )
    header = _complex(
        "GroupHeader",
        _el("MsgId", "Max35Text", optional=False)
        + '<xs:element name="CreDtTm" type="xs:dateTime"/>'
        + _any("MsgRcpt", "MsgPgntn", *(["OrgnlBizQry"] if v8 else []), "AddtlInf"),
    )
    message_type = _complex(
        "Message",
        '<xs:element name="GrpHdr" type="GroupHeader"/>'
        + _el(container, "Statement", optional=False, many=True)
        + _any("SplmtryData", many=True),
    )
    ns = namespace(message, version)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="{ns}" '
        f'targetNamespace="{ns}" elementFormDefault="qualified">'
        '<xs:element name="Document"><xs:complexType><xs:sequence>'
        f'<xs:element name="{root}" type="Message"/>'
        "</xs:sequence></xs:complexType></xs:element>"
        + _SIMPLE
        + _party(version)
        + account
        + refs
        + related
        + creditor_ref
        + structured
        + remittance
        + tx
        + details
        + entry
        + _complex("Statement", statement_body)
        + header
        + message_type
        + "</xs:schema>"
    )


@cache
def schema(message: str, version: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.fromstring(schema_text(message, version).encode()))
