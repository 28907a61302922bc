"""Finding what a payer wrote: RF creditor references and invoice numbers, in the
structured reference and the remittance text of a bank line. Pure functions."""

from __future__ import annotations

import re
import unicodedata

from portal.payments.transfer import InvalidCreditorReference, parse_creditor_reference

_EXACT = re.compile(r"(?<![0-9A-Za-z])RF[0-9]{2}[0-9A-Z]{1,21}(?![0-9A-Za-z])")
_START = re.compile(r"RF[0-9]{2}")
_TOKEN = re.compile(r"[0-9A-Za-z][0-9A-Za-z/_.\-]*[0-9A-Za-z]")
_LEGAL_FORMS = frozenset({"sa", "sas", "sasu", "sarl", "eurl", "sci", "snc", "gmbh", "ltd", "inc"})


def _parsed(candidate: str) -> tuple[int, int] | None:
    try:
        return parse_creditor_reference(candidate)
    except InvalidCreditorReference:
        return None


def creditor_references(*texts: str) -> tuple[list[tuple[int, int]], bool]:
    """The portal's RF references in ``texts`` as ``(customer id, request id)``, and whether
    they were found as written (``True``) or only once spaces, case and line breaks were
    set aside (``False``)."""
    found: list[tuple[int, int]] = []
    for text in texts:
        for match in _EXACT.finditer(text):
            pair = _parsed(match.group())
            if pair is not None and pair not in found:
                found.append(pair)
    if found:
        return found, True
    for text in texts:
        compact = re.sub(r"\s+", "", text).upper()
        for start in _START.finditer(compact):
            # The longest prefix that is a valid reference: two check schemes make a
            # valid reference by chance next to impossible.
            for end in range(min(len(compact), start.start() + 25), start.start() + 4, -1):
                pair = _parsed(compact[start.start() : end])
                if pair is not None:
                    if pair not in found:
                        found.append(pair)
                    break
    return found, False


def invoice_tokens(*texts: str) -> set[str]:
    """Words that could be invoice numbers: with a digit, three characters or more."""
    tokens: set[str] = set()
    for text in texts:
        for match in _TOKEN.finditer(text):
            token = match.group()
            if len(token) >= 3 and any(ch.isdigit() for ch in token) and len(token) <= 64:
                tokens.add(token)
                tokens.add(token.upper())
    return tokens


def name_key(name: str) -> str:
    """``"Société Durand S.A.S."`` -> ``"societe durand"``: what two spellings share."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"\b([a-z])\.(?=[a-z]\.)", r"\1", text).replace(".", "")
    words = [w for w in re.split(r"[^0-9a-z]+", text) if w and w not in _LEGAL_FORMS]
    return " ".join(words)
