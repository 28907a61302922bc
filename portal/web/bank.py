"""/admin/bank: import a statement (check it first, or import it), the CSV column
mapping, the statements imported; /admin/bank/lines: "Bank lines to match" and the three
answers (match, split, not a customer payment). Credit managers and admins act, viewers
read. Every form is a plain POST answered by a redirect or the page with its message."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import clock
from portal.bank import csv_format, review
from portal.bank.errors import StatementError
from portal.bank.models import BankStatement
from portal.bank.statements import Account, ImportResult, import_statement
from portal.i18n import gettext_ as _
from portal.invoices import service as invoices
from portal.money import parse_amount
from portal.settings import Settings
from portal.users.models import User
from portal.web.backoffice import EDITORS, PREFIX, _context, _format_when, _not_found, require_role
from portal.web.rendering import render, unit_of_work

PAGE = f"{PREFIX}/bank"
LINES = f"{PAGE}/lines"
FORM_OVERHEAD = 64 * 1024
SPLIT_ROWS = 3
MAPPED = (
    "booked_on",
    "amount",
    "credit",
    "debit",
    "currency",
    "debtor_name",
    "debtor_iban",
    "remittance",
    "reference",
)


def account_of(settings: Settings) -> Account:
    return Account(settings.company.iban, settings.company.currency)


def field_label(field: str) -> str:
    return {
        "booked_on": _("Column with the booking date"),
        "amount": _("Column with the amount (negative for money out)"),
        "credit": _("Column with the credits (money in)"),
        "debit": _("Column with the debits (money out)"),
        "currency": _("Column with the currency"),
        "debtor_name": _("Column with the payer's name"),
        "debtor_iban": _("Column with the payer's IBAN"),
        "remittance": _("Column with the label or remittance information"),
        "reference": _("Column with the bank's reference of the line"),
    }[field]


def _imported(request: Request) -> dict[str, int] | None:
    keys = ("new", "matched", "review", "debits")
    values = [request.query_params.get(k, "") for k in keys]
    if not all(v.isdigit() for v in values):
        return None
    return {k: int(v) for k, v in zip(keys, values, strict=True)}


def _page(
    request: Request, db: Session, user: User, *, status_code: int = 200, **values: Any
) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    statements = list(
        db.scalars(
            select(BankStatement)
            .where(BankStatement.company_id == state.company_id)
            .order_by(BankStatement.id.desc())
            .limit(50)
        )
    )
    return render(
        request,
        "backoffice/bank.html",
        _context(
            user,
            statements=statements,
            to_review=review.pending_count(db, state.company_id),
            account=settings.company.iban,
            when=_format_when(settings.company.timezone),
            fields=MAPPED,
            field_label=field_label,
            imported=_imported(request),
            max_mb=settings.import_max_bytes // (1024 * 1024),
            **{"error": None, "result": None, "checked": False, "header": [], **values},
        ),
        status_code=status_code,
    )


def bank_page(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db)
        if isinstance(user, Response):
            return user
        return _page(request, db, user)


async def upload(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > settings.import_max_bytes + FORM_OVERHEAD:
        return await run_in_threadpool(_refuse, request, _("The file is too large."), 413)
    form = await request.form(max_files=1, max_fields=20)
    try:
        upload_file = form.get("file")
        data = await upload_file.read() if isinstance(upload_file, UploadFile) else b""
        name = str(upload_file.filename) if isinstance(upload_file, UploadFile) else ""
        return await run_in_threadpool(_upload, request, form, data, name)
    finally:
        await form.close()


def _refuse(request: Request, message: str, status: int) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        return _page(request, db, user, error=message, status_code=status)


def _upload(request: Request, form: FormData, data: bytes, name: str) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        if not data:
            return _page(request, db, user, error=_("Choose a statement file."), status_code=400)
        header: list[str] = []
        try:
            mapping = _posted_mapping(form)
            if mapping or not data.lstrip().startswith((b"<", b"01")):
                header = _header(data)
            check_only = form.get("action") == "check"
            with db.begin_nested() as attempt:
                if mapping:
                    csv_format.save_mapping(db, state.company_id, header, mapping, user.id)
                saved = csv_format.saved_mapping(db, state.company_id, header) if header else None
                result = import_statement(
                    db,
                    state.company_id,
                    account_of(settings),
                    data,
                    filename=name,
                    uploaded_by=user.email,
                    today=clock.today_in(settings.company.timezone),
                    csv_mapping=saved,
                )
                if check_only:
                    attempt.rollback()
        except StatementError as error:
            return _page(
                request,
                db,
                user,
                error=_(error.message, **error.values),
                header=header,
                status_code=400,
            )
        if check_only:
            return _page(request, db, user, result=result, checked=True)
    return RedirectResponse(f"{PAGE}?{_summary(result)}", status_code=303)


def _header(data: bytes) -> list[str]:
    try:
        return csv_format.header_of(data)
    except StatementError:
        return []


def _posted_mapping(form: FormData) -> dict[str, str]:
    mapping = {}
    for field in MAPPED:
        column = str(form.get(f"column_{field}") or "").strip()[:200]
        if column:
            mapping[column] = field
    return mapping


def _summary(result: ImportResult) -> str:
    return (
        f"new={result.new}&matched={result.matched}&review={result.review}&debits={result.debits}"
    )


def lines_page(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db)
        if isinstance(user, Response):
            return user
        return _lines(request, db, user)


def _lines(
    request: Request, db: Session, user: User, *, status_code: int = 200, **values: Any
) -> Response:
    state = request.app.state
    return render(
        request,
        "backoffice/bank_lines.html",
        _context(
            user,
            rows=review.queue(db, state.company_id),
            split_rows=range(1, SPLIT_ROWS + 1),
            notice=request.query_params.get("done"),
            **{"error": None, "error_for": None, **values},
        ),
        status_code=status_code,
    )


def _error(key: str) -> str:
    return {
        review.ReviewError.ALREADY_HANDLED: _("This line was already handled."),
        review.ReviewError.NO_INVOICE: _("Name at least one invoice."),
        review.ReviewError.UNKNOWN_INVOICE: _(
            "Name open invoices in the line's currency, by their numbers."
        ),
        review.ReviewError.SEVERAL_CUSTOMERS: _(
            "These invoices belong to several customers: split the line instead."
        ),
        review.ReviewError.SPLIT_TOTAL: _("The parts must add up to the line's amount."),
        review.ReviewError.AMOUNT_NOT_POSITIVE: _("Enter an amount above zero for each part."),
        review.ReviewError.REQUEST_CLOSED: _("This payment request can no longer be confirmed."),
    }.get(key, _("Something went wrong. Please try again."))


async def line_action(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=40)
    return await run_in_threadpool(_line_action, request, form)


def _numbers(db: Session, company_id: int, text: str) -> list[int] | None:
    numbers = [n.strip() for n in text.replace(";", ",").split(",") if n.strip()][:50]
    if not numbers:
        return []
    found = invoices.ids_by_number(db, numbers, company_id=company_id)
    return [found[n] for n in numbers] if all(n in found for n in numbers) else None


def _ids(values: list[Any]) -> list[int]:
    return [int(v) for v in values if isinstance(v, str) and v.isdigit()][:50]


def _line_action(request: Request, form: FormData) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    action = request.path_params["action"]
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        line = review.get_line(db, state.company_id, request.path_params["line_id"])
        if line is None or action not in ("match", "split", "dismiss"):
            return _not_found(request, user)
        line_id = line.id
        try:
            with db.begin_nested():
                if action == "dismiss":
                    review.dismiss(db, line, user_id=user.id)
                elif action == "match":
                    ids = _ids(form.getlist("invoice_id"))
                    typed = _numbers(db, state.company_id, str(form.get("numbers") or "")[:2000])
                    if typed is None:
                        raise review.ReviewError(review.ReviewError.UNKNOWN_INVOICE)
                    request_id = str(form.get("request_id") or "")
                    review.match(
                        db,
                        line,
                        ids + typed,
                        user_id=user.id,
                        request_id=int(request_id) if request_id.isdigit() else None,
                        today=clock.today_in(settings.company.timezone),
                    )
                else:
                    review.split(
                        db, line, _parts(db, state.company_id, form, line.currency), user_id=user.id
                    )
        except review.ReviewError as exc:
            return _lines(
                request, db, user, error=_error(exc.key), error_for=line_id, status_code=400
            )
    return RedirectResponse(f"{LINES}?done={action}", status_code=303)


def _parts(db: Session, company_id: int, form: FormData, currency: str) -> list[tuple[int, int]]:
    parts = []
    for row in range(1, SPLIT_ROWS + 1):
        number = str(form.get(f"number_{row}") or "").strip()[:64]
        amount = str(form.get(f"amount_{row}") or "").strip()[:32]
        if not number and not amount:
            continue
        ids = _numbers(db, company_id, number)
        if not ids or len(ids) != 1:
            raise review.ReviewError(review.ReviewError.UNKNOWN_INVOICE)
        try:
            parts.append((ids[0], parse_amount(amount, currency)))
        except ValueError:
            raise review.ReviewError(review.ReviewError.AMOUNT_NOT_POSITIVE) from None
    return parts


routes = [
    Route(PAGE, bank_page, name="admin_bank"),
    Route(f"{PAGE}/import", upload, methods=["POST"], name="admin_bank_import"),
    Route(LINES, lines_page, name="admin_bank_lines"),
    Route(
        f"{LINES}/{{line_id:int}}/{{action}}", line_action, methods=["POST"], name="admin_bank_line"
    ),
]
