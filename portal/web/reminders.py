"""Reminder pages: the call-task queue (/admin/tasks) and, in development only when
PORTAL_DEV_OUTBOX is on, the outbox viewer (/dev/outbox, back-office login required) that
shows what the worker "sent"."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from portal.customers.models import Customer
from portal.reminders.models import ReminderMessage, TaskStatus
from portal.reminders.outbox import letter_file
from portal.reminders.tasks import NOTE_MAX, TaskError, complete_task, list_tasks
from portal.settings import Settings
from portal.users.models import User
from portal.web.backoffice import (
    DEV_OUTBOX_PATH,
    EDITORS,
    _context,
    _format_when,
    _not_found,
    require_role,
)
from portal.web.rendering import render, unit_of_work

TASKS_PATH = "/admin/tasks"
OUTBOX_PATH = DEV_OUTBOX_PATH
TASK_NOTICES = (
    "done",
    "already_done",
    "not_found",
    "note_too_long",
    "tracking_required",
    "tracking_too_long",
)
LINK = re.compile(r"https?://[^\s<>\"']+/l/[A-Za-z0-9._\-]+")


def tasks(request: Request) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    show = TaskStatus.DONE if request.query_params.get("show") == "done" else TaskStatus.OPEN
    with unit_of_work(request) as db:
        user = require_role(request, db)
        if isinstance(user, Response):
            return user
        rows = list_tasks(
            db, state.company_id, show, call_wait_days=settings.reminders.call_wait_days
        )
        notice = request.query_params.get("notice")
        return render(
            request,
            "backoffice/tasks.html",
            _context(
                user,
                tasks=rows,
                show=str(show),
                notice=notice if notice in TASK_NOTICES else None,
                note_max=NOTE_MAX,
                when=_format_when(settings.company.timezone),
            ),
            block="task_list",
        )


async def task_done(request: Request) -> Response:
    form = await request.form()
    note, tracking = form.get("note"), form.get("tracking_number")
    return await _run_sync(
        request,
        _task_done,
        note if isinstance(note, str) else "",
        tracking[:200] if isinstance(tracking, str) else "",
    )


async def _run_sync(request: Request, fn: Any, *args: Any) -> Response:
    from starlette.concurrency import run_in_threadpool

    response: Response = await run_in_threadpool(fn, request, *args)
    return response


def _task_done(request: Request, note: str, tracking_number: str) -> Response:
    task_id: int = request.path_params["task_id"]
    state = request.app.state
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        try:
            complete_task(
                db,
                state.company_id,
                task_id,
                user_id=user.id,
                note=note,
                tracking_number=tracking_number,
            )
        except TaskError as error:
            if error.key == "not_found":
                return _not_found(request, user)
            db.rollback()
            return RedirectResponse(f"{TASKS_PATH}?notice={error.key}", status_code=303)
    return RedirectResponse(f"{TASKS_PATH}?notice=done", status_code=303)


# --- the development outbox -----------------------------------------------------------------


def _outbox_user(request: Request, db: Session) -> User | Response:
    """The logged-in back-office user, or what to answer instead: 404 unless the viewer is
    switched on (PORTAL_DEV_OUTBOX, development only), else the login page. Its messages
    carry live portal links: never for anonymous visitors."""
    settings: Settings = request.app.state.settings
    if not (settings.development and settings.dev_outbox):
        raise HTTPException(404)
    return require_role(request, db)


def outbox(request: Request) -> Response:
    state = request.app.state
    with unit_of_work(request) as db:
        user = _outbox_user(request, db)
        if isinstance(user, Response):
            return user
        rows = db.execute(
            select(ReminderMessage, Customer.name, Customer.reference)
            .join(Customer, Customer.id == ReminderMessage.customer_id)
            .where(ReminderMessage.company_id == state.company_id)
            .order_by(ReminderMessage.id.desc())
            .limit(300)
        ).all()
        return render(
            request,
            "dev/outbox.html",
            _context(
                user,
                rows=rows,
                when=_format_when(state.settings.company.timezone),
            ),
        )


def outbox_message(request: Request) -> Response:
    state = request.app.state
    message_id: int = request.path_params["message_id"]
    with unit_of_work(request) as db:
        user = _outbox_user(request, db)
        if isinstance(user, Response):
            return user
        found = db.execute(
            select(ReminderMessage, Customer.name)
            .join(Customer, Customer.id == ReminderMessage.customer_id)
            .where(
                ReminderMessage.id == message_id,
                ReminderMessage.company_id == state.company_id,
            )
        ).first()
        if found is None:
            raise HTTPException(404)
        message, customer_name = found
        body = message.body_text or ""
        return render(
            request,
            "dev/outbox_message.html",
            _context(
                user,
                message=message,
                customer_name=customer_name,
                links=list(dict.fromkeys(LINK.findall(body))),
                letter=letter_file(state.settings, message.id).is_file(),
                when=_format_when(state.settings.company.timezone),
            ),
        )


def outbox_letter(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = _outbox_user(request, db)
        if isinstance(user, Response):
            return user
    path = letter_file(request.app.state.settings, request.path_params["message_id"])
    if not path.is_file():
        raise HTTPException(404)
    return FileResponse(path, media_type="application/pdf", filename=path.name)


routes = [
    Route(TASKS_PATH, tasks, name="admin_tasks"),
    Route(
        f"{TASKS_PATH}/{{task_id:int}}/done", task_done, methods=["POST"], name="admin_task_done"
    ),
    Route(OUTBOX_PATH, outbox, name="dev_outbox"),
    Route(f"{OUTBOX_PATH}/{{message_id:int}}", outbox_message, name="dev_outbox_message"),
    Route(f"{OUTBOX_PATH}/{{message_id:int}}/letter.pdf", outbox_letter, name="dev_outbox_letter"),
]
