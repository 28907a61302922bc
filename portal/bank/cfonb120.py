"""CFONB 120: the French banks' fixed-width statement ("relevé de compte 120 caractères").

Records of 120 characters, one per line: ``01`` opening balance, ``04`` a movement, ``05``
a complement of the movement before it (``LIB`` more label, ``NPY`` the payer's name,
``RCN`` the payer's reference), ``07`` closing balance. Amounts have 14 characters, the
last one carrying the sign and the last digit (``{``/``A``-``I`` positive, ``}``/``J``-``R``
negative); the decimals count is in column 20. The account is the French RIB (bank code,
desk code, account number), compared with the configured IBAN.
"""

from __future__ import annotations

import datetime as dt

from portal.bank.errors import StatementError
from portal.bank.parsed import ParsedLine, ParsedStatement
from portal.i18n import N_

RECORD = 120
_POSITIVE = {"{": 0, **{chr(ord("A") + i): i + 1 for i in range(9)}}
_NEGATIVE = {"}": 0, **{chr(ord("J") + i): i + 1 for i in range(9)}}


def signed_amount(field: str, decimals: int) -> int:
    """``"0000000012345{"`` -> 123450 minor units at 2 decimals... scaled to the currency."""
    body, last = field[:-1], field[-1]
    if last in _POSITIVE:
        sign, digit = 1, _POSITIVE[last]
    elif last in _NEGATIVE:
        sign, digit = -1, _NEGATIVE[last]
    elif last.isdigit():
        sign, digit = 1, int(last)
    else:
        raise ValueError(field)
    if not body.isdigit():
        raise ValueError(field)
    return sign * (int(body) * 10 + digit)


def _date(text: str) -> dt.date:
    return dt.date(2000 + int(text[4:6]), int(text[2:4]), int(text[0:2]))


def _records(data: bytes) -> list[tuple[int, str]]:
    try:
        text = data.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise StatementError(N_("The file is not a CFONB 120 statement.")) from None
    rows = []
    for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not raw.strip():
            continue
        if len(raw) != RECORD or raw[:2] not in ("01", "04", "05", "07"):
            raise StatementError(
                N_("Line %(line)d is not a CFONB 120 record of 120 characters."), line=number
            )
        rows.append((number, raw))
    if not rows:
        raise StatementError(N_("The file is empty."))
    return rows


def parse(data: bytes, account_iban: str) -> ParsedStatement:
    """The movements of the file; ``account_iban``: the company's, to name the account."""
    rows = _records(data)
    accounts = {(raw[2:7], raw[11:16], raw[21:32]) for _n, raw in rows}
    if len(accounts) != 1:
        raise StatementError(N_("The file must hold the statement of one account."))
    bank, desk, number = accounts.pop()
    compact = account_iban.replace(" ", "").upper()
    if not (
        compact.startswith("FR")
        and compact[4:9] == bank
        and compact[9:14] == desk
        and compact[14:25] == number
    ):
        raise StatementError(
            N_("This statement is for account %(account)s, not the company's account."),
            account=f"{bank} {desk} {number}",
        )
    currencies = {raw[16:19] for _n, raw in rows}
    parsed = ParsedStatement(
        format="cfonb120",
        account_iban=compact,
        currency=currencies.pop() if len(currencies) == 1 else None,
        statement_id="",
    )
    pending: dict[str, str] | None = None

    def flush() -> None:
        if pending is not None:
            parsed.lines.append(_movement(pending))

    for line_number, raw in rows:
        kind = raw[:2]
        try:
            if kind == "01" and not parsed.statement_id:
                parsed.statement_id = f"{bank}{desk}{number}:{_date(raw[34:40]).isoformat()}"
            elif kind == "04":
                flush()
                decimals = int(raw[19])
                pending = {
                    "currency": raw[16:19],
                    "booked": _date(raw[34:40]).isoformat(),
                    "label": raw[48:79].strip(),
                    "entry": raw[81:88].strip(),
                    "amount": str(signed_amount(raw[90:104], decimals)),
                    "decimals": str(decimals),
                    "reference": raw[104:120].strip(),
                    "name": "",
                    "extra": "",
                }
            elif kind == "05":
                if pending is None:
                    raise StatementError(
                        N_("Line %(line)d completes no movement."), line=line_number
                    )
                qualifier, info = raw[45:48], raw[48:118].strip()
                if qualifier == "NPY":
                    pending["name"] = info
                else:
                    pending["extra"] = "\n".join(filter(None, [pending["extra"], info]))
        except ValueError:
            raise StatementError(
                N_("Line %(line)d has a date or an amount that cannot be read."),
                line=line_number,
            ) from None
    flush()
    return parsed


def _movement(values: dict[str, str]) -> ParsedLine:
    from portal.money import minor_digits

    amount = int(values["amount"])
    shift = minor_digits(values["currency"]) - int(values["decimals"])
    scaled = amount * 10**shift if shift >= 0 else amount // 10**-shift
    booked = dt.date.fromisoformat(values["booked"])
    return ParsedLine(
        entry_reference=f"{booked.isoformat()}:{values['entry']}:{values['reference']}",
        booked_on=booked,
        amount_minor=abs(scaled),
        currency=values["currency"],
        credit=scaled > 0,
        debtor_name=values["name"],
        remittance="\n".join(filter(None, [values["label"], values["extra"]])),
        structured_reference=values["reference"],
    )
