"""/admin/scenarios (the list, the minimum gap and which scenario each segment follows, new
scenarios, renaming and removing), the TOML export and import, and the history of
versions with a restore button."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.customers.models import Customer
from portal.i18n import gettext_ as _
from portal.reminders.editor import edits
from portal.reminders.editor.document import InvalidDocument, delays, from_toml, to_toml
from portal.reminders.editor.versions import VersionConflict, history, version
from portal.reminders.scenarios import SEGMENT_KEYS
from portal.users.models import User
from portal.web.backoffice import EDITORS, _context, _not_found, require_role
from portal.web.backoffice_scenarios import (
    PATH,
    READERS,
    _field,
    _now,
    editing,
    scenario_page,
    store_version,
)
from portal.web.forms import read_form
from portal.web.rendering import render, unit_of_work
from portal.web.scenario_words import (
    change_text,
    conflict_text,
    problem_text,
    segment_key_labels,
)

TOML_MAX_BYTES = 32 * 1024


def book_page(
    request: Request,
    db: Session,
    user: User,
    *,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    now = _now(request, db)
    context = _context(
        user,
        version=now,
        document=now.document,
        segment_keys=segment_key_labels(),
        errors=errors or {},
        typed=typed or {},
        delayed=[(p.where, problem_text(p)) for p in delays(now.document)],
        can_edit=user.role in EDITORS,
        notice=request.query_params.get("done", ""),
    )
    return render(request, "backoffice/scenarios.html", context, status_code=status_code)


def scenarios_list(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *READERS)
        if isinstance(user, Response):
            return user
        return book_page(request, db, user)


def _refused(
    request: Request,
    db: Session,
    user: User,
    error: InvalidDocument | VersionConflict,
    typed: dict[str, str],
    field: str,
) -> Response:
    """The list page again, nothing saved; problems of a scenario or step stand next to
    ``field``, the form's main field."""
    if isinstance(error, VersionConflict):
        return book_page(request, db, user, errors={"form": conflict_text()}, status_code=409)
    errors: dict[str, str] = {}
    for problem in error.problems:
        at = problem.field if problem.where in ("settings", "file", "new") else field
        errors.setdefault(at, problem_text(problem))
    return book_page(request, db, user, errors=errors, typed=typed, status_code=400)


async def save_settings(request: Request) -> Response:
    form = await request.form(max_fields=20)
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        now = _now(request, db)
        typed = {"min_gap_days": _field(form, "min_gap_days", 4)}
        segments = {key: _field(form, f"segment_{key}", 40) for key in SEGMENT_KEYS}
        typed.update({f"segment_{k}": v for k, v in segments.items()})
        if not typed["min_gap_days"].isdigit():
            errors = {"min_gap_days": _("Enter a whole number of days, such as 5.")}
            return book_page(request, db, user, errors=errors, typed=typed, status_code=400)
        document = edits.change_settings(now.document, int(typed["min_gap_days"]), segments)
        try:
            store_version(request, db, user, document, form, "settings", "")
        except (InvalidDocument, VersionConflict) as error:
            return _refused(request, db, user, error, typed, "min_gap_days")
    return RedirectResponse(f"{PATH}?done=saved", status_code=303)


async def add_scenario(request: Request) -> Response:
    form = await request.form(max_fields=20)
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        now = _now(request, db)
        typed = {
            "name": _field(form, "name", 40).lower(),
            "label": _field(form, "label", 100),
            "copy_of": _field(form, "copy_of", 40),
        }
        if typed["copy_of"] not in now.document["scenarios"]:
            typed["copy_of"] = next(iter(now.document["scenarios"]))
        try:
            document = edits.add_scenario(
                now.document, typed["name"], typed["label"], typed["copy_of"]
            )
            store_version(request, db, user, document, form, "scenario_added", typed["name"])
        except (InvalidDocument, VersionConflict) as error:
            if isinstance(error, InvalidDocument):
                error = InvalidDocument(
                    [
                        type(p)("new", p.field, p.reason, p.values)
                        for p in error.problems
                        if p.where == typed["name"]
                    ]
                    or error.problems
                )
            return _refused(request, db, user, error, typed, "name")
    return RedirectResponse(f"{PATH}/{typed['name']}?done=created", status_code=303)


