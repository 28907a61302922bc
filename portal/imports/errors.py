"""What can go wrong with an import file as a whole (a row's problems are rejections)."""

from __future__ import annotations

from typing import Any


class ImportFileError(Exception):
    """The file cannot be read at all. ``message`` is an English source string translated
    where it is shown (``portal.i18n``), with ``values`` for its placeholders."""

    def __init__(self, message: str, **values: Any) -> None:
        super().__init__(message % values if values else message)
        self.message = message
        self.values = values
