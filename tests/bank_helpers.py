"""Statements written in the tests: CAMT.053/.054 with lxml, CFONB 120 line by line, CSV."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from lxml import etree

from portal.bank.schema import ROOTS, namespace

ACCOUNT = "FR7630006000011234567890189"  # the test settings' company IBAN


@dataclass(frozen=True)
class Entry:
    amount_minor: int
    reference: str
    credit: bool = True
    name: str = ""
    iban: str = ""
    remittance: tuple[str, ...] = ()
    structured: str = ""
    booked_on: dt.date = dt.date(2026, 12, 1)
    currency: str = "EUR"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, f"{{{parent.nsmap[None]}}}{tag}", attrs)
    if text is not None:
        node.text = text
    return node


def _amount(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def camt(
    entries: list[Entry],
    *,
    message: str = "053",
    version: str = "001.02",
    account: str = ACCOUNT,
    currency: str | None = "EUR",
    statement_id: str = "STMT-1",
) -> bytes:
    ns = namespace(message, version)
    root = etree.Element(f"{{{ns}}}Document", nsmap={None: ns})
    body = _sub(root, ROOTS[message][0])
    header = _sub(body, "GrpHdr")
    _sub(header, "MsgId", "MSG-" + statement_id)
    _sub(header, "CreDtTm", "2026-12-02T06:00:00")
    statement = _sub(body, ROOTS[message][1])
    _sub(statement, "Id", statement_id)
    _sub(statement, "CreDtTm", "2026-12-02T06:00:00")
    acct = _sub(statement, "Acct")
    _sub(_sub(acct, "Id"), "IBAN", account)
    if currency:
        _sub(acct, "Ccy", currency)
    if message == "053":
        balance = _sub(statement, "Bal")
        _sub(balance, "Amt", "0.00", Ccy="EUR")
    for entry in entries:
        node = _sub(statement, "Ntry")
        _sub(node, "Amt", _amount(entry.amount_minor), Ccy=entry.currency)
        _sub(node, "CdtDbtInd", "CRDT" if entry.credit else "DBIT")
        status = _sub(node, "Sts")
        if version == "001.08":
            _sub(status, "Cd", "BOOK")
        else:
            status.text = "BOOK"
        _sub(_sub(node, "BookgDt"), "Dt", entry.booked_on.isoformat())
        _sub(node, "AcctSvcrRef", entry.reference)
        _sub(_sub(_sub(node, "BkTxCd"), "Prtry"), "Cd", "RCDT")
        tx = _sub(_sub(node, "NtryDtls"), "TxDtls")
        _sub(_sub(tx, "Refs"), "EndToEndId", "NOTPROVIDED")
        if entry.name or entry.iban:
            parties = _sub(tx, "RltdPties")
            if entry.name:
                debtor = _sub(parties, "Dbtr")
                _sub(_sub(debtor, "Pty") if version == "001.08" else debtor, "Nm", entry.name)
            if entry.iban:
                _sub(_sub(_sub(parties, "DbtrAcct"), "Id"), "IBAN", entry.iban)
        if entry.remittance or entry.structured:
            info = _sub(tx, "RmtInf")
            for text in entry.remittance:
                _sub(info, "Ustrd", text)
            if entry.structured:
                _sub(_sub(_sub(info, "Strd"), "CdtrRefInf"), "Ref", entry.structured)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _signed(minor: int) -> str:
    digits = f"{abs(minor):014d}"
    last = int(digits[-1])
    mark = ("{ABCDEFGHI" if minor >= 0 else "}JKLMNOPQR")[last]
    return digits[:-1] + mark


def cfonb(
    entries: list[Entry], *, bank: str = "30006", desk: str = "00001", account: str = "12345678901"
) -> bytes:
    """A CFONB 120 file: 01, a 04 (+ 05 payer name and label) per entry, 07."""

    def record(code: str, date: dt.date, body: str, amount: str = " " * 14, tail: str = "") -> str:
        line = (
            f"{code}{bank}    {desk}EUR2 {account}  {date:%d%m%y}{body[:50]:<50}{amount}{tail:<16}"
        )
        assert len(line) == 120, len(line)
        return line

    day = entries[0].booked_on if entries else dt.date(2026, 12, 1)
    lines = [record("01", day, "", _signed(0))]
    for number, entry in enumerate(entries, start=1):
        label = (entry.remittance[0] if entry.remittance else "VIR SEPA")[:31]
        middle = f"  {day:%d%m%y}{label:<31}  {number:07d}  "
        amount = _signed(entry.amount_minor if entry.credit else -entry.amount_minor)
        movement = f"04{bank}0100{desk}EUR2 {account}05{entry.booked_on:%d%m%y}{middle}"
        movement += amount + f"{entry.reference[:16]:<16}"
        assert len(movement) == 120, len(movement)
        lines.append(movement)
        if entry.name:
            complement = f"05{bank}0100{desk}EUR2 {account}05{' ' * 11}NPY{entry.name[:70]:<70}  "
            assert len(complement) == 120, len(complement)
            lines.append(complement)
        for extra in entry.remittance[1:]:
            complement = f"05{bank}0100{desk}EUR2 {account}05{' ' * 11}LIB{extra[:70]:<70}  "
            lines.append(complement)
    lines.append(record("07", day, "", _signed(0)))
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def csv_statement(
    entries: list[Entry], header: str = "Date;Montant;Libellé;Nom;IBAN;Référence"
) -> bytes:
    rows = [header]
    for entry in entries:
        minor = entry.amount_minor if entry.credit else -entry.amount_minor
        amount = f"{'-' if minor < 0 else ''}{abs(minor) // 100},{abs(minor) % 100:02d}"
        text = " ".join(entry.remittance + ((entry.structured,) if entry.structured else ()))
        rows.append(
            f"{entry.booked_on:%d/%m/%Y};{amount};{text};{entry.name};{entry.iban};{entry.reference}"
        )
    return ("\n".join(rows) + "\n").encode("utf-8")
