"""The debtor's cases: the list, one case's page and thread, replies and attachments.

Opening a dispute, a plan or a promise has its own module; their routes are gathered here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from portal import clock
from portal.access.service import PortalAccess
from portal.cases import attachments as files
from portal.cases import digest, notify
from portal.cases import service as cases
from portal.cases.attachments import AttachmentRejected, IncomingFile
from portal.cases.models import Case, CaseKind
from portal.cases.service import CaseError
from portal.settings import Settings
from portal.timeline.models import Actor
from portal.web.case_dispute import dispute_form, dispute_submit
from portal.web.case_forms import (
    agreement_of,
    checked_attachments,
    form_text,
    mail_task,
    read_form_with_files,
    without_session_cookie,
)
from portal.web.case_messages import (
    error_message,
    reason_labels,
)
from portal.web.case_plan import plan_form, plan_submit
from portal.web.case_promise import promise_form, promise_submit
from portal.web.context import (
    choose_language,
    current_access,
    use_language,
)
from portal.web.portal import _no_session
from portal.web.rendering import render, unit_of_work

# --- the list and one case -------------------------------------------------------------------


def case_list(request: Request) -> Response:
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        found = [
            c
            for c in cases.customer_cases(db, access.customer.id)
            if access.invoice_ids is None or set(c.invoice_ids) <= access.invoice_ids
        ]
        return render(
            request,
            "portal/cases.html",
            {"access": access, "customer": access.customer, "cases": found},
        )


def _case_or_404(db: Session, request: Request, access: PortalAccess) -> Case:
    case = cases.debtor_case(
        db, access.customer.id, request.path_params["case_id"], access.invoice_ids
    )
    if case is None:
        raise HTTPException(404)
    return case


def _case_page(
    request: Request,
    db: Session,
    access: PortalAccess,
    case: Case,
    *,
    error: str | None = None,
    message: str = "",
    status_code: int = 200,
) -> Response:
    settings: Settings = request.app.state.settings
    today = clock.today_in(access.customer.timezone)
    states = cases.instalment_states(db, case) if case.kind is CaseKind.PLAN else []
    return render(
        request,
        "portal/case.html",
        {
            "access": access,
            "customer": access.customer,
            "case": case,
            "today": today,
            "invoices": cases.case_invoices(db, case),
            "messages": cases.thread(db, case.id),
            "states": states,
            "next": cases.next_instalment(db, access.customer.id, case.id),
            "reasons": reason_labels(),
            "error": error_message(error, settings) if error else None,
            "message": message,
            "max_files": settings.cases.attachment_max_count,
        },
        status_code=status_code,
    )


def case_detail(request: Request) -> Response:
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        case = _case_or_404(db, request, access)
        return _case_page(request, db, access, case)


async def post_reply(request: Request) -> Response:
    if without_session_cookie(request):
        return _no_session(request)
    form, incoming = await read_form_with_files(request)
    return await run_in_threadpool(_post_reply, request, form, incoming)


def _post_reply(request: Request, form: FormData, incoming: list[IncomingFile]) -> Response:
    settings: Settings = request.app.state.settings
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        case = _case_or_404(db, request, access)
        body = form_text(form, "message")
        try:
            checked = checked_attachments(settings, incoming)
            digest.check_message_rate(
                db,
                case,
                now=clock.now(),
                per_case=settings.cases.case_messages_per_hour,
                per_customer=settings.cases.customer_messages_per_hour,
            )
            cases.post_message(
                db,
                case,
                body,
                author=Actor.DEBTOR,
                attachments=checked,
                attachments_dir=settings.cases.attachments_dir,
            )
        except (CaseError, AttachmentRejected) as error:
            status = 429 if error.key == CaseError.TOO_MANY_MESSAGES else 400
            return _case_page(
                request, db, access, case, error=error.key, message=body, status_code=status
            )
        mail = digest.tell_now(db, settings, case)
        case_id = case.id
    return RedirectResponse(
        f"/cases/{case_id}#thread", status_code=303, background=mail_task(request, [mail])
    )


def accept_counter(request: Request) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            return _no_session(request)
        use_language(choose_language(request, access))
        case = _case_or_404(db, request, access)
        try:
            cases.accept_counter_proposal(db, case, agreement_of(request))
        except CaseError as error:
            return _case_page(request, db, access, case, error=error.key, status_code=409)
        mail = notify.debtor_email(db, state.signer, settings, case, "plan_accepted")
        case_id = case.id
    return RedirectResponse(
        f"/cases/{case_id}", status_code=303, background=mail_task(request, [mail])
    )


def attachment(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    with unit_of_work(request) as db:
        access = current_access(request, db)
        if access is None:
            raise HTTPException(404)
        case = _case_or_404(db, request, access)
        found = cases.attachment_for_case(db, case, request.path_params["attachment_id"])
        if found is None:
            raise HTTPException(404)
        return attachment_response(settings, found)


def attachment_response(settings: Settings, found: Any) -> Response:
    path = files.stored_path(settings.cases.attachments_dir, found.storage_name)
    if path is None:
        raise HTTPException(404)
    # An ASCII fallback, and the real name encoded (RFC 6266/5987): headers are Latin-1.
    fallback = found.filename.encode("ascii", "replace").decode().replace("?", "_")
    return FileResponse(
        path,
        media_type=found.content_type,
        headers={
            "Content-Disposition": (
                f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(found.filename)}"
            ),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


routes = [
    Route("/cases", case_list, name="cases"),
    Route("/cases/{case_id:int}", case_detail, name="case"),
    Route("/cases/{case_id:int}/messages", post_reply, methods=["POST"], name="case_reply"),
    Route("/cases/{case_id:int}/accept", accept_counter, methods=["POST"], name="case_accept"),
    Route(
        "/cases/{case_id:int}/attachments/{attachment_id:int}",
        attachment,
        name="case_attachment",
    ),
    Route("/disputes/new", dispute_form, name="dispute_form"),
    Route("/disputes", dispute_submit, methods=["POST"], name="dispute_submit"),
    Route("/plans/new", plan_form, name="plan_form"),
    Route("/plans", plan_submit, methods=["POST"], name="plan_submit"),
    Route("/promises/new", promise_form, name="promise_form"),
    Route("/promises", promise_submit, methods=["POST"], name="promise_submit"),
]
