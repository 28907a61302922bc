"""The one error a bank statement import raises for bad input."""

from __future__ import annotations

from typing import Any


class StatementError(Exception):
    """A statement cannot be imported; ``message`` is an English source to translate with
    ``values`` (mark it with ``N_``). Nothing was written when this is raised."""

    def __init__(self, message: str, **values: Any) -> None:
        super().__init__(message % values if values else message)
        self.message = message
        self.values = values
