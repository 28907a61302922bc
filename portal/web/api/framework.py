"""How every API operation runs: declared once (``operation``), served by one wrapper.

The wrapper authenticates the key, checks its scope and rate, reads and validates the JSON
body and the query with the operation's pydantic models (problems per field, 422), runs the
handler in the thread pool inside one transaction, and for writes with an
``Idempotency-Key`` takes the key first and stores the answer with the change. The same
declarations produce the OpenAPI document (``openapi.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.api import idempotency
from portal.api.keys import Caller, authenticate
from portal.api.schemas import FieldProblem
from portal.changes import FieldErrors
from portal.i18n import gettext_ as _
from portal.web.api import problems
from portal.web.api.ratelimit import RateLimiter
from portal.web.context import choose_language, use_language

PREFIX = "/api/v1"
JSON = "application/json"


class ApiProblem(Exception):
    """Raised by a handler: roll back and answer this problem."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class Call:
    request: Request
    db: Session
    caller: Caller
    body: Any
    query: Any
    path: dict[str, int]

    @property
    def state(self) -> Any:
        return self.request.app.state


@dataclass(frozen=True)
class Result:
    status: int
    model: BaseModel
    background: BackgroundTask | None = None  # emails, after the commit and the response


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # under PREFIX, with {name} for integer ids
    handler: Callable[[Call], Result]
    operation_id: str
    summary: str
    tag: str
    ok: tuple[int, type[BaseModel]]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    also: tuple[int, ...] = ()  # other success statuses with the same body (200 and 201)
    fields: dict[str, str] = field(default_factory=dict)  # service field -> body field
    names_in_query: bool = False  # its query names an object: 404 when there is none

    @property
    def write(self) -> bool:
        return self.method != "GET"

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"\{([a-z_]+)\}", self.path)


OPERATIONS: list[Operation] = []


def operation(
    method: str, path: str, **options: Any
) -> Callable[[Callable[[Call], Result]], Callable[[Call], Result]]:
    def register(handler: Callable[[Call], Result]) -> Callable[[Call], Result]:
        OPERATIONS.append(
            Operation(method, path, handler, operation_id=handler.__name__, **options)
        )
        return handler

    return register


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _sep, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def unauthorized() -> Response:
    return problems.problem(
        401,
        "unauthorized",
        _("An API key is needed."),
        _("Send a valid, unrevoked key as Authorization: Bearer <key>."),
        headers={"WWW-Authenticate": 'Bearer realm="relance"'},
    )


def _parse_path(op: Operation, request: Request) -> dict[str, int] | None:
    values = {}
    for name in op.path_params:
        raw = str(request.path_params.get(name, ""))
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            return None
        values[name] = int(raw)
    return values


def _validate(op: Operation, request: Request, raw: bytes) -> tuple[Any, Any] | Response:
    query = body = None
    if op.query is not None:
        try:
            query = op.query.model_validate(dict(request.query_params))
        except ValidationError as error:
            return problems.invalid(problems.parameter_errors(error))
    if op.body is not None:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != JSON:
            return problems.problem(
                415, "media-type", _("Send JSON."), _("The body must be application/json.")
            )
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return problems.problem(
                400, "malformed", _("The body is not valid JSON."), _("Send a JSON object.")
            )
        try:
            body = op.body.model_validate(data)
        except ValidationError as error:
            return problems.invalid(problems.body_errors(error))
    return body, query


def endpoint(op: Operation) -> Callable[[Request], Any]:
    async def serve(request: Request) -> Response:
        use_language(choose_language(request))
        presented = _bearer(request)
        if presented is None:
            return unauthorized()
        path = _parse_path(op, request)
        if path is None:
            return problems.not_found()
        raw = await request.body() if op.write else b""
        # Checked here, answered after the key: a caller without a valid key (or one that
        # may only read) hears only that.
        checked = _validate(op, request, raw)
        return await run_in_threadpool(_run, op, request, presented, path, checked, raw)

    return serve


