"""How large a request body each route accepts (read by ``middleware.RequestBodyLimit``).

Forms get ``FORM_MAX_BYTES``; the routes that take files get what their files may add up
to; webhooks a small limit. A route that starts accepting files gets a line in
``ATTACHMENT_ROUTES`` (debtor attachments: the per-file size times the count) or in
``UPLOAD_ROUTES`` (back-office imports: ``PORTAL_IMPORT_MAX_BYTES``). Patterns are paths
where ``{name}`` stands for one path segment, and a final ``*`` for anything after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from portal.invoices.pdf_files import PDF_MAX_BYTES
from portal.settings import Settings

# Every form without files: names, messages, dates, a few hundred invoice ids.
FORM_MAX_BYTES = 64 * 1024
# Stripe's events are a few kilobytes; anything far larger is not one.
WEBHOOK_MAX_BYTES = 256 * 1024
# A multipart form's other fields and the parts' headers, on top of its files.
MULTIPART_OVERHEAD_BYTES = 64 * 1024

# The API's JSON bodies: a customer with its contacts, a payment over 200 invoices.
API_BODY_MAX_BYTES = 64 * 1024

WEBHOOK_ROUTES = ("/webhooks/*",)
API_ROUTES = ("/api/*",)
# Debtor forms with attachments (the dispute form, a message in a case's thread).
ATTACHMENT_ROUTES = ("/disputes", "/cases/{case_id}/messages")
# Back-office uploads: spreadsheet imports and e-invoices. The upload handler refuses a
# body over PORTAL_IMPORT_MAX_BYTES from its Content-Length (and one without it) before
# reading, with the size in its message; this limit is only the backstop behind it.
UPLOAD_ROUTES = ("/admin/imports*", "/admin/bank/import")
# The invoice forms, with their PDF: well above the handler's own check of the declared
# size (``web.forms.body_too_large``), so that a file somewhat too large gets the message
# next to the field; only a body far too large gets the plain 413 page.
INVOICE_PDF_ROUTES = (
    "/admin/customers/{customer_id}/invoices/new",
    "/admin/invoices/{invoice_id}/edit",
)
INVOICE_PDF_FORM_MAX_BYTES = 2 * PDF_MAX_BYTES
# The branding form, with its logo (branding.logo.MAX_BYTES): the handler refuses a logo
# too large next to its field; only a body far larger gets the plain 413 page.
BRANDING_ROUTES = ("/admin/branding",)
BRANDING_FORM_MAX_BYTES = 2 * 1024 * 1024


def route_pattern(path: str) -> re.Pattern[str]:
    """``/cases/{case_id}/messages`` -> a regular expression matching such paths."""
    prefix = path.endswith("*")
    parts = re.split(r"\{[a-z_]+\}", path.rstrip("*"))
    body = "[^/]+".join(re.escape(part) for part in parts)
    return re.compile(body + (".*" if prefix else ""))


@dataclass(frozen=True)
class BodyLimits:
    """The first matching pattern's limit, else ``default``."""

    default: int
    rules: tuple[tuple[re.Pattern[str], int], ...] = ()

    def add(self, paths: tuple[str, ...], limit: int) -> BodyLimits:
        added = tuple((route_pattern(path), limit) for path in paths)
        return BodyLimits(self.default, self.rules + added)

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.rules:
            if pattern.fullmatch(path):
                return limit
        return self.default


def attachments_limit(settings: Settings) -> int:
    cases = settings.cases
    return cases.attachment_max_bytes * cases.attachment_max_count + MULTIPART_OVERHEAD_BYTES


def body_limits(settings: Settings) -> BodyLimits:
    return (
        BodyLimits(FORM_MAX_BYTES)
        .add(WEBHOOK_ROUTES, WEBHOOK_MAX_BYTES)
        .add(API_ROUTES, API_BODY_MAX_BYTES)
        .add(ATTACHMENT_ROUTES, attachments_limit(settings))
        .add(UPLOAD_ROUTES, 2 * settings.import_max_bytes)
        .add(INVOICE_PDF_ROUTES, INVOICE_PDF_FORM_MAX_BYTES)
        .add(BRANDING_ROUTES, BRANDING_FORM_MAX_BYTES)
    )
