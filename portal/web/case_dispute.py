"""The debtor disputes invoices: the form and its submission."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portal.access.service import PortalAccess
from portal.cases import digest, notify
from portal.cases import service as cases
from portal.cases.attachments import AttachmentRejected, IncomingFile
from portal.cases.service import CaseError
from portal.settings import Settings
from portal.web.case_forms import (
    checked_attachments,
    form_text,
    invoice_ids_from,
    mail_task,
    open_lines,
    read_form_with_files,
    selected_from_query,
    without_session_cookie,
)
from portal.web.case_messages import (
    error_message,
    reason_labels,
)
from portal.web.context import (
    choose_language,
    current_access,
    use_language,
)
from portal.web.portal import _no_session
from portal.web.rendering import render, unit_of_work


def _dispute_page(
    request: Request,
    db: Session,
    access: PortalAccess,
    *,
    selected: set[str],
    reason: str = "",
    message: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    settings: Settings = request.app.state.settings
    lines, taken = open_lines(db, access)
    return render(
        request,
        "portal/dispute_new.html",
        {
            "access": access,
            "customer": access.customer,
            "lines": lines,
            "taken": taken,
            "selected": selected,
            "reasons": reason_labels(),
            "reason": reason,
            "message": message,
            "error": error_message(error, settings) if error else None,
            "error_key": error,
            "max_files": settings.cases.attachment_max_count,
            "max_mb": settings.cases.attachment_max_bytes // (1024 * 1024) or 1,
        },
        status_code=status_code,
    )


def dispute_form(request: Request) -> Response:
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        return _dispute_page(request, db, access, selected=selected_from_query(request))


async def dispute_submit(request: Request) -> Response:
    if without_session_cookie(request):
        return _no_session(request)
    form, incoming = await read_form_with_files(request)
    return await run_in_threadpool(_dispute_submit, request, form, incoming)


def _dispute_submit(request: Request, form: FormData, incoming: list[IncomingFile]) -> Response:
    settings: Settings = request.app.state.settings
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        raw = [str(v) for v in form.getlist("invoice")]
        selected = invoice_ids_from(raw)
        reason, message = form_text(form, "reason", 32), form_text(form, "message")
        try:
            if selected is None:
                raise CaseError(CaseError.UNKNOWN_INVOICE)
            checked = checked_attachments(settings, incoming)
            case = cases.open_dispute(
                db,
                access.customer,
                access.invoice_ids,
                selected,
                reason=reason,
                message=message,
                attachments=checked,
                attachments_dir=settings.cases.attachments_dir,
                answer_days=settings.cases.review_days,
            )
        except (CaseError, AttachmentRejected) as error:
            return _dispute_page(
                request,
                db,
                access,
                selected=set(raw),
                reason=reason,
                message=message,
                error=error.key,
                status_code=400,
            )
        digest.mark_told(db, case)
        mail = notify.staff_email(db, settings, case, "dispute_opened")
        case_id = case.id
    return RedirectResponse(
        f"/cases/{case_id}", status_code=303, background=mail_task(request, [mail])
    )