def _admit(op: Operation, db: Session, presented: str, limiter: RateLimiter) -> Caller | Response:
    """The caller, if its key is valid, may do this and is within its rate."""
    caller = authenticate(db, presented)
    if caller is None:
        return unauthorized()
    if op.write and not caller.can_write:
        return problems.problem(
            403,
            "forbidden",
            _("This key may only read."),
            _("Ask an admin for a key that may read and write."),
        )
    wait = limiter.wait(db, caller.key_id)
    if wait:
        return problems.problem(
            429,
            "rate-limited",
            _("Too many requests."),
            _("Try again in %(seconds)d seconds.", seconds=wait),
            headers={"Retry-After": str(wait)},
        )
    return caller


def _replay(db: Session, request: Request, key_id: int, key: str, raw: bytes) -> Response | None:
    """The stored answer to this key's first request, or None when this is the first (the
    key is now taken by this transaction)."""
    print_ = idempotency.fingerprint(request.method, request.url.path, request.url.query, raw)
    try:
        stored = idempotency.claim(db, key_id, key, print_)
    except idempotency.InFlight:
        return problems.problem(
            409,
            "idempotency-key-in-flight",
            _("A request with this Idempotency-Key is still being processed."),
            _("Retry in a moment to get its answer."),
            headers={"Retry-After": "1"},
        )
    if stored is None:
        return None
    if not stored.matches:
        return problems.problem(
            422,
            "idempotency-key-reused",
            _("This Idempotency-Key was used for another request."),
            _("Use a new key for a new request."),
        )
    return Response(
        stored.body, stored.status_code, media_type=JSON, headers={"Idempotent-Replayed": "true"}
    )


def _run(
    op: Operation,
    request: Request,
    presented: str,
    path: dict[str, int],
    checked: tuple[Any, Any] | Response,
    raw: bytes,
) -> Response:
    state = request.app.state
    key = request.headers.get("idempotency-key") if op.write else None
    if key is not None and not 0 < len(key) <= idempotency.KEY_MAX:
        return problems.invalid(
            [
                FieldProblem(
                    detail=_("Use a key of 1 to 255 characters."), parameter="Idempotency-Key"
                )
            ]
        )
    try:
        # The key and its rate in autocommit (single statements, no lock held past them),
        # then a read in the same session; a write in a transaction of its own.
        with state.read_session_factory() as reader, reader.begin():
            caller = _admit(op, reader, presented, state.api_rate_limiter)
            if isinstance(caller, Response):
                return caller
            if isinstance(checked, Response):
                return checked
            body, query = checked
            if not op.write:
                result = op.handler(Call(request, reader, caller, body, query, path))
                payload = result.model.model_dump_json()
        if op.write:
            with state.session_factory() as db, db.begin():
                if key is not None:
                    replay = _replay(db, request, caller.key_id, key, raw)
                    if replay is not None:
                        return replay
                result = op.handler(Call(request, db, caller, body, query, path))
                payload = result.model.model_dump_json()
                if key is not None:
                    idempotency.remember(db, caller.key_id, key, result.status, payload)
    except FieldErrors as errors:
        return problems.field_errors(errors.errors, op.fields)
    except ApiProblem as refused:
        return refused.response
    return Response(payload, result.status, media_type=JSON, background=result.background)


def routes() -> list[Route]:
    # Handlers register themselves on import.
    from portal.web.api import (  # noqa: F401
        cases,
        casework,
        contacts,
        customers,
        invoices,
        links,
        money,
        transfers,
    )
    from portal.web.api.openapi import docs_page, openapi_json

    found = [
        Route(PREFIX + "/openapi.json", openapi_json, methods=["GET"]),
        Route(PREFIX + "/docs", docs_page, methods=["GET"]),
    ]
    by_path: dict[str, dict[str, Operation]] = {}
    for op in OPERATIONS:
        by_path.setdefault(op.path, {})[op.method] = op
    for path, ops in by_path.items():
        handlers = {method: endpoint(op) for method, op in ops.items()}

        async def dispatch(request: Request, handlers: dict[str, Any] = handlers) -> Response:
            # Starlette lets HEAD through wherever GET is: it is answered as GET (no body).
            method = "GET" if request.method == "HEAD" else request.method
            return await handlers[method](request)  # type: ignore[no-any-return]

        found.append(Route(PREFIX + path, dispatch, methods=list(handlers)))
    return found
