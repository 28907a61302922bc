"""/admin/imports: upload a file, map its columns, preview, confirm, follow the progress,
read the history; admins download the original files.

The upload only stores the file and its ``imports`` row; the reading (preview) and the
writing (after confirmation) run after the response, in a background task, in batches of
short transactions (``portal.imports.service``). The page polls with htmx while that runs,
and refreshes itself without JavaScript.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from portal import i18n
from portal.i18n import gettext_ as _
from portal.imports import service
from portal.imports.errors import ImportFileError
from portal.imports.mapping import FIELDS, Kind, missing_fields
from portal.imports.models import RUNNING, Import, ImportStatus
from portal.settings import Settings
from portal.users.models import Role, User
from portal.web.backoffice import EDITORS, PREFIX, _context, _format_when, require_role
from portal.web.rendering import render, unit_of_work

PAGE = f"{PREFIX}/imports"
TEMPLATE = "backoffice/imports/page.html"
DETAIL = "backoffice/imports/detail.html"
KINDS = ("customers", "contacts", "invoices", "payments")
# Room for the form's other fields and the multipart framing around the file.
FORM_OVERHEAD = 64 * 1024
POLL_SECONDS = 1
MAX_FILES = 200  # e-invoices uploaded together


def _translate(entry: dict[str, Any] | None) -> str:
    if not entry:
        return ""
    message, values = service.describe(entry)
    return _(message, **values)


def _page(
    request: Request,
    db: Session,
    user: User,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    return render(
        request,
        TEMPLATE,
        _context(
            user,
            imports=service.history(db, state.company_id),
            kinds=KINDS,
            error=error,
            when=_format_when(settings.company.timezone),
            max_mb=settings.import_max_bytes // (1024 * 1024),
            retention_days=settings.import_retention_days,
            translate=_translate,
        ),
        status_code=status_code,
    )


def imports_page(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db)
        if isinstance(user, Response):
            return user
        return _page(request, db, user)


async def upload(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > settings.import_max_bytes + FORM_OVERHEAD:
        # Refused before a byte of the body is read.
        return await run_in_threadpool(_refuse_too_big, request)
    form = await request.form(max_files=MAX_FILES, max_fields=10)
    try:
        return await run_in_threadpool(_upload, request, form)
    finally:
        await form.close()


def _too_big(settings: Settings) -> str:
    return _(
        "The file is larger than %(size)d MB, the most an import takes.",
        size=settings.import_max_bytes // (1024 * 1024),
    )


def _refuse_too_big(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)  # sets the language the message is in
        if isinstance(user, Response):
            return user
        message = _too_big(request.app.state.settings)
        return _page(request, db, user, error=message, status_code=413)


def _upload(request: Request, form: FormData) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        uploads = [f for f in form.getlist("file") if isinstance(f, UploadFile) and f.filename]
        if not uploads:
            return _page(request, db, user, error=_("Choose a file to import."), status_code=400)
        name, source = _one_file(uploads)
        kind_text = form.get("kind")
        kind = Kind(kind_text) if kind_text in KINDS else None
        try:
            record = service.store_file(
                db,
                settings,
                state.company_id,
                name,
                source,
                service.Uploader(user.id, user.email),
                kind=kind,
                settle_missing=form.get("settle_missing") == "1",
            )
        except ImportFileError as error:
            message = _(error.message, **error.values)
            return _page(request, db, user, error=message, status_code=413)
        import_id = record.id
    task = _in_background(request, service.analyse, import_id)
    return RedirectResponse(f"{PAGE}/{import_id}", status_code=303, background=task)


def _in_background(request: Request, step: Any, import_id: int) -> BackgroundTask:
    """Run ``step`` after the response, in the language of the person who asked (the
    services' messages on rejected rows are written in it)."""
    state = request.app.state
    language = i18n.current_locale.get()

    def run() -> None:
        i18n.current_locale.set(language)
        step(state.session_factory, state.settings, import_id)

    return BackgroundTask(run)


def _one_file(uploads: list[UploadFile]) -> tuple[str, IO[bytes]]:
    """One upload as it is; several (e-invoices) put together in one zip, imported at once."""
    if len(uploads) == 1:
        return str(uploads[0].filename), uploads[0].file
    bundle = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, upload in enumerate(uploads, start=1):
            upload.file.seek(0)
            with archive.open(f"{index:03d}-{Path(str(upload.filename)).name}", "w") as member:
                shutil.copyfileobj(upload.file, member)
    bundle.seek(0)
    return f"einvoices-{len(uploads)}.zip", bundle


def _load(request: Request, db: Session) -> Import | None:
    return service.get(db, request.app.state.company_id, request.path_params["import_id"])


def _detail(request: Request, db: Session, user: User, record: Import, **values: Any) -> Response:
    settings: Settings = request.app.state.settings
    kind = Kind(record.kind) if record.kind in {k.value for k in Kind} else None
    columns = {int(index): name for index, name in record.columns.items()}
    header: list[str] = record.sample[0]["header"] if record.sample else []
    running = record.status in RUNNING
    return render(
        request,
        DETAIL,
        _context(
            user,
            record=record,
            kind=kind,
            kinds=KINDS,
            fields=FIELDS.get(kind, ()) if kind else (),
            all_fields=FIELDS,
            columns=columns,
            header=header,
            rows=record.sample[1:],
            show_mapping=False,
            missing_labels=[_(f.label) for f in missing_fields(kind, columns)] if kind else [],
            running=running,
            poll_seconds=POLL_SECONDS,
            percent=_percent(record),
            when=_format_when(settings.company.timezone),
            translate=_translate,
            original=service.stored_file(settings, record) is not None,
            **{"notice": None, "mapping_error": None, **values},
        ),
        block="status",
    )


def _percent(record: Import) -> int | None:
    if record.status is ImportStatus.APPLYING and record.total_rows:
        return min(100, record.processed_rows * 100 // record.total_rows)
    return None


def import_detail(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db)
        if isinstance(user, Response):
            return user
        record = _load(request, db)
        if record is None:
            raise HTTPException(404)
        return _detail(request, db, user, record)


async def import_action(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=400)
    return await run_in_threadpool(_import_action, request, form)


def _import_action(request: Request, form: FormData) -> Response:
    action = request.path_params["action"]
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        record = _load(request, db)
        if record is None or action not in ("confirm", "cancel", "retry", "mapping"):
            raise HTTPException(404)
        task = None
        try:
            if action == "confirm":
                service.confirm(db, record, user.id)
                task = _in_background(request, service.apply_import, record.id)
            elif action == "cancel":
                service.cancel(db, record)
            elif action == "retry":
                service.retry(db, record)
                run = service.apply_import if record.confirmed_at else service.analyse
                task = _in_background(request, run, record.id)
            else:
                problem = _save_mapping(db, record, form, user)
                if problem is not None:
                    return _detail(request, db, user, record, mapping_error=problem)
                task = _in_background(request, service.analyse, record.id)
        except service.ImportNotAllowed:
            return _detail(request, db, user, record, notice="not-allowed")
        import_id = record.id
    return RedirectResponse(f"{PAGE}/{import_id}", status_code=303, background=task)


def _save_mapping(db: Session, record: Import, form: FormData, user: User) -> str | None:
    kind_text = form.get("kind")
    if kind_text not in KINDS:
        return _("Choose what the file holds.")
    kind = Kind(str(kind_text))
    header: list[str] = record.sample[0]["header"] if record.sample else []
    allowed = {field.name for field in FIELDS[kind]}
    columns: dict[int, str] = {}
    for index in range(len(header)):
        name = form.get(f"column-{index}")
        if isinstance(name, str) and name in allowed:
            if name in columns.values():
                return _("Each field can be read from one column only.")
            columns[index] = name
    missing = missing_fields(kind, columns)
    if missing:
        return _("Choose a column for: %(fields)s.", fields=", ".join(_(f.label) for f in missing))
    service.save_mapping(db, record, kind, header, columns, user.id)
    return None


def original_file(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    with unit_of_work(request) as db:
        user = require_role(request, db, Role.ADMIN)
        if isinstance(user, Response):
            return user
        record = _load(request, db)
        path = service.stored_file(settings, record) if record is not None else None
        if record is None or path is None:
            raise HTTPException(404)
        name = record.filename
    fallback = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return FileResponse(
        path,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": (
                f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"
            ),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


routes = [
    Route(PAGE, imports_page, name="admin_imports"),
    Route(PAGE, upload, methods=["POST"], name="admin_import_upload"),
    Route(f"{PAGE}/{{import_id:int}}", import_detail, name="admin_import"),
    Route(f"{PAGE}/{{import_id:int}}/original", original_file, name="admin_import_original"),
    Route(
        f"{PAGE}/{{import_id:int}}/{{action:str}}",
        import_action,
        methods=["POST"],
        name="admin_import_action",
    ),
]
