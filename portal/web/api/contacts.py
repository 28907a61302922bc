"""A customer's contacts, one by one: list, add, read, replace, remove, through the
services of the back office's contact form (``customers.service``): the same checks and
normalisation, the same rule of one primary contact, the same timeline events."""

from __future__ import annotations

from sqlalchemy import select

from portal.api import schemas as s
from portal.api.schemas import FieldProblem
from portal.changes import FieldErrors
from portal.customers import service
from portal.customers.models import Contact, Customer
from portal.customers.validation import ContactFields
from portal.i18n import gettext_ as _
from portal.timeline.models import Actor
from portal.web.api import problems
from portal.web.api.framework import ApiProblem, Call, Result, operation

TAG = "Customers"
CONTACT_FIELDS = list(s.ContactIn.model_fields)


def _customer_named(
    call: Call, reference: str | None, customer_id: int | None, *, in_body: bool
) -> Customer:
    """The customer named by one of reference or id; a wrong name is a problem on it (in a
    body) or a 404 (in a list's query)."""
    if (reference is None) == (customer_id is None):
        detail = _("Give either customer_reference or customer_id.")
        if in_body:
            raise FieldErrors({"customer_reference": detail})
        raise ApiProblem(
            problems.invalid([FieldProblem(detail=detail, parameter="customer_reference")])
        )
    if customer_id is not None:
        customer = call.db.get(Customer, customer_id)
        if customer is None or customer.company_id != call.caller.company_id:
            if in_body:
                raise FieldErrors({"customer_id": _("No customer has this id.")})
            raise ApiProblem(problems.not_found())
        return customer
    assert reference is not None
    found = service.find_by_reference(call.db, call.caller.company_id, reference)
    if found is None:
        if in_body:
            raise FieldErrors({"customer_reference": _("No customer has this reference.")})
        raise ApiProblem(problems.not_found())
    return found


def load_contact(call: Call) -> Contact:
    contact = call.db.scalars(
        select(Contact)
        .join(Customer, Customer.id == Contact.customer_id)
        .where(Contact.id == call.path["contact_id"], Customer.company_id == call.caller.company_id)
    ).one_or_none()
    if contact is None:
        raise ApiProblem(problems.not_found())
    return contact


def _fields(body: s.ContactIn) -> ContactFields:
    return ContactFields(**body.model_dump(include=set(CONTACT_FIELDS)))


def _out(call: Call, contact: Contact) -> s.ContactOut:
    call.db.flush()
    return s.ContactOut.model_validate(contact)


@operation(
    "GET",
    "/contacts",
    summary="A customer's contacts, named by your reference or Relance's id",
    tag=TAG,
    query=s.ContactListQuery,
    ok=(200, s.ContactList),
    names_in_query=True,
)
def list_contacts(call: Call) -> Result:
    query: s.ContactListQuery = call.query
    customer = _customer_named(call, query.customer_reference, query.customer_id, in_body=False)
    contacts = sorted(customer.contacts, key=lambda c: c.id)
    return Result(200, s.ContactList(data=[s.ContactOut.model_validate(c) for c in contacts]))


@operation(
    "POST",
    "/contacts",
    summary="Add a contact to a customer",
    tag=TAG,
    body=s.NewContactIn,
    ok=(201, s.ContactOut),
)
def add_contact(call: Call) -> Result:
    body: s.NewContactIn = call.body
    customer = _customer_named(call, body.customer_reference, body.customer_id, in_body=True)
    contact = service.add_contact(
        call.db, customer, _fields(body), Actor.SYSTEM, call.caller.actor_id
    )
    return Result(201, _out(call, contact))


@operation("GET", "/contacts/{contact_id}", summary="A contact", tag=TAG, ok=(200, s.ContactOut))
def get_contact(call: Call) -> Result:
    return Result(200, s.ContactOut.model_validate(load_contact(call)))


@operation(
    "PUT",
    "/contacts/{contact_id}",
    summary="Replace a contact (fields left out take their defaults)",
    tag=TAG,
    body=s.ContactIn,
    ok=(200, s.ContactOut),
)
def replace_contact(call: Call) -> Result:
    contact = load_contact(call)
    service.update_contact(call.db, contact, _fields(call.body), Actor.SYSTEM, call.caller.actor_id)
    return Result(200, _out(call, contact))


@operation(
    "DELETE",
    "/contacts/{contact_id}",
    summary="Remove a contact (reminders stop going to it)",
    tag=TAG,
    ok=(200, s.ContactRemoved),
)
def remove_contact(call: Call) -> Result:
    contact = load_contact(call)
    removed = s.ContactRemoved(id=contact.id, customer_id=contact.customer_id)
    service.remove_contact(call.db, contact, Actor.SYSTEM, call.caller.actor_id)
    return Result(200, removed)
