"""GSM 03.38 (7-bit) text for SMS: what fits in one 160-character message."""

from __future__ import annotations

import unicodedata

SMS_LIMIT = 160
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXTENDED = "^{}\\[~]|€\f"
BASIC = frozenset(_BASIC)
EXTENDED = frozenset(_EXTENDED)
_SPACES = {"\u00a0": " ", "\u202f": " ", "\u2009": " ", "’": "'", "–": "-", "—": "-"}


def to_gsm7(text: str) -> str:
    """Replace what GSM-7 cannot carry: odd spaces, then accents (ê -> e), else ``?``."""
    out = []
    for char in text:
        char = _SPACES.get(char, char)
        if char in BASIC or char in EXTENDED:
            out.append(char)
            continue
        plain = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        out.append(plain if plain and all(c in BASIC for c in plain) else "?")
    return "".join(out)


def gsm7_length(text: str) -> int:
    """Septets used; raises ValueError on a character outside GSM-7."""
    length = 0
    for char in text:
        if char in BASIC:
            length += 1
        elif char in EXTENDED:
            length += 2
        else:
            raise ValueError(f"{char!r} is not a GSM-7 character")
    return length
