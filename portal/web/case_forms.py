"""What the debtor's case forms share: reading fields and files, the open lines, the mail."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from portal.access.service import PortalAccess
from portal.cases import attachments as files
from portal.cases import notify
from portal.cases import service as cases
from portal.cases.attachments import CheckedFile, IncomingFile
from portal.cases.policy import PlanError
from portal.cases.service import AgreementInfo, CaseError
from portal.invoices import service as invoices
from portal.invoices.service import InvoiceLine, Scope
from portal.money import parse_amount
from portal.settings import Settings
from portal.web.case_messages import (
    AMOUNT_UNREADABLE,
)
from portal.web.context import (
    session_cookie_name,
)
from portal.web.rendering import client_ip

FORM_LIMIT = 6000


def scope_of(access: PortalAccess) -> Scope:
    return Scope(access.customer.id, access.invoice_ids)


def invoice_ids_from(values: list[Any]) -> list[int] | None:
    out = []
    for value in values:
        if not isinstance(value, str) or not value.strip().isdigit():
            return None
        out.append(int(value))
    return out


def form_text(form: FormData, name: str, limit: int = FORM_LIMIT) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def agreement_of(request: Request) -> AgreementInfo:
    return AgreementInfo(client_ip(request), request.headers.get("user-agent"))


def mail_task(request: Request, emails: list[notify.CaseEmail | None]) -> BackgroundTask | None:
    ready = [e for e in emails if e is not None]
    if not ready:
        return None
    state = request.app.state
    return BackgroundTask(notify.send_all, state.templates, state.mailer, state.settings, ready)


def open_lines(db: Session, access: PortalAccess) -> tuple[list[InvoiceLine], set[int]]:
    """The open invoices, and those already in a live case (they cannot join another)."""
    lines = invoices.open_invoices(db, scope_of(access))
    taken = set(cases.live_case_of(db, [i.id for i in lines]))
    return lines, taken


async def read_form_with_files(request: Request) -> tuple[FormData, list[IncomingFile]]:
    settings: Settings = request.app.state.settings
    limit = settings.cases.attachment_max_bytes
    form = await request.form(
        max_files=settings.cases.attachment_max_count + 1,
        max_fields=200,
        max_part_size=FORM_LIMIT * 4,
    )
    incoming = []
    for upload in form.getlist("attachment"):
        if isinstance(upload, UploadFile):
            data = await upload.read(limit + 1)
            incoming.append(IncomingFile(upload.filename or "", data))
    return form, incoming


def checked_attachments(settings: Settings, incoming: list[IncomingFile]) -> list[CheckedFile]:
    return files.check_files(
        incoming, settings.cases.attachment_max_bytes, settings.cases.attachment_max_count
    )


def selected_from_query(request: Request) -> set[str]:
    return {v for v in request.query_params.getlist("invoice") if v.isdigit()}


def without_session_cookie(request: Request) -> bool:
    """No session cookie at all: answer before reading the files (RequestBodyLimit caps
    the rest)."""
    return not request.cookies.get(session_cookie_name(request.app.state.settings))


def plan_values(form: FormData | None) -> dict[str, str]:
    if form is None:
        return {"mode": "count", "count": "3", "monthly": "", "first_date": "", "message": ""}
    return {
        "mode": "monthly" if form_text(form, "mode", 16) == "monthly" else "count",
        "count": form_text(form, "count", 8).strip(),
        "monthly": form_text(form, "monthly", 32).strip(),
        "first_date": form_text(form, "first_date", 16).strip(),
        "message": form_text(form, "message"),
    }


def parse_plan(values: dict[str, str], currency: str) -> tuple[dt.date, int | None, int | None]:
    try:
        first = dt.date.fromisoformat(values["first_date"])
    except ValueError:
        raise CaseError(PlanError.FIRST_DATE_INVALID) from None
    if values["mode"] == "monthly":
        try:
            return first, None, parse_amount(values["monthly"], currency)
        except ValueError:
            raise CaseError(AMOUNT_UNREADABLE) from None
    if not values["count"].isdigit():
        raise CaseError(PlanError.COUNT_INVALID)
    return first, int(values["count"]), None
