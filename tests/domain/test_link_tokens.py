"""Link tokens: short, scoped, expiring, rotatable, and never forgeable."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import TimestampSigner

from portal import clock
from portal.links.tokens import (
    SALT,
    LinkClaims,
    LinkExpired,
    LinkInvalid,
    LinkSigner,
    decode_claims,
    encode_claims,
)

SECRET = "s" * 48
DAY = 86400
signer = LinkSigner([SECRET], 45 * DAY)
# Ids up to 36**6 (two billion) stay within the SMS budget.
ids = st.integers(min_value=1, max_value=36**6 - 1)
claims_strategy = st.builds(
    LinkClaims,
    customer_id=ids,
    link_version=st.integers(min_value=1, max_value=10_000),
    scope_id=st.one_of(st.none(), ids),
    lifetime_days=st.one_of(st.none(), st.integers(min_value=1, max_value=366)),
)


@given(claims_strategy)
def test_claims_round_trip(claims: LinkClaims) -> None:
    assert decode_claims(encode_claims(claims)) == claims
    assert signer.verify(signer.sign(claims)) == claims


@given(claims_strategy)
def test_url_after_the_host_fits_an_sms(claims: LinkClaims) -> None:
    assert len("/l/" + signer.sign(claims)) <= 60


@settings(max_examples=300)
@given(claims_strategy, st.data())
def test_no_mutated_token_is_accepted(claims: LinkClaims, data: st.DataObject) -> None:
    token = signer.sign(claims)
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(
        st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    )
    mutated = token[:position] + replacement + token[position + 1 :]
    if mutated == token:
        return
    # Not even another base64 spelling of the very same signature opens anything.
    with pytest.raises(LinkInvalid):
        signer.verify(mutated)


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def spellings(token: str) -> list[str]:
    """Other base64 spellings of the token's timestamp and signature that decode to the
    same bytes (or that base64 decoders commonly accept): unused low bits set, padding,
    the standard alphabet's ``+`` and ``/``, characters a lenient decoder skips."""
    payload, stamp, signature = token.split(".")
    variants = []
    for index, part in ((1, stamp), (2, signature)):
        unused = {2: 4, 3: 2}.get(len(part) % 4, 0)  # 6 chars: 4 bits; 27 chars: 2 bits
        spelled = []
        for flip in range(1, 2**unused):
            last = _B64[_B64.index(part[-1]) ^ flip]
            spelled.append(part[:-1] + last)
        spelled += [part + "=", part + "==", part.replace("-", "+").replace("_", "/")]
        spelled += [part[:1] + "!" + part[1:], part + "*"]
        for other in spelled:
            if other != part:
                parts = [payload, stamp, signature]
                parts[index] = other
                variants.append(".".join(parts))
    return variants


def test_other_spellings_of_a_genuine_token_are_refused() -> None:
    claims = LinkClaims(42, 3)
    token = signer.sign(claims)
    assert signer.verify(token) == claims
    variants = spellings(token)
    assert len(variants) >= 10
    for variant in variants:
        with pytest.raises(LinkInvalid):
            signer.verify(variant)


@settings(max_examples=200)
@given(claims_strategy)
def test_a_token_is_accepted_only_as_it_was_minted(claims: LinkClaims) -> None:
    token = signer.sign(claims)
    assert signer.verify(token) == claims
    for variant in spellings(token):
        with pytest.raises(LinkInvalid):
            signer.verify(variant)


@given(claims_strategy, claims_strategy)
def test_payload_swapped_between_tokens_is_refused(a: LinkClaims, b: LinkClaims) -> None:
    if encode_claims(a) == encode_claims(b):
        return
    token_a, token_b = signer.sign(a), signer.sign(b)
    forged = encode_claims(b) + token_a[token_a.index(".") :]
    assert forged != token_b
    with pytest.raises(LinkInvalid):
        signer.verify(forged)


@given(claims_strategy, st.text(min_size=1, max_size=60))
def test_token_signed_with_another_secret_or_salt_is_refused(
    claims: LinkClaims, other: str
) -> None:
    if other == SECRET:
        return
    resigned = LinkSigner([other], 45 * DAY).sign(claims)
    with pytest.raises(LinkInvalid):
        signer.verify(resigned)
    other_purpose = (
        TimestampSigner(SECRET, salt=SALT + ".other").sign(encode_claims(claims)).decode()
    )
    with pytest.raises(LinkInvalid):
        signer.verify(other_purpose)


@given(st.text(max_size=120))
def test_arbitrary_text_is_refused(text: str) -> None:
    with pytest.raises(LinkInvalid):
        signer.verify(text)


def test_expiry_follows_the_configured_lifetime_or_the_links_own() -> None:
    start = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    clock.freeze(start)
    default_token = signer.sign(LinkClaims(7, 1))
    short_token = signer.sign(LinkClaims(7, 1, None, 2))
    clock.freeze(start + dt.timedelta(days=3))
    assert signer.verify(default_token).customer_id == 7
    with pytest.raises(LinkExpired) as expired:
        signer.verify(short_token)
    assert expired.value.claims.customer_id == 7
    clock.freeze(start + dt.timedelta(days=45, seconds=1))
    with pytest.raises(LinkExpired):
        signer.verify(default_token)


def test_token_from_the_future_is_refused() -> None:
    clock.freeze(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    token = signer.sign(LinkClaims(1, 1))
    clock.freeze(dt.datetime(2029, 12, 31, tzinfo=dt.UTC))
    with pytest.raises(LinkInvalid):
        signer.verify(token)


def test_rotation_keeps_live_links_working() -> None:
    old = LinkSigner(["old-secret" * 5], 45 * DAY)
    token = old.sign(LinkClaims(3, 2))
    rotated = LinkSigner(["new-secret" * 5, "old-secret" * 5], 45 * DAY)
    assert rotated.verify(token) == LinkClaims(3, 2)
    fresh = rotated.sign(LinkClaims(3, 2))
    assert LinkSigner(["new-secret" * 5], 45 * DAY).verify(fresh) == LinkClaims(3, 2)
    with pytest.raises(LinkInvalid):
        old.verify(fresh)
    with pytest.raises(LinkInvalid):
        LinkSigner(["new-secret" * 5], 45 * DAY).verify(token)


@pytest.mark.parametrize(
    "payload", ["0-1", "1-0", "01-1", "1", "1-1-1-1-1", "1-1-0-0", "1-1-0-zzz", "A-1"]
)
def test_malformed_payloads_are_refused(payload: str) -> None:
    with pytest.raises(LinkInvalid):
        decode_claims(payload)
