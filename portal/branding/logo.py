"""Logo uploads: a PNG that Pillow reads, or an SVG that passes a strict allow-list.

An SVG is refused, not cleaned, when it holds anything beyond plain shapes, paths, text
and gradients: scripts, event attributes, ``foreignObject``, external references,
``<style>`` or ``style`` attributes, a DOCTYPE (entities): lxml parses it with
entities, network and DTDs off, the same hardened parser as the e-invoice imports.
The ``/logo`` response adds its own CSP and ``nosniff`` as a second wall.
"""

from __future__ import annotations

import io
import re

from lxml import etree
from PIL import Image, UnidentifiedImageError

from portal.xmlsafe import hardened_parser

MAX_BYTES = 512 * 1024
MAX_PIXELS = 4096 * 4096
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
SVG_ELEMENTS = frozenset(
    {
        "svg", "g", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon",
        "text", "tspan", "title", "desc", "defs", "linearGradient", "radialGradient",
        "stop", "use", "clipPath", "mask", "symbol",
    }
)  # fmt: skip
SVG_ATTRIBUTES = frozenset(
    {
        "id", "class", "viewBox", "width", "height", "x", "y", "x1", "y1", "x2", "y2",
        "cx", "cy", "r", "rx", "ry", "d", "points", "fill", "fill-opacity", "fill-rule",
        "stroke", "stroke-width", "stroke-linecap", "stroke-linejoin", "stroke-opacity",
        "opacity", "transform", "offset", "stop-color", "stop-opacity", "gradientUnits",
        "gradientTransform", "font-family", "font-size", "font-weight", "text-anchor",
        "preserveAspectRatio", "clip-path", "clip-rule", "mask", "version", "role",
        "aria-label", "aria-hidden", "href", "dominant-baseline", "letter-spacing",
        "stroke-miterlimit", "fx", "fy", "spreadMethod",
    }
)  # fmt: skip
URL_REFERENCE = re.compile(r"url\(\s*(?!['\"]?#)", re.IGNORECASE)


class LogoRefused(ValueError):
    """``reason``: "size", "type", "png" or "svg"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_logo(data: bytes) -> str:
    """The logo's media type if it may be shown; raises LogoRefused."""
    if not data or len(data) > MAX_BYTES:
        raise LogoRefused("size")
    if data.startswith(PNG_MAGIC):
        _check_png(data)
        return "image/png"
    head = data[:512].lstrip().lower()
    if head.startswith(b"<?xml") or head.startswith(b"<svg") or b"<svg" in head:
        _check_svg(data)
        return "image/svg+xml"
    raise LogoRefused("type")


def _check_png(data: bytes) -> None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or image.width * image.height > MAX_PIXELS:
                raise LogoRefused("png")
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        raise LogoRefused("png") from None


def _check_svg(data: bytes) -> None:
    try:
        root = etree.fromstring(data, hardened_parser())
    except (etree.XMLSyntaxError, ValueError):
        raise LogoRefused("svg") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise LogoRefused("svg")
    if root.tag != f"{SVG_NS}svg":
        raise LogoRefused("svg")
    for element in root.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        if not tag.startswith(SVG_NS) or tag[len(SVG_NS) :] not in SVG_ELEMENTS:
            raise LogoRefused("svg")
        for name, value in element.attrib.items():
            if name == XLINK_HREF or name == "href":
                if not value.startswith("#"):
                    raise LogoRefused("svg")
                continue
            if name.startswith("{") or name not in SVG_ATTRIBUTES:
                raise LogoRefused("svg")
            if URL_REFERENCE.search(value) or "javascript:" in value.lower():
                raise LogoRefused("svg")
