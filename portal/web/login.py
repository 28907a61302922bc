"""Back-office login, password change and reset, and unlocking an account.

Logging in is throttled per client and per address (``portal.users.throttle``); an
account is locked only after ``users.LOCK_AFTER_FAILURES`` failures in a row, and the
user then gets an email with a link to unlock it. "Forgot your password?" emails a
reset link and answers the same whether or not the address has an account. Emails
leave after the commit, in a BackgroundTask.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

import anyio
from babel.dates import format_timedelta
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import i18n
from portal.mail.sender import Mailer, OutgoingEmail, compose
from portal.settings import Settings
from portal.users import passwords, sessions
from portal.users import service as users
from portal.users.errors import (
    AccountJustLocked,
    InvalidCredentials,
    InvalidToken,
    LoginRefused,
    TooManyAttempts,
    WeakPassword,
)
from portal.users.models import Role, User
from portal.users.passwords import RESET, UNLOCK, PasswordsDiffer, UserTokens
from portal.web.backoffice import (
    LOGIN_PATH,
    PREFIX,
    _context,
    _field,
    _use_language,
    account_page,
    current_user,
    require_role,
    require_session,
    safe_admin_next,
    set_admin_cookie,
)
from portal.web.rendering import client_ip, render, unit_of_work

log = logging.getLogger(__name__)

# Every failed login waits this long before its answer (app.state.login_failure_delay
# overrides it; tests set 0). The wait is asynchronous and outside the transaction: it
# holds neither a thread nor a database row.
LOGIN_FAILURE_DELAY_SECONDS = 1.0
LOGIN_NOTICES = ("password-reset", "unlocked")


def _tokens(request: Request) -> UserTokens:
    settings: Settings = request.app.state.settings
    return UserTokens(settings.secret_keys)


def _throttle_secret(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return settings.secret_keys[0]


def _send(mailer: Mailer, email: OutgoingEmail) -> None:
    try:
        mailer.send(email)
    except OSError:
        log.exception("could not send the %r email", email.subject)


def _user_email(request: Request, template: str, user: User, **context: Any) -> BackgroundTask:
    """An email to a back-office user, in the language of this request, sent after it."""
    state = request.app.state
    settings: Settings = state.settings
    language = i18n.current_locale.get()
    message = compose(
        state.templates,
        template,
        user.email,
        language,
        settings.base_url.split("//")[-1].split(":")[0],
        language=language,
        company=settings.company,
        settings=settings,
        person=user.name or user.email,
        **context,
    )
    return BackgroundTask(_send, state.mailer, message)


def wait_text(wait: dt.timedelta) -> str:
    """ "8 seconds", "15 minutes", in the current language, rounded up."""
    seconds = max(1, math.ceil(wait.total_seconds()))
    locale = i18n.current_locale.get()
    if seconds > 90:  # whole minutes, never shorter than the wait
        minutes = dt.timedelta(minutes=math.ceil(seconds / 60))
        return str(format_timedelta(minutes, granularity="minute", threshold=1000, locale=locale))
    shown = dt.timedelta(seconds=seconds)
    return str(format_timedelta(shown, granularity="second", threshold=1000, locale=locale))


# --- logging in -------------------------------------------------------------------------------


def _login_page(request: Request, status_code: int = 200, **values: Any) -> Response:
    notice = request.query_params.get("done")
    defaults: dict[str, Any] = {
        "email": "",
        "failed": False,
        "wait": None,
        "logged_out": None,
        "notice": notice if notice in LOGIN_NOTICES else None,
    }
    return render(
        request,
        "backoffice/login.html",
        _context(None, **{**defaults, **values}),
        status_code=status_code,
    )


def login_form(request: Request) -> Response:
    next_path = safe_admin_next(request.query_params.get("next"))
    with unit_of_work(request) as db:
        _use_language(request)
        if current_user(request, db) is not None:
            return RedirectResponse(next_path, status_code=303)
    logged_out = request.query_params.get("logged_out")
    return _login_page(
        request,
        next=next_path,
        logged_out=logged_out if logged_out in ("1", "everywhere") else None,
    )


async def login(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    email = _field(form, "email").strip()
    # One character past the limit: an overlong password stays overlong, and is refused.
    password = _field(form, "password", users.PASSWORD_MAX_LENGTH + 1)
    next_path = safe_admin_next(_field(form, "next"))
    code = _field(form, "code", 16)
    state = request.app.state
    settings: Settings = state.settings
    _use_language(request)
    secret, refused, mail = await run_in_threadpool(_log_in, request, email, password, code)
    if secret is None:
        # One answer, one status and one delay for an unknown address, a wrong password and
        # a locked account: nothing tells them apart. Too many attempts say how long to
        # wait, whatever the address.
        delay = float(getattr(state, "login_failure_delay", LOGIN_FAILURE_DELAY_SECONDS))
        if delay > 0:
            await anyio.sleep(delay)
        if isinstance(refused, TooManyAttempts):
            response = _login_page(
                request, 429, email=email, wait=wait_text(refused.retry_after), next=next_path
            )
            response.headers["Retry-After"] = str(math.ceil(refused.retry_after.total_seconds()))
            return response
        response = _login_page(request, 400, email=email, failed=True, next=next_path)
        response.background = mail
        return response
    response = RedirectResponse(next_path, status_code=303)
    set_admin_cookie(response, settings, secret)
    return response


def _log_in(
    request: Request, email: str, password: str, code: str = ""
) -> tuple[str | None, LoginRefused | None, BackgroundTask | None]:
    """(the new session's secret, None, None), or (None, why, the email to send after the
    commit). The attempt's bookkeeping commits either way."""
    state = request.app.state
    ip, agent = client_ip(request), request.headers.get("user-agent")
    with unit_of_work(request) as db:
        try:
            user = users.authenticate(
                db,
                email,
                password,
                company_id=state.company_id,
                client_ip=ip,
                user_agent=agent,
                totp_code=code,
                throttle_secret=_throttle_secret(request),
            )
        except AccountJustLocked as locked:
            target = db.get(User, locked.user_id)
            assert target is not None
            mail = _user_email(
                request,
                "account_locked",
                target,
                unlock_url=_url(request, "unlock", _tokens(request).issue(UNLOCK, target)),
                forgot_url=_url(request, "password/forgot"),
            )
            return None, locked, mail
        except LoginRefused as refused:
            return None, refused, None
        previous = current_user(request, db)
        if previous is not None:
            sessions.end_session(db, previous.session_id)
        return sessions.start_session(db, user, ip, agent), None, None