async def change_scenario(request: Request) -> Response:
    """Rename (``action=rename``) or remove (``action=remove``) a scenario."""
    form = await request.form(max_fields=20)
    name = request.path_params["name"]
    with unit_of_work(request) as db:
        found = editing(request, db, name)
        if isinstance(found, Response):
            return found
        user, now = found
        company_id = request.app.state.company_id
        removing = _field(form, "action", 16) == "remove"
        label = _field(form, "label", 120)
        try:
            if removing:
                document = edits.remove_scenario(
                    now.document, name, _customers_following(db, company_id, name)
                )
            else:
                document = edits.rename_scenario(now.document, name, label)
            store_version(
                request,
                db,
                user,
                document,
                form,
                "scenario_removed" if removing else "scenario_renamed",
                name,
            )
        except InvalidDocument as error:
            errors = {f"{name}.{p.field}": problem_text(p) for p in error.problems}
            typed = {"scenario": {"label": label}}
            return scenario_page(
                request, db, user, name, errors=errors, typed=typed, status_code=400
            )
        except VersionConflict:
            errors = {"form": conflict_text()}
            return scenario_page(request, db, user, name, errors=errors, status_code=409)
    if removing:
        return RedirectResponse(f"{PATH}?done=removed", status_code=303)
    return RedirectResponse(f"{PATH}/{name}?done=saved", status_code=303)


def _customers_following(db: Session, company_id: int, name: str) -> int:
    count = db.scalar(
        select(func.count())
        .select_from(Customer)
        .where(Customer.company_id == company_id, Customer.reminder_scenario == name)
    )
    return int(count or 0)


def _toml_response(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type="application/toml; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def export_toml(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *READERS)
        if isinstance(user, Response):
            return user
        now = _now(request, db)
        heading = f"Relance reminder scenarios, version {now.number}"
        return _toml_response(to_toml(now.document, heading), "scenarios.toml")


def export_version(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *READERS)
        if isinstance(user, Response):
            return user
        number = request.path_params["number"]
        found = version(db, request.app.state.company_id, number)
        if found is None:
            return _not_found(request, user)
        heading = f"Relance reminder scenarios, version {number}"
        return _toml_response(to_toml(found.document, heading), f"scenarios-v{number}.toml")


async def import_toml(request: Request) -> Response:
    form, data = await read_form(
        request, file_field="file", max_bytes=TOML_MAX_BYTES, max_fields=10
    )
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        errors: dict[str, str] = {}
        if data is None:
            errors["file"] = _("Choose a TOML file, such as one exported from this page.")
        elif len(data) > TOML_MAX_BYTES:
            errors["file"] = _("The file must be at most 32 KB.")
        if errors:
            return book_page(request, db, user, errors=errors, status_code=400)
        assert data is not None
        try:
            document = from_toml(data.decode("utf-8"))
            store_version(request, db, user, document, form, "imported", _upload_name(form))
        except UnicodeDecodeError:
            errors = {"file": _("The file must be UTF-8 text.")}
            return book_page(request, db, user, errors=errors, status_code=400)
        except (InvalidDocument, VersionConflict) as error:
            return _refused(request, db, user, error, {}, "file")
    return RedirectResponse(f"{PATH}?done=imported", status_code=303)


def _upload_name(form: object) -> str:
    upload = getattr(form, "get", lambda _name: None)("file")
    return str(getattr(upload, "filename", "") or "scenarios.toml")[:100]


def history_page(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *READERS)
        if isinstance(user, Response):
            return user
        rows = history(db, request.app.state.company_id)
        context = _context(
            user,
            rows=[(row, change_text(row.change, row.subject)) for row in rows],
            version=_now(request, db),
            can_edit=user.role in EDITORS,
            timezone=request.app.state.settings.company.timezone,
            notice=request.query_params.get("done", ""),
        )
        return render(request, "backoffice/scenario_history.html", context)


async def restore_version(request: Request) -> Response:
    form = await request.form(max_fields=10)
    number = request.path_params["number"]
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        found = version(db, request.app.state.company_id, number)
        if found is None:
            return _not_found(request, user)
        try:
            store_version(request, db, user, found.document, form, "restored", str(number))
        except (InvalidDocument, VersionConflict) as error:
            return _refused(request, db, user, error, {}, "file")
    return RedirectResponse(f"{PATH}/history?done=restored", status_code=303)


routes = [
    Route(PATH, scenarios_list, name="admin_scenarios"),
    Route(f"{PATH}/settings", save_settings, methods=["POST"], name="admin_scenarios_settings"),
    Route(f"{PATH}/new", add_scenario, methods=["POST"], name="admin_scenarios_new"),
    Route(f"{PATH}/export.toml", export_toml, name="admin_scenarios_export"),
    Route(f"{PATH}/import", import_toml, methods=["POST"], name="admin_scenarios_import"),
    Route(f"{PATH}/history", history_page, name="admin_scenarios_history"),
    Route(f"{PATH}/history/{{number:int}}.toml", export_version, name="admin_scenario_version"),
    Route(
        f"{PATH}/history/{{number:int}}/restore",
        restore_version,
        methods=["POST"],
        name="admin_scenario_restore",
    ),
    Route(f"{PATH}/{{name}}", change_scenario, methods=["POST"], name="admin_scenario_change"),
]
