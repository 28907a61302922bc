"""/admin/messages: reminder texts per template, channel and language (admins and credit
managers change them, viewers read): a preview with a real customer (live with htmx, a
button without), "send a test to me" after commit, an SMS counter, back to the default."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from email.utils import make_msgid
from typing import Any

from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.customers.models import Customer
from portal.i18n import gettext_ as _
from portal.i18n import language_name
from portal.mail.sender import Mailer, OutgoingEmail
from portal.reminders.editor.rendering import TABLE_MARK, CustomText, text_to_html
from portal.reminders.editor.sandbox import PLACEHOLDERS, SmsCount, count_sms
from portal.reminders.editor.texts import (
    EDITABLE_CHANNELS,
    InvalidText,
    check_text,
    history,
    latest_text,
    sample_content,
    sample_customers,
    save_text,
    starter,
    template_names,
)
from portal.reminders.models import Channel
from portal.reminders.render import ReminderContent, RenderError, render_email, render_sms
from portal.users.models import Role, User
from portal.web.backoffice import EDITORS, PREFIX, _context, _not_found, require_role
from portal.web.backoffice_scenarios import READERS, author_of
from portal.web.rendering import is_htmx, render, unit_of_work
from portal.web.scenario_words import channel_labels, text_problem

log = logging.getLogger(__name__)
PATH = f"{PREFIX}/messages"


@dataclass(frozen=True)
class Preview:
    subject: str = ""
    text: str = ""
    html: Markup | None = None
    sms: SmsCount | None = None
    error: str = ""


def placeholder_help() -> dict[str, str]:
    return {
        "customer_name": _("the customer's name"),
        "contact_name": _("the contact's name (may be empty)"),
        "greeting_name": _("the contact's name, else the customer's"),
        "invoices_table": _("the table of invoices due (a list in text and SMS)"),
        "invoice_count": _("how many invoices are due"),
        "invoices": _("the invoices, for a loop: number, due_date, amount, days_late, penalties"),
        "total_due": _("the total left to pay, per currency"),
        "total_with_penalties": _("the total with late-payment penalties and indemnities"),
        "penalties_total": _("the penalties and indemnities alone"),
        "penalty_rate": _("the yearly penalty rate, in percent"),
        "due_dates": _("the due dates, from the earliest"),
        "earliest_due_date": _("the earliest due date"),
        "days_late": _("the most days late among the invoices"),
        "overdue": _("true when an invoice is late (for if)"),
        "portal_link": _("the customer's link to the portal"),
        "today": _("today's date"),
        "company_name": _("your company's name"),
        "company_email": _("your company's email address"),
        "company_phone": _("your company's phone number"),
    }


def _key(request: Request) -> tuple[Channel, str, str] | None:
    params = request.path_params
    try:
        channel = Channel(params["channel"])
    except ValueError:
        return None
    name, language = params["name"], params["language"]
    if channel not in EDITABLE_CHANNELS or name not in template_names(channel):
        return None
    if language not in request.app.state.settings.languages:
        return None
    return channel, name, language


def _user_and_key(
    request: Request, db: Session, roles: tuple[Role, ...]
) -> tuple[User, tuple[Channel, str, str]] | Response:
    user = require_role(request, db, *roles)
    if isinstance(user, Response):
        return user
    key = _key(request)
    return _not_found(request, user) if key is None else (user, key)


def messages_list(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *READERS)
        if isinstance(user, Response):
            return user
        state = request.app.state
        rows = []
        for channel in EDITABLE_CHANNELS:
            for name in template_names(channel):
                for language in state.settings.languages:
                    saved = latest_text(db, state.company_id, channel, name, language)
                    rows.append((channel, name, language, saved))
        context = _context(
            user, rows=rows, channels=channel_labels(), timezone=state.settings.company.timezone
        )
        return render(request, "backoffice/messages.html", context)


def _chosen(request: Request, db: Session, form: FormData | None) -> tuple[list[Customer], Any]:
    customers = sample_customers(db, request.app.state.company_id)
    wanted = (form.get("customer") if form else None) or request.query_params.get("customer")
    if isinstance(wanted, str) and wanted.isdigit():
        found = db.get(Customer, int(wanted))
        if found is not None and found.company_id == request.app.state.company_id:
            return customers, found
    return customers, customers[0] if customers else None


def _content(
    request: Request, db: Session, customer: Customer | None, language: str
) -> ReminderContent | None:
    if customer is None:
        return None
    content = sample_content(db, request.app.state.settings, customer)
    # The text being edited is in ``language``, whatever the sample customer speaks.
    return dataclasses.replace(content, language=language)


def _preview(
    request: Request, channel: Channel, name: str, content: ReminderContent, text: CustomText | None
) -> Preview:
    state = request.app.state
    company = state.site.look.identity(state.settings.company)
    try:
        if channel is Channel.SMS:
            sms = (
                text.sms(content, company)
                if text
                else render_sms(state.templates, name, content, company)
            )
            raw = sms
            if text:  # the counter sees the text as written, before GSM-7 replaces accents
                raw = " ".join(text.body_as_written(content, company).split()).replace(
                    TABLE_MARK, ""
                )
            return Preview(text=sms, sms=count_sms(raw))
        if text:
            email = text.email(state.templates, content, company)
            body = text.body_as_written(content, company)
            return Preview(email.subject, email.text, text_to_html(body, content))
        email = render_email(state.templates, name, content, company)
        return Preview(email.subject, email.text)
    except RenderError as error:
        return Preview(
            error=_("This text cannot be sent to this customer: %(error)s", error=str(error))
        )


def editor_page(
    request: Request,
    db: Session,
    user: User,
    key: tuple[Channel, str, str],
    *,
    form: FormData | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    block: str | None = None,
) -> Response:
    state = request.app.state
    channel, name, language = key
    saved = latest_text(db, state.company_id, channel, name, language)
    start = starter(channel, name, language)
    if form is not None:
        typed = CustomText(_text(form, "subject", 300), _text(form, "body", 6000))
    elif saved is not None:
        typed = CustomText(saved.subject, saved.body)
    else:
        typed = start
    customers, chosen = _chosen(request, db, form)
    content = _content(request, db, chosen, language)
    preview = None
    if content is not None and not errors:
        shown = typed if (form is not None or saved is not None) else None
        preview = _preview(request, channel, name, content, shown)
    context = _context(
        user,
        channel=channel,
        channel_label=channel_labels()[channel],
        name=name,
        language=language,
        language_label=language_name(language),
        typed=typed,
        saved=saved,
        customers=customers,
        chosen=chosen,
        preview=preview,
        previewing_default=form is None and saved is None,
        errors=errors or {},
        placeholders=[(p, placeholder_help()[p]) for p in PLACEHOLDERS],
        versions=history(db, state.company_id, channel, name, language)[:10],
        timezone=state.settings.company.timezone,
        can_edit=user.role in EDITORS,
        path=f"{PATH}/{channel}/{name}/{language}",
        notice=request.query_params.get("done", ""),
    )
    return render(request, "backoffice/message.html", context, status_code=status_code, block=block)


def _text(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    return value.replace("\r\n", "\n")[:limit] if isinstance(value, str) else ""


def show_message(request: Request) -> Response:
    with unit_of_work(request) as db:
        found = _user_and_key(request, db, READERS)
        if isinstance(found, Response):
            return found
        user, key = found
        return editor_page(request, db, user, key)


def _errors(channel: Channel, form: FormData) -> dict[str, str]:
    found = check_text(channel, _text(form, "subject", 300), _text(form, "body", 6000))
    return {field: text_problem(problem) for field, problem in found.items()}


async def live_preview(request: Request) -> Response:
    """The preview alone (htmx, as the text is typed); changes nothing."""
    form = await request.form(max_fields=10)
    with unit_of_work(request) as db:
        found = _user_and_key(request, db, READERS)
        if isinstance(found, Response):
            return found
        user, key = found
        errors = _errors(key[0], form)
        return editor_page(request, db, user, key, form=form, errors=errors, block="preview")


async def change_message(request: Request) -> Response:
    """``action``: preview, save, test (send it to me) or default (back to the files)."""
    form = await request.form(max_fields=10)
    action = form.get("action")
    with unit_of_work(request) as db:
        found = _user_and_key(request, db, EDITORS)
        if isinstance(found, Response):
            return found
        user, key = found
        channel, name, language = key
        company_id = request.app.state.company_id
        path = f"{PATH}/{channel}/{name}/{language}"
        if action == "default":
            save_text(
                db, company_id, channel, name, language,
                subject="", body="", author=author_of(user), is_default=True,
            )  # fmt: skip
            return RedirectResponse(f"{path}?done=default", status_code=303)
        errors = _errors(channel, form)
        if errors or action == "preview":
            status = 400 if errors else 200
            block = "preview" if is_htmx(request) and not errors else None
            return editor_page(
                request, db, user, key, form=form, errors=errors, status_code=status, block=block
            )
        text = CustomText(_text(form, "subject", 300), _text(form, "body", 6000))
        if action == "test":
            return _send_test(request, db, user, key, text, form)
        try:
            save_text(
                db, company_id, channel, name, language,
                subject=text.subject, body=text.body, author=author_of(user),
            )  # fmt: skip
        except InvalidText as error:
            refused = {field: text_problem(p) for field, p in error.problems.items()}
            return editor_page(request, db, user, key, form=form, errors=refused, status_code=400)
    return RedirectResponse(f"{path}?done=saved", status_code=303)


def _send_test(
    request: Request,
    db: Session,
    user: User,
    key: tuple[Channel, str, str],
    text: CustomText,
    form: FormData,
) -> Response:
    channel, name, language = key
    state = request.app.state
    _customers, chosen = _chosen(request, db, form)
    content = _content(request, db, chosen, language)
    if content is None:
        errors = {"test": _("A test needs a customer with an open invoice.")}
        return editor_page(request, db, user, key, form=form, errors=errors, status_code=400)
    preview = _preview(request, channel, name, content, text)
    if preview.error:
        errors = {"test": preview.error}
        return editor_page(request, db, user, key, form=form, errors=errors, status_code=400)
    domain = state.settings.base_url.split("//")[-1].split(":")[0].split("/")[0]
    test_subject = _("[Test] %(subject)s", subject=preview.subject or _("SMS text"))
    html = str(preview.html) if preview.html is not None else ""
    email = OutgoingEmail(
        to=user.email,
        subject=test_subject,
        text=preview.text,
        html=html or f"<pre>{Markup.escape(preview.text)}</pre>",
        message_id=make_msgid(domain=domain),
    )
    path = f"{PATH}/{channel}/{name}/{language}"
    # Nothing to commit, but the email still leaves only once the response is on its way.
    return RedirectResponse(
        f"{path}?done=test", status_code=303, background=BackgroundTask(_send, state.mailer, email)
    )


def _send(mailer: Mailer, email: OutgoingEmail) -> None:
    try:
        mailer.send(email)
    except OSError:
        log.exception("could not send a test message to %s", email.to)


routes = [
    Route(PATH, messages_list, name="admin_messages"),
    Route(f"{PATH}/{{channel}}/{{name}}/{{language}}", show_message, name="admin_message"),
    Route(
        f"{PATH}/{{channel}}/{{name}}/{{language}}",
        change_message,
        methods=["POST"],
        name="admin_message_change",
    ),
    Route(
        f"{PATH}/{{channel}}/{{name}}/{{language}}/preview",
        live_preview,
        methods=["POST"],
        name="admin_message_preview",
    ),
]