def _url(request: Request, path: str, token: str | None = None) -> str:
    settings: Settings = request.app.state.settings
    query = f"?token={token}" if token else ""
    return f"{settings.base_url}{PREFIX}/{path}{query}"


# --- forgot / reset ---------------------------------------------------------------------------


def forgot_form(request: Request) -> Response:
    _use_language(request)
    return render(request, "backoffice/forgot.html", _context(None, sent=False, email=""))


async def forgot(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    return await run_in_threadpool(_forgot, request, _field(form, "email", 254).strip())


def _forgot(request: Request, email: str) -> Response:
    _use_language(request)
    mail = None
    with unit_of_work(request) as db:
        user = passwords.request_reset(
            db,
            email,
            company_id=request.app.state.company_id,
            client_ip=client_ip(request),
            throttle_secret=_throttle_secret(request),
        )
        if user is not None:
            token = _tokens(request).issue(RESET, user)
            mail = _user_email(
                request, "password_reset", user, reset_url=_url(request, "password/reset", token)
            )
    # The same page whether or not the address has an account (or was sent a link).
    page = render(request, "backoffice/forgot.html", _context(None, sent=True, email=email))
    page.background = mail
    return page


def _password_error(error: WeakPassword) -> str:
    from portal.i18n import gettext_ as _

    if isinstance(error, PasswordsDiffer):
        return _("The two new passwords are not the same.")
    return _(
        "The password must have at least %(count)d characters.", count=users.PASSWORD_MIN_LENGTH
    )


def _reset_page(
    request: Request, token: str, *, valid: bool, error: str | None = None, status: int = 200
) -> Response:
    context = _context(None, token=token, valid=valid, error=error)
    return render(request, "backoffice/reset.html", context, status_code=status)


def reset_form(request: Request) -> Response:
    _use_language(request)
    token = request.query_params.get("token", "")[: passwords.TOKEN_MAX_LENGTH]
    with unit_of_work(request) as db:
        try:
            passwords.check_token(db, _tokens(request), RESET, token)
        except InvalidToken:
            return _reset_page(request, "", valid=False, status=400)
    return _reset_page(request, token, valid=True)


async def reset(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    return await run_in_threadpool(_reset, request, form)


def _reset(request: Request, form: FormData) -> Response:
    _use_language(request)
    token = _field(form, "token", passwords.TOKEN_MAX_LENGTH)
    limit = users.PASSWORD_MAX_LENGTH + 1
    with unit_of_work(request) as db:
        try:
            passwords.reset_password(
                db,
                _tokens(request),
                token,
                _field(form, "password", limit),
                _field(form, "confirm", limit),
                company_id=request.app.state.company_id,
                client_ip=client_ip(request),
            )
        except InvalidToken:
            return _reset_page(request, "", valid=False, status=400)
        except WeakPassword as error:  # checked before anything changed
            return _reset_page(request, token, valid=True, error=_password_error(error), status=400)
    return RedirectResponse(f"{LOGIN_PATH}?done=password-reset", status_code=303)


# --- unlocking --------------------------------------------------------------------------------


def unlock_form(request: Request) -> Response:
    """The emailed link shows a button: a GET (a mail scanner's, say) changes nothing."""
    _use_language(request)
    token = request.query_params.get("token", "")[: passwords.TOKEN_MAX_LENGTH]
    with unit_of_work(request) as db:
        try:
            passwords.check_token(db, _tokens(request), UNLOCK, token)
        except InvalidToken:
            token = ""
    context = _context(None, token=token, valid=bool(token))
    return render(request, "backoffice/unlock.html", context, status_code=200 if token else 400)


async def unlock(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    return await run_in_threadpool(_unlock, request, _field(form, "token", 256))


def _unlock(request: Request, token: str) -> Response:
    _use_language(request)
    with unit_of_work(request) as db:
        try:
            user = passwords.check_token(db, _tokens(request), UNLOCK, token)
        except InvalidToken:
            context = _context(None, token="", valid=False)
            return render(request, "backoffice/unlock.html", context, status_code=400)
        passwords.unlock(
            db,
            user,
            company_id=request.app.state.company_id,
            throttle_secret=_throttle_secret(request),
        )
    return RedirectResponse(f"{LOGIN_PATH}?done=unlocked", status_code=303)


def admin_unlock(request: Request) -> Response:
    with unit_of_work(request) as db:
        admin = require_role(request, db, Role.ADMIN)
        if isinstance(admin, Response):
            return admin
        target = db.get(User, request.path_params["user_id"])
        if target is not None:
            passwords.unlock(
                db,
                target,
                company_id=request.app.state.company_id,
                by=admin,
                throttle_secret=_throttle_secret(request),
            )
    return RedirectResponse(f"{PREFIX}/users?done=unlocked", status_code=303)


# --- changing one's password ------------------------------------------------------------------


async def change_password(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    return await run_in_threadpool(_change_password, request, form)


def _change_password(request: Request, form: FormData) -> Response:
    from portal.i18n import gettext_ as _

    limit = users.PASSWORD_MAX_LENGTH + 1
    with unit_of_work(request) as db:
        current = require_session(request, db)
        if isinstance(current, Response):
            return current
        try:
            passwords.change_password(
                db,
                current,
                _field(form, "current", limit),
                _field(form, "password", limit),
                _field(form, "confirm", limit),
                company_id=request.app.state.company_id,
                client_ip=client_ip(request),
                throttle_secret=_throttle_secret(request),
            )
        except TooManyAttempts as waiting:
            message = _(
                "Too many attempts. Try again in %(wait)s.", wait=wait_text(waiting.retry_after)
            )
            return _account_error(request, db, current, message, 429)
        except (InvalidCredentials, WeakPassword) as error:
            message = (
                _("Your current password is not right.")
                if isinstance(error, InvalidCredentials)
                else _password_error(error)
            )
            return _account_error(request, db, current, message)
    return RedirectResponse(f"{PREFIX}/account?done=password-changed", status_code=303)


def _account_error(
    request: Request, db: Session, current: sessions.CurrentUser, message: str, status: int = 400
) -> Response:
    return account_page(request, db, current, password_error=message, status_code=status)


routes = [
    Route(LOGIN_PATH, login_form, methods=["GET"], name="admin_login_form"),
    Route(LOGIN_PATH, login, methods=["POST"], name="admin_login"),
    Route(f"{PREFIX}/password/forgot", forgot_form, methods=["GET"], name="admin_forgot_form"),
    Route(f"{PREFIX}/password/forgot", forgot, methods=["POST"], name="admin_forgot"),
    Route(f"{PREFIX}/password/reset", reset_form, methods=["GET"], name="admin_reset_form"),
    Route(f"{PREFIX}/password/reset", reset, methods=["POST"], name="admin_reset"),
    Route(f"{PREFIX}/unlock", unlock_form, methods=["GET"], name="admin_unlock_form"),
    Route(f"{PREFIX}/unlock", unlock, methods=["POST"], name="admin_unlock"),
    Route(
        f"{PREFIX}/account/password",
        change_password,
        methods=["POST"],
        name="admin_change_password",
    ),
    Route(
        f"{PREFIX}/users/{{user_id:int}}/unlock",
        admin_unlock,
        methods=["POST"],
        name="admin_user_unlock",
    ),
]
