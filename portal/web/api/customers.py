"""Customers and their contacts: upsert by the company's reference, read, list by change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.api import schemas as s
from portal.changes import FieldErrors
from portal.customers import service
from portal.customers.models import Customer
from portal.customers.validation import ContactFields, CustomerFields
from portal.timeline.models import Actor
from portal.web.api import problems
from portal.web.api.framework import ApiProblem, Call, Result, operation
from portal.web.api.pagination import changed_at, listed

TAG = "Customers"


def customer_out(customer: Customer) -> s.CustomerOut:
    return s.CustomerOut.model_validate(customer)


def load_customer(call: Call, customer_id: int) -> Customer:
    customer = call.db.get(Customer, customer_id)
    if customer is None or customer.company_id != call.caller.company_id:
        raise ApiProblem(problems.not_found())
    return customer


def by_reference(call: Call, reference: str, field: str = "customer_reference") -> Customer:
    customer = service.find_by_reference(call.db, call.caller.company_id, reference)
    if customer is None:
        from portal.i18n import gettext_ as _

        raise FieldErrors({field: _("No customer has this reference.")})
    return customer


@operation(
    "POST",
    "/customers",
    summary="Create or update a customer by its reference (and upsert its contacts)",
    tag=TAG,
    body=s.CustomerIn,
    ok=(200, s.CustomerUpserted),
    also=(201,),
)
def upsert_customer(call: Call) -> Result:
    body: s.CustomerIn = call.body
    company_id = call.caller.company_id
    existing = service.find_by_reference(call.db, company_id, body.reference)
    base = (
        service.customer_fields(existing)
        if existing is not None
        else CustomerFields(reference=body.reference, name=body.name)
    )
    values: dict[str, Any] = body.model_dump(exclude={"contacts"})
    fields = base.replace(**values)
    customer, outcome = service.upsert_customer(
        call.db, company_id, fields, Actor.SYSTEM, call.caller.actor_id
    )
    contacts_changed = False
    for index, contact in enumerate(body.contacts):
        try:
            _row, contact_outcome = service.upsert_contact(
                call.db,
                customer,
                ContactFields(**contact.model_dump()),
                Actor.SYSTEM,
                call.caller.actor_id,
            )
        except FieldErrors as errors:
            raise FieldErrors(
                {f"contacts/{index}/{name}": message for name, message in errors.errors.items()}
            ) from None
        contacts_changed = contacts_changed or contact_outcome is not service.Outcome.UNCHANGED
    if contacts_changed and outcome is service.Outcome.UNCHANGED:
        outcome = service.Outcome.CHANGED
    call.db.flush()
    call.db.refresh(customer, ["contacts"])
    status = 201 if outcome is service.Outcome.CREATED else 200
    return Result(
        status, s.CustomerUpserted(outcome=outcome.value, customer=customer_out(customer))
    )


@operation(
    "GET", "/customers/{customer_id}", summary="A customer", tag=TAG, ok=(200, s.CustomerOut)
)
def get_customer(call: Call) -> Result:
    return Result(200, customer_out(load_customer(call, call.path["customer_id"])))


@operation(
    "GET",
    "/customers",
    summary="Customers, in the order they changed (cursor pagination)",
    tag=TAG,
    query=s.ListQuery,
    ok=(200, s.CustomerPage),
)
def list_customers(call: Call) -> Result:
    query: s.ListQuery = call.query
    base = (
        select(Customer)
        .where(Customer.company_id == call.caller.company_id)
        .options(selectinload(Customer.contacts))
    )
    rows, cursor = listed(
        call.db,
        base,
        query,
        changed=changed_at(Customer.updated_at, Customer.created_at),
        row_id=Customer.id,
    )
    return Result(200, s.CustomerPage(data=[customer_out(c) for c in rows], next_cursor=cursor))
