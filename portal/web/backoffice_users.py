"""The back office's users (admins create, change roles, deactivate) and one's second factor."""

from __future__ import annotations

import segno
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import clock
from portal.i18n import gettext_ as _
from portal.timeline.models import Actor
from portal.users import service as users
from portal.users import totp
from portal.users.errors import UserError
from portal.users.models import Role, User
from portal.web.backoffice import (
    PREFIX,
    _context,
    _not_found,
    account_page,
    require_role,
)
from portal.web.backoffice import require_session as _require_session
from portal.web.case_forms import form_text
from portal.web.rendering import render, unit_of_work


def _users_page(
    request: Request,
    db: Session,
    user: User,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "backoffice/users.html",
        _context(
            user,
            users=users.list_users(db),
            roles=[r.value for r in Role],
            error=error,
            form=form or {"email": "", "name": "", "role": Role.CREDIT_MANAGER.value},
            notice=request.query_params.get("done"),
            min_length=users.PASSWORD_MIN_LENGTH,
            now=clock.now(),
        ),
        status_code=status_code,
    )


def users_page(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, Role.ADMIN)
        if isinstance(user, Response):
            return user
        return _users_page(request, db, user)


def _user_error(error: UserError) -> str:
    from portal.users.errors import EmailTaken, InvalidEmail, WeakPassword

    if isinstance(error, EmailTaken):
        return _("A user with this email address already exists.")
    if isinstance(error, InvalidEmail):
        return _("Enter a valid email address.")
    if isinstance(error, WeakPassword):
        return _(
            "The password must have at least %(count)d characters.", count=users.PASSWORD_MIN_LENGTH
        )
    return _("You cannot change your own role or deactivate yourself.")


async def create_user(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=20)
    return await run_in_threadpool(_create_user, request, form)


def _create_user(request: Request, form: FormData) -> Response:
    state = request.app.state
    with unit_of_work(request) as db:
        admin = require_role(request, db, Role.ADMIN)
        if isinstance(admin, Response):
            return admin
        values = {k: form_text(form, k, 300) for k in ("email", "name", "role")}
        try:
            role = Role(values["role"])
        except ValueError:
            return _users_page(
                request, db, admin, error=_("Choose a role."), form=values, status_code=400
            )
        try:
            users.create_user(
                db,
                values["email"],
                role,
                form_text(form, "password", users.PASSWORD_MAX_LENGTH + 1),
                name=values["name"],
                company_id=state.company_id,
                actor=Actor.USER,
                actor_id=str(admin.id),
            )
        except UserError as error:
            return _users_page(
                request, db, admin, error=_user_error(error), form=values, status_code=400
            )
    return RedirectResponse(f"{PREFIX}/users?done=created", status_code=303)


async def update_user(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=20)
    return await run_in_threadpool(_update_user, request, form)


def _update_user(request: Request, form: FormData) -> Response:
    state = request.app.state
    with unit_of_work(request) as db:
        admin = require_role(request, db, Role.ADMIN)
        if isinstance(admin, Response):
            return admin
        target = db.get(User, request.path_params["user_id"])
        if target is None:
            return _not_found(request, admin)
        try:
            role = Role(form_text(form, "role", 32))
        except ValueError:
            return _users_page(request, db, admin, error=_("Choose a role."), status_code=400)
        try:
            users.update_user(
                db,
                admin,
                target,
                role=role,
                active=form_text(form, "active", 8) == "1",
                company_id=state.company_id,
            )
        except UserError as error:
            return _users_page(request, db, admin, error=_user_error(error), status_code=400)
    return RedirectResponse(f"{PREFIX}/users?done=updated", status_code=303)


# --- second factor ---------------------------------------------------------------------------


def totp_qr_svg(uri: str) -> str:
    return str(
        segno.make(uri, error="m").svg_inline(
            scale=4, title=_("QR code for your authenticator app")
        )
    )


async def totp_action(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    return await run_in_threadpool(_totp_action, request, form)


def _totp_action(request: Request, form: FormData) -> Response:
    action = request.path_params["action"]
    state = request.app.state
    with unit_of_work(request) as db:
        current = _require_session(request, db)
        if isinstance(current, Response):
            return current
        code = form_text(form, "code", 16)
        if action == "enable":
            secret = form_text(form, "secret", 64)
            if not (secret.isalnum() and 16 <= len(secret) <= 64):
                raise HTTPException(400)
            if not totp.set_totp(db, current.user, secret, code, company_id=state.company_id):
                # The same secret again (the app may have it already): never in a URL.
                return account_page(
                    request, db, current, totp_secret=secret, totp_failed=True, status_code=400
                )
            done = "totp-enabled"
        elif action == "disable":
            ok = totp.set_totp(db, current.user, None, code, company_id=state.company_id)
            done = "totp-disabled" if ok else "totp-disable-failed"
        else:
            raise HTTPException(404)
    return RedirectResponse(f"{PREFIX}/account?done={done}", status_code=303)


routes = [
    Route(f"{PREFIX}/users", users_page, name="admin_users"),
    Route(f"{PREFIX}/users", create_user, methods=["POST"], name="admin_create_user"),
    Route(
        f"{PREFIX}/users/{{user_id:int}}", update_user, methods=["POST"], name="admin_update_user"
    ),
    Route(
        f"{PREFIX}/account/totp/{{action:str}}", totp_action, methods=["POST"], name="admin_totp"
    ),
]
