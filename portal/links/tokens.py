"""Signed portal link tokens: short enough for an SMS, verifiable without the database.

A token is ``<payload>.<timestamp>.<signature>`` made by itsdangerous'
TimestampSigner with a salt for this purpose. The payload is the customer id,
the customer's link version, and optionally a scope id and a lifetime in days
(when it differs from the configured one), in base 36 joined by ``-``, so the
URL after the host stays well under 60 characters.

A token is accepted only in the exact form it was minted: itsdangerous decodes the
signature leniently (unused low bits, ``=`` padding, ``+`` and ``/``, skipped characters),
so after it validates, the timestamp and signature must re-encode to what was given.
Otherwise one link would have many spellings, each opening the same session, which
defeats any record or block list of the links handed out.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

from itsdangerous import BadData, BadSignature, TimestampSigner
from itsdangerous.encoding import base64_decode, base64_encode

from portal import clock

SALT = "relance.portal-link"
MAX_LIFETIME_DAYS = 366
_PAYLOAD = re.compile(r"^[1-9a-z][0-9a-z]{0,11}(-(0|[1-9a-z][0-9a-z]{0,11})){1,3}$")
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class LinkClaims:
    customer_id: int
    link_version: int
    scope_id: int | None = None
    lifetime_days: int | None = None  # None: the configured lifetime


class LinkInvalid(Exception):
    """Not a token we signed (tampered, truncated, or signed with an unknown secret)."""


class LinkExpired(Exception):
    """Authentic but older than its lifetime."""

    def __init__(self, claims: LinkClaims) -> None:
        super().__init__("link expired")
        self.claims = claims


def _canonical(part: str) -> bool:
    """Whether ``part`` is the one base64 spelling of the bytes it decodes to."""
    try:
        again = base64_encode(base64_decode(part)).decode("ascii")
    except BadData:
        return False
    return hmac.compare_digest(again, part)


def _to_base36(number: int) -> str:
    if number < 0:
        raise ValueError("negative number")
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = _BASE36[rest] + digits
        if number == 0:
            return digits


def encode_claims(claims: LinkClaims) -> str:
    parts = [claims.customer_id, claims.link_version]
    if claims.scope_id is not None or claims.lifetime_days is not None:
        parts.append(claims.scope_id or 0)
    if claims.lifetime_days is not None:
        parts.append(claims.lifetime_days)
    return "-".join(_to_base36(p) for p in parts)


def decode_claims(payload: str) -> LinkClaims:
    if not _PAYLOAD.match(payload):
        raise LinkInvalid("malformed payload")
    numbers = [int(part, 36) for part in payload.split("-")]
    customer_id, version = numbers[0], numbers[1]
    scope = numbers[2] if len(numbers) > 2 else 0
    days = numbers[3] if len(numbers) > 3 else None
    if version < 1 or (days is not None and not 1 <= days <= MAX_LIFETIME_DAYS):
        raise LinkInvalid("malformed payload")
    return LinkClaims(customer_id, version, scope or None, days)


class _ClockTimestampSigner(TimestampSigner):
    """Timestamps from portal.clock, so a pinned clock signs and checks alike."""

    def get_timestamp(self) -> int:
        return int(clock.now().timestamp())


class LinkSigner:
    """Signs with the newest secret; accepts any listed secret, for rotation."""

    def __init__(self, secret_keys: Sequence[str], max_age_seconds: int) -> None:
        if not secret_keys:
            raise ValueError("at least one secret is needed")
        # itsdangerous signs with the last key of its list and verifies with all of them;
        # settings list the newest first.
        self._signer = _ClockTimestampSigner(list(reversed(secret_keys)), salt=SALT)
        self.max_age_seconds = max_age_seconds

    def sign(self, claims: LinkClaims) -> str:
        if claims.lifetime_days is not None and not 1 <= claims.lifetime_days <= MAX_LIFETIME_DAYS:
            raise ValueError(f"a link lives between 1 and {MAX_LIFETIME_DAYS} days")
        return self._signer.sign(encode_claims(claims)).decode("ascii")

    def verify(self, token: str) -> LinkClaims:
        if not token or len(token) > 100 or not token.isascii():
            raise LinkInvalid("not a token")
        try:
            payload, signed_at = self._signer.unsign(token, return_timestamp=True)
        except BadSignature:
            raise LinkInvalid("bad signature") from None
        parts = token.split(".")
        if len(parts) != 3 or not all(_canonical(part) for part in parts[1:]):
            raise LinkInvalid("not the token as it was signed")
        claims = decode_claims(payload.decode("ascii"))
        max_age = (
            claims.lifetime_days * 86400
            if claims.lifetime_days is not None
            else self.max_age_seconds
        )
        age = (clock.now() - signed_at.astimezone(dt.UTC)).total_seconds()
        if age < -300:  # signed in the future: not by us, whatever the clock skew
            raise LinkInvalid("timestamp in the future")
        if age > max_age:
            raise LinkExpired(claims)
        return claims
