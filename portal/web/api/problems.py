"""Errors as RFC 9457 ``application/problem+json``, one entry per invalid field, in the
language of the request (``Accept-Language``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from starlette.responses import Response

from portal.api.schemas import FieldProblem, Problem
from portal.i18n import gettext_ as _

PROBLEM_TYPE = "https://relance.invalid/problems/"
MEDIA_TYPE = "application/problem+json"


def problem(
    status: int,
    kind: str,
    title: str,
    detail: str | None = None,
    errors: Iterable[FieldProblem] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = Problem(
        type=PROBLEM_TYPE + kind, title=title, status=status, detail=detail, errors=list(errors)
    )
    return Response(
        body.model_dump_json(exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return _("This field is required.")
    if kind == "string_too_short":
        return (
            _("Enter a value.")
            if ctx.get("min_length") == 1
            else _("Enter at least %(min)d characters.", min=ctx.get("min_length", 0))
        )
    if kind == "string_too_long":
        return _("Keep it to %(max)d characters at most.", max=ctx.get("max_length", 0))
    if kind in ("too_long",):
        return _("Give at most %(max)d items.", max=ctx.get("max_length", 0))
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return _("Enter a whole number.")
    if kind in ("greater_than_equal", "greater_than"):
        return _("Enter a number of at least %(min)s.", min=ctx.get("ge", ctx.get("gt", "")))
    if kind in ("less_than_equal", "less_than"):
        return _("Enter a number of at most %(max)s.", max=ctx.get("le", ctx.get("lt", "")))
    if kind.startswith("date_") and not kind.startswith("datetime"):
        return _("Enter a date as YYYY-MM-DD.")
    if kind.startswith("datetime") or kind.startswith("timezone"):
        return _("Enter a date and time such as 2026-12-01T08:00:00Z.")
    if kind in ("literal_error", "enum"):
        return _("Choose one of: %(values)s.", values=ctx.get("expected", ""))
    if kind in ("bool_parsing", "bool_type"):
        return _("Enter true or false.")
    if kind == "extra_forbidden":
        return _("This field is not known.")
    if kind == "list_type":
        return _("Enter a list.")
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return _("Enter an object.")
    if kind in ("string_type", "string_unicode"):
        return _("Enter text.")
    return _("This value is not valid.")


def _pointer(location: Iterable[Any]) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in location]
    return "#/" + "/".join(parts)


def body_errors(error: ValidationError) -> list[FieldProblem]:
    return [FieldProblem(detail=_message(e), pointer=_pointer(e["loc"])) for e in error.errors()]


def parameter_errors(error: ValidationError) -> list[FieldProblem]:
    return [
        FieldProblem(detail=_message(e), parameter=str(e["loc"][0]) if e["loc"] else None)
        for e in error.errors()
    ]


def invalid(errors: Iterable[FieldProblem]) -> Response:
    return problem(
        422, "validation", _("The request is not valid."), _("See each field's error."), errors
    )


def field_errors(errors: Mapping[str, str], fields: Mapping[str, str] | None = None) -> Response:
    """A domain ``FieldErrors`` (already translated); ``fields`` renames the service's field
    names to the body's (``amount`` -> ``amount_minor``)."""
    names = fields or {}
    return invalid(
        FieldProblem(detail=message, pointer="#/" + names.get(name, name))
        for name, message in errors.items()
    )


def not_found() -> Response:
    return problem(404, "not-found", _("Not found."), _("Nothing exists at this address."))


def conflict(detail: str) -> Response:
    return problem(409, "conflict", _("This cannot be done now."), detail)
