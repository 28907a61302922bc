"""Reading ISO 20022 cash-management messages (CAMT.053 statements, CAMT.054
notifications), versions .001.02 and .001.08, after validating them against the schema
(``schema.py``).

An entry becomes one line; a batch entry whose details list several transactions becomes
one line per transaction (its reference: the transaction's own bank reference, or the
entry's with ``/n``). Amounts are read as decimals and turned into minor units.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal, InvalidOperation

from lxml import etree

from portal.bank import schema
from portal.bank.errors import StatementError
from portal.bank.parsed import ParsedLine, ParsedStatement
from portal.i18n import N_
from portal.money import minor_digits

_PARSER_OPTIONS = {"resolve_entities": False, "no_network": True, "huge_tree": False}


def detect(data: bytes) -> tuple[str, str] | None:
    """``(message, version)`` of a CAMT document ("053", "001.08"), or None."""
    head = data[:4096]
    for message in schema.ROOTS:
        for version in schema.VERSIONS:
            if schema.namespace(message, version).encode() in head:
                return message, version
    return None


def parse(data: bytes, message: str) -> ParsedStatement:
    found = detect(data)
    if found is None or found[0] != message:
        raise StatementError(
            N_("This is not a camt.%(kind)s file in version 02 or 08."), kind=message
        )
    version = found[1]
    try:
        root = etree.fromstring(data, etree.XMLParser(**_PARSER_OPTIONS))
    except etree.XMLSyntaxError as error:
        raise StatementError(
            N_("The file is not well-formed XML (line %(line)d)."), line=error.lineno or 0
        ) from None
    checker = schema.schema(message, version)
    if not checker.validate(root):
        problem = checker.error_log.last_error
        raise StatementError(
            N_("The file does not follow the camt.%(kind)s schema (line %(line)d): %(reason)s"),
            kind=message,
            line=problem.line if problem else 0,
            reason=(problem.message if problem else "")[:300],
        )
    ns = {"c": schema.namespace(message, version)}
    container = schema.ROOTS[message][1]
    statements = root.findall(f"c:{schema.ROOTS[message][0]}/c:{container}", ns)
    accounts = {_text(s, "c:Acct/c:Id/c:IBAN", ns) for s in statements}
    if len(accounts) != 1 or "" in accounts:
        raise StatementError(N_("The file must hold the statement of one account, by IBAN."))
    first = statements[0]
    parsed = ParsedStatement(
        format=f"camt.{message}",
        account_iban=accounts.pop(),
        currency=_text(first, "c:Acct/c:Ccy", ns) or None,
        statement_id=_text(first, "c:Id", ns),
    )
    for statement in statements:
        for number, entry in enumerate(statement.iterfind("c:Ntry", ns), start=1):
            parsed.lines.extend(_entry_lines(entry, ns, parsed.statement_id, number))
    return parsed


def _text(node: etree._Element, path: str, ns: dict[str, str]) -> str:
    found = node.find(path, ns)
    return (found.text or "").strip() if found is not None else ""


def _amount(node: etree._Element) -> tuple[int, str]:
    currency = node.get("Ccy", "")
    try:
        value = Decimal((node.text or "").strip()).scaleb(minor_digits(currency))
    except (InvalidOperation, ValueError):
        raise StatementError(N_("An amount in the file cannot be read.")) from None
    if value != value.to_integral_value():
        raise StatementError(
            N_("An amount has more decimals than %(currency)s allows."), currency=currency
        )
    return int(value), currency


def _date(entry: etree._Element, ns: dict[str, str]) -> dt.date:
    for path in ("c:BookgDt/c:Dt", "c:BookgDt/c:DtTm", "c:ValDt/c:Dt", "c:ValDt/c:DtTm"):
        text = _text(entry, path, ns)
        if text:
            return dt.date.fromisoformat(text[:10])
    raise StatementError(N_("An entry has no booking date."))


def _entry_lines(
    entry: etree._Element, ns: dict[str, str], statement_id: str, number: int
) -> list[ParsedLine]:
    amount_node = entry.find("c:Amt", ns)
    assert amount_node is not None  # required by the schema
    amount, currency = _amount(amount_node)
    credit = _text(entry, "c:CdtDbtInd", ns) == "CRDT"
    booked_on = _date(entry, ns)
    reference = _text(entry, "c:AcctSvcrRef", ns) or _text(entry, "c:NtryRef", ns)
    transactions = entry.findall("c:NtryDtls/c:TxDtls", ns)
    if not reference:
        # No reference from the bank: the entry's content stands for it.
        digest = hashlib.sha256(etree.tostring(entry)).hexdigest()[:24]
        reference = f"{statement_id}:{number}:{digest}"
    if len(transactions) <= 1:
        tx = transactions[0] if transactions else None
        return [_line(reference, booked_on, amount, currency, credit, tx, ns)]
    lines = []
    for index, tx in enumerate(transactions, start=1):
        tx_amount_node = tx.find("c:Amt", ns)
        if tx_amount_node is None:  # version 02 keeps it in the amount details
            tx_amount_node = tx.find("c:AmtDtls/c:TxAmt/c:Amt", ns)
        if tx_amount_node is None:
            raise StatementError(N_("A batch entry lists transactions without their amounts."))
        tx_amount, tx_currency = _amount(tx_amount_node)
        own = _text(tx, "c:Refs/c:AcctSvcrRef", ns) or f"{reference}/{index}"
        lines.append(_line(own, booked_on, tx_amount, tx_currency, credit, tx, ns))
    return lines


def _line(
    reference: str,
    booked_on: dt.date,
    amount: int,
    currency: str,
    credit: bool,
    tx: etree._Element | None,
    ns: dict[str, str],
) -> ParsedLine:
    if tx is None:
        return ParsedLine(reference, booked_on, amount, currency, credit)
    name = _text(tx, "c:RltdPties/c:Dbtr/c:Nm", ns) or _text(
        tx, "c:RltdPties/c:Dbtr/c:Pty/c:Nm", ns
    )
    unstructured = [(u.text or "") for u in tx.iterfind("c:RmtInf/c:Ustrd", ns)]
    structured = _text(tx, "c:RmtInf/c:Strd/c:CdtrRefInf/c:Ref", ns)
    return ParsedLine(
        entry_reference=reference,
        booked_on=booked_on,
        amount_minor=amount,
        currency=currency,
        credit=credit,
        debtor_name=name,
        debtor_iban=_text(tx, "c:RltdPties/c:DbtrAcct/c:Id/c:IBAN", ns),
        remittance="\n".join(unstructured),
        structured_reference=structured,
        end_to_end_id=_text(tx, "c:Refs/c:EndToEndId", ns),
    )
