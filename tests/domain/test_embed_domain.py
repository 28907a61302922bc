"""The widget's pure parts: host origins, hand-over tokens, WCAG contrast, logo checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.branding import colours
from portal.branding.logo import LogoRefused, check_logo
from portal.embed.handoff import HandoffSigner
from portal.embed.origins import BadOrigin, normalise_origin


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("https://www.Example.com", "https://www.example.com"),
        ("https://www.example.com/", "https://www.example.com"),
        ("https://www.example.com:443", "https://www.example.com"),
        ("https://shop.example.com:8443", "https://shop.example.com:8443"),
        ("http://localhost:5000", "http://localhost:5000"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_origins_are_written_as_browsers_send_them(typed: str, expected: str) -> None:
    assert normalise_origin(typed, allow_http=True) == expected


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("http://www.example.com", "https"),
        ("https://*.example.com", "shape"),
        ("https://www.example.com/pay", "shape"),
        ("https://user@www.example.com", "shape"),
        ("https://www.example.com?x=1", "shape"),
        ("javascript:alert(1)", "shape"),
        ("'self'", "shape"),
        ("https://a.example https://b.example", "shape"),
        ("", "shape"),
    ],
)
def test_anything_else_is_refused(typed: str, reason: str) -> None:
    with pytest.raises(BadOrigin) as refused:
        normalise_origin(typed, allow_http=True)
    assert refused.value.reason == reason


def test_plain_http_on_loopback_only_in_development() -> None:
    with pytest.raises(BadOrigin):
        normalise_origin("http://localhost:5000", allow_http=False)


def test_hand_over_tokens_are_signed_and_rotate() -> None:
    old = HandoffSigner(["old-secret-0123456789"])
    token = old.issue("a" * 64, "https://www.example.com")
    rotated = HandoffSigner(["new-secret-0123456789", "old-secret-0123456789"])
    handoff = rotated.read(token)
    assert handoff is not None
    assert handoff.session_id == "a" * 64
    assert handoff.host == "https://www.example.com"
    assert HandoffSigner(["someone-else-0123456789"]).read(token) is None
    assert rotated.read(token[:-2] + ("AA" if token[-2:] != "AA" else "BB")) is None
    assert rotated.read("") is None


def test_wcag_contrast_matches_the_reference_values() -> None:
    assert colours.contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert colours.contrast("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert colours.contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert colours.check_accent("#767676") is None  # the lightest grey passing AA on white
    failure = colours.check_accent("#777777")
    assert failure is not None
    assert failure.ratio == pytest.approx(4.48, abs=0.01)
    # The main colour is also text on the portal's light grey backgrounds.
    assert colours.check_main("#767676") is not None
    assert colours.check_main("#1f4e79") is None  # the default passes


@given(
    st.from_regex(r"#[0-9a-f]{6}", fullmatch=True), st.from_regex(r"#[0-9a-f]{6}", fullmatch=True)
)
def test_contrast_is_symmetric_and_bounded(a: str, b: str) -> None:
    ratio = colours.contrast(a, b)
    assert ratio == pytest.approx(colours.contrast(b, a))
    assert 1.0 <= ratio <= 21.0 + 1e-9


def test_logo_types_are_read_from_the_bytes_not_the_name() -> None:
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0h1"/></svg>'
    assert check_logo(svg) == "image/svg+xml"
    with pytest.raises(LogoRefused) as refused:
        check_logo(b"<html><script>alert(1)</script></html>")
    assert refused.value.reason == "type"
    with pytest.raises(LogoRefused) as refused:
        check_logo(b"")
    assert refused.value.reason == "size"
