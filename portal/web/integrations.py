"""Back office, admins only: API keys (/admin/api-keys) and webhook endpoints
(/admin/webhooks, each with its delivery log and a redeliver button). Plain forms and 303
redirects: no JavaScript needed."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.api import keys
from portal.api.models import KeyScope
from portal.changes import FieldErrors
from portal.users.models import Role, User
from portal.web.backoffice import _context, _field, _use_language, require_role
from portal.web.rendering import render, unit_of_work
from portal.webhooks import endpoints
from portal.webhooks.events import EVENT_TYPES
from portal.webhooks.models import WebhookEndpoint

KEYS = "/admin/api-keys"
HOOKS = "/admin/webhooks"


def _admin(request: Request, db: Session) -> User | Response:
    _use_language(request)
    return require_role(request, db, Role.ADMIN)


# --- API keys ---------------------------------------------------------------------------


def _keys_page(
    request: Request,
    db: Session,
    user: User,
    *,
    new_key: str | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "backoffice/api_keys.html",
        _context(
            user,
            keys=keys.list_keys(db, request.app.state.company_id),
            scopes=[s.value for s in KeyScope],
            new_key=new_key,
            errors=errors or {},
            form=form or {"name": "", "scope": KeyScope.READ.value},
            notice=request.query_params.get("done"),
        ),
        status_code=status_code,
    )


def keys_page(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = _admin(request, db)
        if isinstance(user, Response):
            return user
        return _keys_page(request, db, user)


async def create_key(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    return await run_in_threadpool(_create_key, request, form)


def _create_key(request: Request, form: FormData) -> Response:
    values = {"name": _field(form, "name", 300), "scope": _field(form, "scope", 20)}
    try:
        with unit_of_work(request) as db:
            user = _admin(request, db)
            if isinstance(user, Response):
                return user
            created = keys.create_key(
                db,
                request.app.state.company_id,
                name=values["name"],
                scope=values["scope"],
                user_id=user.id,
            )
            # Shown once, on this answer only (no redirect: the key is never stored).
            return _keys_page(request, db, user, new_key=created.secret, status_code=201)
    except FieldErrors as errors:
        with unit_of_work(request) as db:
            user = _admin(request, db)
            if isinstance(user, Response):
                return user
            return _keys_page(request, db, user, errors=errors.errors, form=values, status_code=400)


def revoke_key(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = _admin(request, db)
        if isinstance(user, Response):
            return user
        key = keys.get_key(db, request.app.state.company_id, _int(request, "key_id"))
        if key is None:
            return _keys_page(request, db, user, status_code=404)
        keys.revoke_key(db, key, user.id)
    return RedirectResponse(f"{KEYS}?done=revoked", status_code=303)


def _int(request: Request, name: str) -> int:
    raw = str(request.path_params.get(name, ""))
    return int(raw) if raw.isdigit() and len(raw) < 18 else 0


# --- webhook endpoints ------------------------------------------------------------------


def _endpoint_form(endpoint: WebhookEndpoint | None) -> dict[str, Any]:
    if endpoint is None:
        return {"url": "", "description": "", "events": [], "enabled": True}
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events),
        "enabled": endpoint.enabled,
    }


def _read_endpoint_form(form: FormData) -> dict[str, Any]:
    return {
        "url": _field(form, "url", 2100),
        "description": _field(form, "description", 300),
        "events": [e for e in form.getlist("events") if isinstance(e, str)][:50],
        "enabled": form.get("enabled") == "1",
    }


def _hooks_page(
    request: Request,
    db: Session,
    user: User,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "backoffice/webhooks.html",
        _context(
            user,
            endpoints=endpoints.list_endpoints(db, request.app.state.company_id),
            event_types=EVENT_TYPES,
            errors=errors or {},
            form=form or _endpoint_form(None),
            notice=request.query_params.get("done"),
        ),
        status_code=status_code,
    )


def hooks_page(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = _admin(request, db)
        if isinstance(user, Response):
            return user
        return _hooks_page(request, db, user)


def _allowed(request: Request) -> tuple[str, ...]:
    return tuple(request.app.state.settings.api.webhook_allowed_networks)


async def create_hook(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=40)
    return await run_in_threadpool(_create_hook, request, _read_endpoint_form(form))


def _create_hook(request: Request, values: dict[str, Any]) -> Response:
    try:
        with unit_of_work(request) as db:
            user = _admin(request, db)
            if isinstance(user, Response):
                return user
            endpoint = endpoints.create_endpoint(
                db,
                request.app.state.company_id,
                url=values["url"],
                events=values["events"],
                description=values["description"],
                user_id=user.id,
                allowed=_allowed(request),
            )
            endpoint_id = endpoint.id
    except FieldErrors as errors:
        with unit_of_work(request) as db:
            user = _admin(request, db)
            if isinstance(user, Response):
                return user
            return _hooks_page(
                request, db, user, errors=errors.errors, form=values, status_code=400
            )
    return RedirectResponse(f"{HOOKS}/{endpoint_id}?done=created", status_code=303)


def _hook_page(
    request: Request,
    db: Session,
    user: User,
    endpoint: WebhookEndpoint,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "backoffice/webhook.html",
        _context(
            user,
            endpoint=endpoint,
            event_types=EVENT_TYPES,
            deliveries=endpoints.recent_deliveries(db, endpoint.id),
            pending=endpoints.pending_count(db, endpoint.id),
            errors=errors or {},
            form=form or _endpoint_form(endpoint),
            notice=request.query_params.get("done"),
        ),
        status_code=status_code,
    )


def _load(request: Request, db: Session) -> WebhookEndpoint | None:
    return endpoints.get_endpoint(db, request.app.state.company_id, _int(request, "endpoint_id"))


def hook_page(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = _admin(request, db)
        if isinstance(user, Response):
            return user
        endpoint = _load(request, db)
        if endpoint is None:
            return _hooks_page(request, db, user, status_code=404)
        return _hook_page(request, db, user, endpoint)


async def update_hook(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=40)
    return await run_in_threadpool(_update_hook, request, _read_endpoint_form(form))


def _update_hook(request: Request, values: dict[str, Any]) -> Response:
    try:
        with unit_of_work(request) as db:
            user = _admin(request, db)
            if isinstance(user, Response):
                return user
            endpoint = _load(request, db)
            if endpoint is None:
                return _hooks_page(request, db, user, status_code=404)
            endpoint_id = endpoint.id
            endpoints.update_endpoint(
                db,
                endpoint,
                url=values["url"],
                events=values["events"],
                description=values["description"],
                enabled=values["enabled"],
                user_id=user.id,
                allowed=_allowed(request),
            )
    except FieldErrors as errors:
        with unit_of_work(request) as db:
            user = _admin(request, db)
            if isinstance(user, Response):
                return user
            endpoint = _load(request, db)
            assert endpoint is not None
            return _hook_page(
                request, db, user, endpoint, errors=errors.errors, form=values, status_code=400
            )
    return RedirectResponse(f"{HOOKS}/{endpoint_id}?done=updated", status_code=303)


def redeliver(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = _admin(request, db)
        if isinstance(user, Response):
            return user
        endpoint = _load(request, db)
        if endpoint is None:
            return _hooks_page(request, db, user, status_code=404)
        endpoint_id = endpoint.id
        try:
            with db.begin_nested():
                endpoints.redeliver(db, endpoint, _int(request, "delivery_id"), user.id)
        except FieldErrors:
            return _hook_page(request, db, user, endpoint, status_code=404)
    return RedirectResponse(f"{HOOKS}/{endpoint_id}?done=redelivered", status_code=303)


routes = [
    Route(KEYS, keys_page, methods=["GET"]),
    Route(KEYS, create_key, methods=["POST"]),
    Route(KEYS + "/{key_id}/revoke", revoke_key, methods=["POST"]),
    Route(HOOKS, hooks_page, methods=["GET"]),
    Route(HOOKS, create_hook, methods=["POST"]),
    Route(HOOKS + "/{endpoint_id}", hook_page, methods=["GET"]),
    Route(HOOKS + "/{endpoint_id}", update_hook, methods=["POST"]),
    Route(HOOKS + "/{endpoint_id}/deliveries/{delivery_id}/redeliver", redeliver, methods=["POST"]),
]
