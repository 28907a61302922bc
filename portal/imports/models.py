from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

import portal.users.models  # noqa: F401 - imports.created_by_user_id refers to users
from portal.db import Base, BigId, UTCDateTime, enum_column


class ImportStatus(enum.StrEnum):
    ANALYSING = "analysing"  # the file is being read and compared, nothing written
    NEEDS_MAPPING = "needs_mapping"  # some required columns were not recognised
    READY = "ready"  # the preview is ready: waiting for confirmation
    QUEUED = "queued"  # confirmed: waiting for a thread or the worker to apply it
    APPLYING = "applying"
    DONE = "done"
    FAILED = "failed"  # the file could not be read, or applying stopped on an error
    CANCELLED = "cancelled"


# Statuses in which a background thread or the worker is busy with the import.
RUNNING = (ImportStatus.ANALYSING, ImportStatus.QUEUED, ImportStatus.APPLYING)


class Import(Base):
    """One file imported (or being imported): who, when, what it did; the original file is
    kept under ``stored_path`` for audit until the retention period removes it."""

    __tablename__ = "imports"
    __table_args__ = (Index("ix_imports_company_created", "company_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    # None until known: guessed from the headers when not given.
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status: Mapped[ImportStatus] = mapped_column(enum_column(ImportStatus))
    filename: Mapped[str] = mapped_column(String(255))
    # Relative to the imports directory; None once the retention period removed the file.
    stored_path: Mapped[str | None] = mapped_column(String(255), nullable=True)
    file_size: Mapped[int] = mapped_column(BigInteger)
    file_sha256: Mapped[str] = mapped_column(String(64))
    file_format: Mapped[str] = mapped_column(String(8), default="")
    header_signature: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # Column index (as text) -> field name, the mapping this import reads the file with.
    columns: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Mark open invoices the file no longer lists as settled outside Relance.
    settle_missing: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # Who, as shown in the history: a user's email, or "command line".
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    confirmed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Rows in the file (known after the analysis) and rows handled so far (progress).
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    # {"new": n, "changed": n, "unchanged": n, "rejected": n, "settled": n, ...}
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    # The first rows as they will be read: [{"line": n, "values": {field: text}}].
    sample: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Rejected rows and rows flagged for review: [{"line", "message", "values"}] (bounded).
    rejections: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # What stopped the import, if anything: {"message": ..., "values": {...}}.
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ImportMapping(Base):
    """The columns a credit manager mapped for files of one shape (their headers)."""

    __tablename__ = "import_mappings"
    __table_args__ = (UniqueConstraint("company_id", "signature"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    signature: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    # Header text -> field name.
    columns: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    updated_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    uses: Mapped[int] = mapped_column(Integer, default=0)
