"""The company's look on its PDF documents, apart from the PDF code itself.

Kept out of portal.invoices.documents so that the pages and the branding settings can
name it without loading fpdf2 (about 25 MB) in a process that never draws a PDF.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PdfBrand:
    """The company's look on its documents (``branding.service.Look.pdf_brand``): the
    main colour for the company's name, the logo, and legal mentions in the page footer."""

    colour: str = ""
    logo: bytes | None = None
    logo_type: str = ""
    legal: str = ""
