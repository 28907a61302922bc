"""WCAG 2.x contrast: a brand colour is refused when text on it, or it on the portal's
light backgrounds, would fall below AA for body text (4.5:1)."""

from __future__ import annotations

import re
from dataclasses import dataclass

HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
AA_BODY_TEXT = 4.5
WHITE = "#ffffff"
# Where the main colour is text: cards (white), the page, notices (portal.css).
LIGHT_BACKGROUNDS = ("#ffffff", "#f3f5f8", "#eef3fa")


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else float(((c + 0.055) / 1.055) ** 2.4)


def luminance(colour: str) -> float:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@dataclass(frozen=True)
class ContrastFailure:
    """``colour`` against ``against`` reaches only ``ratio`` (below ``AA_BODY_TEXT``)."""

    colour: str
    against: str
    ratio: float


def check_main(colour: str) -> ContrastFailure | None:
    """The main colour carries white text (header, tabs) and is the links' colour."""
    worst = min((WHITE, *LIGHT_BACKGROUNDS), key=lambda bg: contrast(colour, bg))
    ratio = contrast(colour, worst)
    return ContrastFailure(colour, worst, ratio) if ratio < AA_BODY_TEXT else None


def check_accent(colour: str) -> ContrastFailure | None:
    """The accent colour is the buttons' background, under white text."""
    ratio = contrast(colour, WHITE)
    return ContrastFailure(colour, WHITE, ratio) if ratio < AA_BODY_TEXT else None
