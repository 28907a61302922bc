"""``/api/v1/openapi.json`` (OpenAPI 3.1) from the operations' own pydantic models, and a
readable page of it at ``/api/v1/docs``. Nothing here is written by hand twice: the schemas
are those that validate the requests and shape the answers."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portal.api.schemas import Problem
from portal.web.api.framework import OPERATIONS, PREFIX, Operation
from portal.web.api.problems import MEDIA_TYPE
from portal.web.context import choose_language, use_language
from portal.web.rendering import render

REF = "#/components/schemas/{model}"


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": {"$ref": REF.format(model="Problem")}}},
    }
    if headers:
        answer["headers"] = headers
    return answer


def _responses(op: Operation) -> dict[str, Any]:
    status, model = op.ok
    ok = {
        "description": "OK",
        "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
    }
    responses: dict[str, Any] = {str(status): ok}
    for other in op.also:
        responses[str(other)] = {**ok, "description": "Created" if other == 201 else "OK"}
    responses["401"] = _problem("No valid API key")
    responses["429"] = _problem(
        "Too many requests for this key",
        {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}},
    )
    if op.query is not None or op.body is not None or op.write:
        responses["422"] = _problem("Invalid fields: one entry per field")
    if op.path_params or op.write or op.names_in_query:
        responses["404"] = _problem("Not found")
    if op.write:
        responses["403"] = _problem("The key may only read")
        responses["409"] = _problem("Not possible in the current state")
    if op.body is not None:
        responses["400"] = _problem("The body is not JSON")
        responses["415"] = _problem("The body is not application/json")
    return responses


def _parameters(op: Operation, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 10**15},
        }
        for name in op.path_params
    ]
    if op.query is not None:
        schema = schemas[op.query.__name__]
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in schema.get("required", []),
                    "schema": {k: v for k, v in prop.items() if k != "title"},
                    **({"description": prop["description"]} if "description" in prop else {}),
                }
            )
    if op.write:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "A retry with the same key returns the first answer.",
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 255,
                    "pattern": "^[A-Za-z0-9_.:-]+$",
                },
            }
        )
    return params


@cache
def document() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Any]] = [(Problem, "serialization")]
    for op in OPERATIONS:
        models.append((op.ok[1], "serialization"))
        if op.body is not None:
            models.append((op.body, "validation"))
        if op.query is not None:
            models.append((op.query, "validation"))
    _keys, definitions = models_json_schema(models, ref_template=REF)
    schemas = definitions.get("$defs", {})
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        entry: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "security": [{"bearer": []}],
            "parameters": _parameters(op, schemas),
            "responses": _responses(op),
        }
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": REF.format(model=op.body.__name__)}}
                },
            }
        paths.setdefault(PREFIX + op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Relance API",
            "version": "1",
            "description": "Customers, invoices, payments, portal links, cases and reminders. "
            "See docs/api.md.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def openapi_json(request: Request) -> Response:
    return JSONResponse(document())


async def docs_page(request: Request) -> Response:
    use_language(choose_language(request))
    spec = document()
    operations = [
        {"method": method.upper(), "path": path, **entry}
        for path, methods in spec["paths"].items()
        for method, entry in methods.items()
    ]
    return render(
        request,
        "api/docs.html",
        {"operations": operations, "schemas": spec["components"]["schemas"], "access": None},
    )
