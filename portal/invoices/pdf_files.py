"""Invoice and credit note PDFs: checked by their first bytes, stored under a random name,
removed again if the transaction rolls back."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from portal.cases.attachments import CheckedFile, store
from portal.changes import FieldErrors
from portal.db import on_rollback
from portal.i18n import gettext_ as _
from portal.invoices.models import Invoice
from portal.timeline.models import Actor
from portal.timeline.service import record

# A PDF bigger than this is refused (the web layer refuses bigger uploads before reading).
PDF_MAX_BYTES = 10 * 1024 * 1024
PDF_DIRECTORY = "invoices"


class HasPdf(Protocol):
    id: int
    company_id: int
    customer_id: int
    number: str
    pdf_path: str | None


def check_pdf(data: bytes, max_bytes: int = PDF_MAX_BYTES) -> None:
    """Raise ``FieldErrors`` on ``pdf`` unless ``data`` is a PDF of at most ``max_bytes``."""
    if not data:
        raise FieldErrors({"pdf": _("Choose a PDF file.")})
    if len(data) > max_bytes:
        raise FieldErrors({"pdf": too_large_message(max_bytes)})
    if not data.startswith(b"%PDF-"):
        raise FieldErrors({"pdf": _("This file is not a PDF.")})


def too_large_message(max_bytes: int) -> str:
    return _("The file is too large (%(max)d MB at most).", max=max_bytes // 1_048_576)


def attach_pdf(
    session: Session,
    document: HasPdf,
    data: bytes,
    documents_dir: Path,
    actor: Actor = Actor.SYSTEM,
    actor_id: str | None = None,
    *,
    max_bytes: int = PDF_MAX_BYTES,
) -> str:
    """Store ``data`` as the PDF of an invoice or credit note; returns its stored path.

    Checked by its first bytes (``%PDF-``), never by a file name. Written under a random
    name in ``<documents_dir>/invoices/`` (mode 0600, never overwriting), and removed again
    if the transaction rolls back. The previous file stays on disk (history).
    """
    check_pdf(data, max_bytes)
    directory = documents_dir / PDF_DIRECTORY
    name = store(directory, CheckedFile(f"{document.number}.pdf", data, "application/pdf", ".pdf"))
    on_rollback(session, functools.partial((directory / name).unlink, missing_ok=True))
    before = document.pdf_path
    document.pdf_path = f"{PDF_DIRECTORY}/{name}"
    kind = "invoice" if isinstance(document, Invoice) else "credit_note"
    record(
        session,
        company_id=document.company_id,
        customer_id=document.customer_id,
        actor=actor,
        actor_id=actor_id,
        action=f"{kind}.pdf_attached",
        subject_type=kind,
        subject_id=document.id,
        details={
            "number": document.number,
            "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "changes": {"pdf_path": [before, document.pdf_path]},
        },
    )
    return document.pdf_path
