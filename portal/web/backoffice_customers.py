"""Back office data entry for customers and their contacts: create, edit, remove.

Credit managers and admins write, viewers get the 403 page (``require_role``). Every form
is a plain POST answered by a 303 to the customer's page, or by the form again (400) with
each message next to its field; the services in ``portal.customers.service`` check the
values and write the timeline.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import i18n
from portal.backoffice import queries
from portal.changes import FieldErrors
from portal.customers import service
from portal.customers.models import Contact, ContactRole, Customer, RiskSegment
from portal.customers.service import ContactFields, CustomerFields
from portal.customers.validation import country_names, timezones
from portal.i18n import gettext_ as _
from portal.reminders.editor.versions import current
from portal.reminders.scenarios import ScenarioError
from portal.settings import Settings
from portal.timeline.models import Actor
from portal.users import service as users
from portal.users.models import Role, User
from portal.web.backoffice import EDITORS, PREFIX, _context, _not_found, require_role
from portal.web.forms import Form
from portal.web.rendering import render, unit_of_work

FORM_FIELDS = 60

CUSTOMER_TEXT = (
    "reference",
    "name",
    "siren",
    "siret",
    "vat_number",
    "address_line1",
    "address_line2",
    "postcode",
    "city",
    "country",
    "language",
    "timezone",
    "risk_segment",
    "reminder_scenario",
)
CONTACT_FLAGS = (
    "is_primary",
    "receives_reminders",
    "accepts_email",
    "accepts_sms",
    "accepts_calls",
    "accepts_letters",
)


def scenario_choices(db: Session, company_id: int, settings: Settings) -> list[tuple[str, str]]:
    """(name, label) of the reminder scenarios in use (the editor's current version)."""
    try:
        now = current(db, company_id, settings.reminders.scenarios_file)
    except ScenarioError:
        return []
    return [(name, str(body["label"])) for name, body in now.document["scenarios"].items()]


def segment_labels() -> dict[str, str]:
    return {
        RiskSegment.LOW: _("Low risk"),
        RiskSegment.MEDIUM: _("Medium risk"),
        RiskSegment.HIGH: _("High risk"),
    }


def role_labels() -> dict[str, str]:
    return {
        ContactRole.BILLING: _("Billing"),
        ContactRole.ACCOUNTING: _("Accounts payable"),
        ContactRole.MANAGEMENT: _("Management"),
        ContactRole.PURCHASING: _("Purchasing"),
        ContactRole.OTHER: _("Other"),
    }


def _owners(db: Session) -> list[User]:
    return [
        u
        for u in users.list_users(db)
        if u.is_active and u.role in (Role.ADMIN, Role.CREDIT_MANAGER)
    ]


def _strings(values: dict[str, Any]) -> dict[str, str]:
    """Field values as a form shows them: booleans as "1" or "", None as ""."""
    shown = {}
    for key, value in values.items():
        if isinstance(value, bool):
            shown[key] = "1" if value else ""
        else:
            shown[key] = "" if value is None else str(value)
    return shown


# --- customers --------------------------------------------------------------------------------


def _read_customer(form: Form) -> CustomerFields:
    text = {name: form.text(name) for name in CUSTOMER_TEXT}
    return CustomerFields(
        **text,
        strategic=form.flag("strategic"),
        owner_user_id=form.integer("owner_user_id"),
    )


def _customer_page(
    request: Request,
    db: Session,
    user: User,
    customer: Customer | None,
    values: dict[str, str],
    errors: dict[str, str],
) -> Response:
    settings: Settings = request.app.state.settings
    locale = i18n.current_locale.get()
    return render(
        request,
        "backoffice/customer_form.html",
        _context(
            user,
            customer=customer,
            values=values,
            errors=errors,
            language_choices=[(code, i18n.language_name(code)) for code in i18n.SUPPORTED],
            countries=country_names(locale),
            timezones=[(zone, zone) for zone in timezones()],
            segments=list(segment_labels().items()),
            scenarios=[
                ("", _("By risk segment")),
                *scenario_choices(db, request.app.state.company_id, settings),
            ],
            owners=[("", _("Nobody"))] + [(str(u.id), u.name or u.email) for u in _owners(db)],
        ),
        status_code=400 if errors else 200,
    )


def load_customer(request: Request, db: Session) -> Customer | None:
    """The customer named by the path, of this company (with its contacts), or None."""
    return queries.get_customer(
        db, request.app.state.company_id, request.path_params["customer_id"]
    )


def editor_and_customer(request: Request, db: Session) -> tuple[User, Customer] | Response:
    """A credit manager or admin and the customer the path names; else the response to
    return (login page, 403 for a viewer, 404 for another company's or no customer)."""
    user = require_role(request, db, *EDITORS)
    if isinstance(user, Response):
        return user
    customer = load_customer(request, db)
    if customer is None:
        return _not_found(request, user)
    return user, customer


def customer_new(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        settings: Settings = request.app.state.settings
        defaults = CustomerFields(
            reference="",
            name="",
            country=settings.company.country or "FR",
            language=settings.default_language,
            timezone=settings.company.timezone,
            owner_user_id=user.id if user.role is Role.CREDIT_MANAGER else None,
        )
        return _customer_page(request, db, user, None, _strings(dataclasses.asdict(defaults)), {})


def customer_edit(request: Request) -> Response:
    with unit_of_work(request) as db:
        found = editor_and_customer(request, db)
        if isinstance(found, Response):
            return found
        user, customer = found
        values = _strings(dataclasses.asdict(service.customer_fields(customer)))
        return _customer_page(request, db, user, customer, values, {})


async def customer_save(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=FORM_FIELDS)
    return await run_in_threadpool(_customer_save, request, form)


def _customer_save(request: Request, data: FormData) -> Response:
    state = request.app.state
    creating = "customer_id" not in request.path_params
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        customer = None if creating else load_customer(request, db)
        if not creating and customer is None:
            return _not_found(request, user)
        form = Form(data)
        fields = _read_customer(form)
        scenarios = {
            name for name, _label in scenario_choices(db, state.company_id, state.settings)
        } or None
        try:
            if customer is None:
                customer = service.create_customer(
                    db, state.company_id, fields, Actor.USER, str(user.id), scenarios=scenarios
                )
                notice = "customer-created"
            else:
                service.update_customer(
                    db, customer, fields, Actor.USER, str(user.id), scenarios=scenarios
                )
                notice = "customer-saved"
        except FieldErrors as refused:  # raised before anything was written
            return _customer_page(
                request, db, user, customer, form.values, form.with_errors(refused.errors)
            )
        customer_id = customer.id
    return RedirectResponse(f"{PREFIX}/customers/{customer_id}?done={notice}", status_code=303)


# --- contacts ---------------------------------------------------------------------------------


def _read_contact(form: Form) -> ContactFields:
    return ContactFields(
        name=form.text("name", 200),
        email=form.optional("email", 254),
        phone=form.optional("phone", 40),
        role=form.text("role", 16),
        **{flag: form.flag(flag) for flag in CONTACT_FLAGS},
    )


def _contact_page(
    request: Request,
    user: User,
    customer: Customer,
    contact: Contact | None,
    values: dict[str, str],
    errors: dict[str, str],
) -> Response:
    return render(
        request,
        "backoffice/contact_form.html",
        _context(
            user,
            customer=customer,
            contact=contact,
            values=values,
            errors=errors,
            roles=list(role_labels().items()),
        ),
        status_code=400 if errors else 200,
    )


def _find_contact(customer: Customer, request: Request) -> Contact | None:
    wanted = request.path_params.get("contact_id")
    return next((c for c in customer.contacts if c.id == wanted), None)


def contact_form(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        customer = load_customer(request, db)
        contact = _find_contact(customer, request) if customer is not None else None
        if customer is None or ("contact_id" in request.path_params and contact is None):
            return _not_found(request, user)
        fields = service.contact_fields(contact) if contact else ContactFields()
        return _contact_page(
            request, user, customer, contact, _strings(dataclasses.asdict(fields)), {}
        )


async def contact_save(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=FORM_FIELDS)
    return await run_in_threadpool(_contact_save, request, form)


def _contact_save(request: Request, data: FormData) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        customer = load_customer(request, db)
        contact = _find_contact(customer, request) if customer is not None else None
        if customer is None or ("contact_id" in request.path_params and contact is None):
            return _not_found(request, user)
        form = Form(data)
        fields = _read_contact(form)
        try:
            if contact is None:
                service.add_contact(db, customer, fields, Actor.USER, str(user.id))
            else:
                service.update_contact(db, contact, fields, Actor.USER, str(user.id))
        except FieldErrors as refused:  # raised before anything was written
            return _contact_page(
                request, user, customer, contact, form.values, form.with_errors(refused.errors)
            )
        customer_id = customer.id
    return RedirectResponse(
        f"{PREFIX}/customers/{customer_id}?done=contact-saved#contacts", status_code=303
    )


def contact_remove(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, *EDITORS)
        if isinstance(user, Response):
            return user
        customer = load_customer(request, db)
        contact = _find_contact(customer, request) if customer is not None else None
        if customer is None or contact is None:
            return _not_found(request, user)
        service.remove_contact(db, contact, Actor.USER, str(user.id))
        customer_id = customer.id
    return RedirectResponse(
        f"{PREFIX}/customers/{customer_id}?done=contact-removed#contacts", status_code=303
    )


CUSTOMER = f"{PREFIX}/customers/{{customer_id:int}}"
CONTACT = f"{CUSTOMER}/contacts/{{contact_id:int}}"

routes = [
    Route(f"{PREFIX}/customers/new", customer_new, methods=["GET"], name="admin_customer_new"),
    Route(f"{PREFIX}/customers/new", customer_save, methods=["POST"], name="admin_customer_create"),
    Route(f"{CUSTOMER}/edit", customer_edit, methods=["GET"], name="admin_customer_edit"),
    Route(f"{CUSTOMER}/edit", customer_save, methods=["POST"], name="admin_customer_save"),
    Route(f"{CUSTOMER}/contacts/new", contact_form, methods=["GET"], name="admin_contact_new"),
    Route(f"{CUSTOMER}/contacts/new", contact_save, methods=["POST"], name="admin_contact_add"),
    Route(f"{CONTACT}/edit", contact_form, methods=["GET"], name="admin_contact_edit"),
    Route(f"{CONTACT}/edit", contact_save, methods=["POST"], name="admin_contact_save"),
    Route(f"{CONTACT}/remove", contact_remove, methods=["POST"], name="admin_contact_remove"),
]
