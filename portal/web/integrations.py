"""Back office, admins only: API keys (/admin/api-keys) and webhook endpoints
(/admin/webhooks, each with its delivery log and a redeliver button). Plain forms and 303
redirects: no JavaScript needed."""

from __future__ import annotations

from collections.abc import Callable
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

Work = Callable[[Session, User], Response]


def as_admin(
    request: Request, work: Work, refused: Callable[..., Response] | None = None
) -> Response:
    """``work(db, user)`` in one transaction for an admin (else the login or 403 page).
    When it raises ``FieldErrors``, nothing is kept and ``refused(db, user, errors)`` answers,
    in a transaction of its own."""
    _use_language(request)
    try:
        with unit_of_work(request) as db:
            user = require_role(request, db, Role.ADMIN)
            return user if isinstance(user, Response) else work(db, user)
    except FieldErrors as errors:
        if refused is None:
            raise
        with unit_of_work(request) as db:
            user = require_role(request, db, Role.ADMIN)
            return user if isinstance(user, Response) else refused(db, user, errors.errors)


def _int(request: Request, name: str) -> int:
    raw = str(request.path_params.get(name, ""))
    return int(raw) if raw.isdigit() and len(raw) < 18 else 0


def _company(request: Request) -> int:
    return int(request.app.state.company_id)


# --- API keys ---------------------------------------------------------------------------


def _keys_page(
    request: Request, db: Session, user: User, *, status_code: int = 200, **values: Any
) -> Response:
    context = {
        "keys": keys.list_keys(db, _company(request)),
        "new_key": None,
        "errors": {},
        "form": {"name": "", "scope": KeyScope.READ.value},
        "notice": request.query_params.get("done"),
        **values,
    }
    return render(
        request, "backoffice/api_keys.html", _context(user, **context), status_code=status_code
    )


def keys_page(request: Request) -> Response:
    return as_admin(request, lambda db, user: _keys_page(request, db, user))


async def create_key(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    return await run_in_threadpool(_create_key, request, form)


def _create_key(request: Request, form: FormData) -> Response:
    values = {"name": _field(form, "name", 300), "scope": _field(form, "scope", 20)}

    def work(db: Session, user: User) -> Response:
        created = keys.create_key(
            db, _company(request), name=values["name"], scope=values["scope"], user_id=user.id
        )
        # Shown once, on this answer only (no redirect: the key is never stored).
        return _keys_page(request, db, user, new_key=created.secret, status_code=201)

    def refused(db: Session, user: User, errors: dict[str, str]) -> Response:
        return _keys_page(request, db, user, errors=errors, form=values, status_code=400)

    return as_admin(request, work, refused)


def revoke_key(request: Request) -> Response:
    def work(db: Session, user: User) -> Response:
        key = keys.get_key(db, _company(request), _int(request, "key_id"))
        if key is None:
            return _keys_page(request, db, user, status_code=404)
        keys.revoke_key(db, key, user.id)
        return RedirectResponse(f"{KEYS}?done=revoked", status_code=303)

    return as_admin(request, work)


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
    request: Request, db: Session, user: User, *, status_code: int = 200, **values: Any
) -> Response:
    context = {
        "endpoints": endpoints.list_endpoints(db, _company(request)),
        "event_types": EVENT_TYPES,
        "errors": {},
        "form": _endpoint_form(None),
        "notice": request.query_params.get("done"),
        **values,
    }
    return render(
        request, "backoffice/webhooks.html", _context(user, **context), status_code=status_code
    )


def hooks_page(request: Request) -> Response:
    return as_admin(request, lambda db, user: _hooks_page(request, db, user))


def _allowed(request: Request) -> tuple[str, ...]:
    return tuple(request.app.state.settings.api.webhook_allowed_networks)


async def create_hook(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=40)
    return await run_in_threadpool(_create_hook, request, _read_endpoint_form(form))


def _create_hook(request: Request, values: dict[str, Any]) -> Response:
    def work(db: Session, user: User) -> Response:
        endpoint = endpoints.create_endpoint(
            db,
            _company(request),
            url=values["url"],
            events=values["events"],
            description=values["description"],
            user_id=user.id,
            allowed=_allowed(request),
        )
        return RedirectResponse(f"{HOOKS}/{endpoint.id}?done=created", status_code=303)

    def refused(db: Session, user: User, errors: dict[str, str]) -> Response:
        return _hooks_page(request, db, user, errors=errors, form=values, status_code=400)

    return as_admin(request, work, refused)


def _hook_page(
    request: Request,
    db: Session,
    user: User,
    endpoint: WebhookEndpoint | None,
    *,
    status_code: int = 200,
    **values: Any,
) -> Response:
    if endpoint is None:
        return _hooks_page(request, db, user, status_code=404)
    context = {
        "endpoint": endpoint,
        "event_types": EVENT_TYPES,
        "deliveries": endpoints.recent_deliveries(db, endpoint.id),
        "pending": endpoints.pending_count(db, endpoint.id),
        "errors": {},
        "form": _endpoint_form(endpoint),
        "notice": request.query_params.get("done"),
        **values,
    }
    return render(
        request, "backoffice/webhook.html", _context(user, **context), status_code=status_code
    )


def _load(request: Request, db: Session) -> WebhookEndpoint | None:
    return endpoints.get_endpoint(db, _company(request), _int(request, "endpoint_id"))


def hook_page(request: Request) -> Response:
    return as_admin(request, lambda db, user: _hook_page(request, db, user, _load(request, db)))


async def update_hook(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=40)
    return await run_in_threadpool(_update_hook, request, _read_endpoint_form(form))


def _update_hook(request: Request, values: dict[str, Any]) -> Response:
    def work(db: Session, user: User) -> Response:
        endpoint = _load(request, db)
        if endpoint is None:
            return _hooks_page(request, db, user, status_code=404)
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
        return RedirectResponse(f"{HOOKS}/{endpoint.id}?done=updated", status_code=303)

    def refused(db: Session, user: User, errors: dict[str, str]) -> Response:
        return _hook_page(
            request, db, user, _load(request, db), errors=errors, form=values, status_code=400
        )

    return as_admin(request, work, refused)


def redeliver(request: Request) -> Response:
    def work(db: Session, user: User) -> Response:
        endpoint = _load(request, db)
        if endpoint is None:
            return _hooks_page(request, db, user, status_code=404)
        endpoints.redeliver(db, endpoint, _int(request, "delivery_id"), user.id)
        return RedirectResponse(f"{HOOKS}/{endpoint.id}?done=redelivered", status_code=303)

    def refused(db: Session, user: User, _errors: dict[str, str]) -> Response:
        return _hook_page(request, db, user, _load(request, db), status_code=404)

    return as_admin(request, work, refused)


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
