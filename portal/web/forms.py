"""Reading back-office forms: plain values out of a posted form, the raw text kept for
showing it again, and the messages of what could not be read, by field name.

The domain services check the values (``portal.changes.FieldErrors``); this module only
turns text into dates, amounts and numbers, and says so next to the field when it cannot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from portal.i18n import gettext_ as _
from portal.money import parse_amount

FIELD_MAX = 500


class Form:
    """A posted form. ``values`` is what to show again, ``errors`` what could not be read."""

    def __init__(self, data: FormData | Mapping[str, Any] | None = None) -> None:
        self._data = data
        self.values: dict[str, str] = {}
        self.errors: dict[str, str] = {}

    def _raw(self, name: str) -> Any:
        if self._data is None:
            return None
        return self._data.get(name)

    def text(self, name: str, limit: int = FIELD_MAX) -> str:
        value = self._raw(name)
        text = value[:limit] if isinstance(value, str) else ""
        self.values[name] = text
        return text

    def optional(self, name: str, limit: int = FIELD_MAX) -> str | None:
        return self.text(name, limit).strip() or None

    def flag(self, name: str) -> bool:
        checked = self._raw(name) is not None
        self.values[name] = "1" if checked else ""
        return checked

    def integer(self, name: str) -> int | None:
        text = self.text(name, 20).strip()
        return int(text) if text.isdigit() else None

    def integers(self, name: str) -> list[int]:
        if not isinstance(self._data, FormData):
            return []
        raw = [v for v in self._data.getlist(name) if isinstance(v, str)]
        self.values[name] = ",".join(raw)
        return sorted({int(v) for v in raw[:500] if v.strip().isdigit()})

    def date(self, name: str) -> dt.date | None:
        text = self.text(name, 32).strip()
        if not text:
            return None
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            self.errors[name] = _("Enter a date such as 2026-03-31.")
            return None

    def amount(self, name: str, currency: str) -> int | None:
        text = self.text(name, 32).strip()
        if not text:
            return None
        try:
            return parse_amount(text, currency or "EUR")
        except ValueError:
            self.errors[name] = _("Enter an amount such as 1 234,56.")
            return None

    def with_errors(self, errors: Mapping[str, str]) -> dict[str, str]:
        """What the form could not read, then what the service refused (first one wins)."""
        return {**errors, **self.errors}


async def read_form(
    request: Request, *, file_field: str | None = None, max_bytes: int = 0, max_fields: int = 80
) -> tuple[FormData, bytes | None]:
    """The posted form and, with ``file_field``, the file's first ``max_bytes + 1`` bytes
    (None when no file was chosen): one byte past the limit is enough to refuse it."""
    form = await request.form(
        max_files=1 if file_field else 0, max_fields=max_fields, max_part_size=64 * 1024
    )
    data = None
    upload = form.get(file_field) if file_field else None
    if isinstance(upload, UploadFile) and (upload.filename or upload.size):
        data = await upload.read(max_bytes + 1)
    return form, data


def body_too_large(request: Request, max_bytes: int) -> bool:
    """The declared body is bigger than a file of ``max_bytes`` and its form could be."""
    declared = request.headers.get("content-length", "")
    return declared.isdigit() and int(declared) > max_bytes + 256 * 1024
