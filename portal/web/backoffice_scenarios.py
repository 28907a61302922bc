"""/admin/scenarios: the reminder scenarios' editor (admins and credit managers change,
viewers read). Every change is saved as a new version (reminders/editor/versions.py); a
form carries the version it was shown with, so two editors never overwrite each other."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.customers.models import Customer
from portal.i18n import gettext_ as _
from portal.money import parse_amount
from portal.reminders.editor import edits
from portal.reminders.editor.dates import open_invoices, planned_dates, scenario_of
from portal.reminders.editor.document import MAX_DAYS, MIN_DAYS, InvalidDocument, delays, to_book
from portal.reminders.editor.texts import sample_customers, template_names
from portal.reminders.editor.versions import Author, Current, VersionConflict, current, save
from portal.reminders.models import Channel
from portal.reminders.scenarios import SEGMENT_KEYS
from portal.users.models import Role, User
from portal.web.backoffice import EDITORS, PREFIX, _context, _not_found, require_role
from portal.web.rendering import render, unit_of_work
from portal.web.scenario_words import (
    channel_labels,
    conflict_text,
    problem_text,
    segment_key_labels,
)

PATH = f"{PREFIX}/scenarios"
READERS = (Role.ADMIN, Role.CREDIT_MANAGER, Role.VIEWER)


def editing(request: Request, db: Session, name: str) -> tuple[User, Current] | Response:
    """An editor and the current version holding scenario ``name``, else the response."""
    user = require_role(request, db, *EDITORS)
    if isinstance(user, Response):
        return user
    now = _now(request, db)
    if name not in now.document["scenarios"]:
        return _not_found(request, user)
    return user, now


def author_of(user: User) -> Author:
    return Author(user.email, user.id)


def template_choices() -> list[tuple[str, str]]:
    labels = {
        "reminder_courtesy": _("Courtesy (before the due date)"),
        "reminder_overdue": _("Overdue"),
        "formal_notice": _("Formal notice (letter)"),
        "call": _("Call (a task for a credit manager)"),
    }
    names = sorted({*template_names(Channel.EMAIL), *template_names(Channel.SMS)})
    return [(name, labels.get(name, name)) for name in [*names, "formal_notice", "call"]]


def _now(request: Request, db: Session) -> Current:
    state = request.app.state
    return current(db, state.company_id, state.settings.reminders.scenarios_file)


def _field(form: FormData, name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _based_on(form: FormData) -> int:
    value = _field(form, "version", 12)
    return int(value) if value.isdigit() else -1


def read_step(form: FormData) -> tuple[edits.StepFields | None, dict[str, str], dict[str, Any]]:
    """(fields, errors by field, what was typed) of a step form."""
    typed: dict[str, Any] = {
        "days": _field(form, "days", 8),
        "channel": _field(form, "channel", 16),
        "template": _field(form, "template", 64),
        "segments": [s for s in form.getlist("segments") if s in SEGMENT_KEYS],
        "min_amount": _field(form, "min_amount", 30),
        "currency": _field(form, "currency", 3).upper(),
    }
    errors: dict[str, str] = {}
    try:
        days = int(typed["days"])
    except ValueError:
        days = 0
        errors["days"] = _("Enter a whole number of days, such as -5 or 30.")
    minimum = 0
    if typed["min_amount"]:
        try:
            minimum = parse_amount(typed["min_amount"], typed["currency"] or "EUR")
        except ValueError:
            errors["min_amount"] = _("Enter an amount such as 500 or 1 250,50.")
        if not typed["currency"]:
            errors["currency"] = _("Give the currency of the amount, such as EUR.")
    if errors:
        return None, errors, typed
    fields = edits.StepFields(
        days=days,
        channel=typed["channel"],
        template=typed["template"],
        segments=tuple(typed["segments"]),
        min_amount_minor=minimum,
        currency=typed["currency"] if minimum else "",
    )
    return fields, errors, typed


def scenario_page(
    request: Request,
    db: Session,
    user: User,
    name: str,
    *,
    now: Current | None = None,
    errors: dict[str, str] | None = None,
    typed: dict[str, dict[str, Any]] | None = None,
    status_code: int = 200,
) -> Response:
    state = request.app.state
    now = now or _now(request, db)
    body = now.document["scenarios"].get(name)
    if body is None:
        return _not_found(request, user)
    customers = sample_customers(db, state.company_id)
    chosen = _chosen_customer(request, db, customers)
    dates = []
    follows = ""
    if chosen is not None:
        book = to_book(now.document)
        follows = scenario_of(book, chosen).label
        dates = planned_dates(
            book.scenarios[name], book.min_gap_days, chosen, open_invoices(db, chosen)
        )
    delayed = {p.where: p for p in delays({**now.document, "scenarios": {name: body}})}
    context = _context(
        user,
        name=name,
        scenario=body,
        version=now,
        errors=errors or {},
        typed=typed or {},
        channels=channel_labels(),
        templates=template_choices(),
        segment_keys=segment_key_labels(),
        customers=customers,
        chosen=chosen,
        follows=follows,
        dates=dates,
        delayed={key: problem_text(p) for key, p in delayed.items()},
        min_days=MIN_DAYS,
        max_days=MAX_DAYS,
        can_edit=user.role in EDITORS,
        notice=request.query_params.get("done", ""),
    )
    return render(
        request, "backoffice/scenario.html", context, status_code=status_code, block="dates"
    )


def _chosen_customer(request: Request, db: Session, customers: list[Customer]) -> Customer | None:
    wanted = request.query_params.get("customer", "")
    if wanted.isdigit():
        found = db.get(Customer, int(wanted))
        if found is not None and found.company_id == request.app.state.company_id:
            return found
    return customers[0] if customers else None


def show_scenario(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *READERS)
        if isinstance(user, Response):
            return user
        return scenario_page(request, db, user, request.path_params["name"])


def _saved(name: str, anchor: str = "") -> Response:
    target = f"{PATH}/{name}?done=saved" + (f"#{anchor}" if anchor else "")
    return RedirectResponse(target, status_code=303)


def _refused(
    request: Request,
    db: Session,
    user: User,
    name: str,
    error: InvalidDocument | VersionConflict,
    *,
    rename: dict[str, str] | None = None,
    typed: dict[str, dict[str, Any]] | None = None,
) -> Response:
    """The page again, nothing saved: each message next to its field (``rename`` moves a
    problem to the form that caused it)."""
    if isinstance(error, VersionConflict):
        errors = {"form": conflict_text()}
        return scenario_page(request, db, user, name, errors=errors, status_code=409)
    errors = {}
    for problem in error.problems:
        where = (rename or {}).get(problem.where, problem.where)
        errors.setdefault(f"{where}.{problem.field}", problem_text(problem))
    return scenario_page(request, db, user, name, errors=errors, typed=typed, status_code=400)


async def add_step(request: Request) -> Response:
    form = await request.form(max_fields=40)
    name = request.path_params["name"]
    with unit_of_work(request) as db:
        found = editing(request, db, name)
        if isinstance(found, Response):
            return found
        user, now = found
        fields, errors, typed = read_step(form)
        if fields is None:
            prefixed = {f"new.{k}": v for k, v in errors.items()}
            return scenario_page(
                request, db, user, name, errors=prefixed, typed={"new": typed}, status_code=400
            )
        document, key = edits.add_step(now.document, name, fields)
        try:
            store_version(request, db, user, document, form, "step_added", f"{name}/{key}")
        except (InvalidDocument, VersionConflict) as error:
            # The new step's problems are named by the key it would have had.
            return _refused(
                request, db, user, name, error, rename={key: "new"}, typed={"new": typed}
            )
    return _saved(name, f"step-{key}")


def store_version(
    request: Request,
    db: Session,
    user: User,
    document: dict[str, Any],
    form: FormData,
    change: str,
    subject: str,
) -> None:
    save(
        db,
        request.app.state.company_id,
        document,
        based_on=_based_on(form),
        author=author_of(user),
        change=change,
        subject=subject,
    )


async def change_step(request: Request) -> Response:
    form = await request.form(max_fields=40)
    name, key = request.path_params["name"], request.path_params["key"]
    action = _field(form, "action", 16)
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        now = _now(request, db)
        steps = now.document["scenarios"].get(name, {}).get("steps", [])
        if not any(step["key"] == key for step in steps):
            return _not_found(request, user)
        typed: dict[str, Any] = {}
        try:
            if action in ("up", "down"):
                direction = -1 if action == "up" else 1
                document = edits.move_step(now.document, name, key, direction)
                store_version(request, db, user, document, form, "step_moved", f"{name}/{key}")
            elif action == "remove":
                document = edits.remove_step(now.document, name, key)
                store_version(request, db, user, document, form, "step_removed", f"{name}/{key}")
            else:
                fields, errors, typed = read_step(form)
                if fields is None:
                    prefixed = {f"{key}.{k}": v for k, v in errors.items()}
                    return scenario_page(
                        request,
                        db,
                        user,
                        name,
                        errors=prefixed,
                        typed={key: typed},
                        status_code=400,
                    )
                document = edits.change_step(now.document, name, key, fields)
                store_version(request, db, user, document, form, "step_changed", f"{name}/{key}")
        except (InvalidDocument, VersionConflict) as error:
            # "A scenario needs a step" stands next to the step's buttons.
            return _refused(request, db, user, name, error, rename={name: key}, typed={key: typed})
    return _saved(name, f"step-{key}")


routes = [
    Route(f"{PATH}/{{name}}", show_scenario, name="admin_scenario"),
    Route(f"{PATH}/{{name}}/steps", add_step, methods=["POST"], name="admin_scenario_add_step"),
    Route(
        f"{PATH}/{{name}}/steps/{{key}}",
        change_step,
        methods=["POST"],
        name="admin_scenario_step",
    ),
]
