"""The API's request and response bodies (pydantic): they validate what comes in, shape
what goes out, and are the schemas of ``/api/v1/openapi.json`` (``web.api.openapi``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Reference = Annotated[str, Field(min_length=1, max_length=64)]
Number = Annotated[str, Field(min_length=1, max_length=64)]
Currency = Annotated[str, Field(min_length=3, max_length=3, examples=["EUR"])]
Minor = Annotated[int, Field(ge=1, le=10**13, description="Amount in minor units (cents)")]
Id = Annotated[int, Field(ge=1, le=2**62)]


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("NUL character")
    if isinstance(value, list):
        for item in value:
            _no_nul(item)
    return value


class In(BaseModel):
    """A request body or query: unknown fields and NUL characters are refused."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _text_without_nul(cls, value: Any) -> Any:
        return _no_nul(value)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- customers --------------------------------------------------------------------------


class ContactIn(In):
    name: Annotated[str, Field(max_length=200)] = ""
    email: Annotated[str | None, Field(max_length=254)] = None
    phone: Annotated[str | None, Field(max_length=32)] = None
    role: Literal["billing", "accounting", "management", "purchasing", "other"] = "billing"
    is_primary: bool = False
    receives_reminders: bool = True
    accepts_email: bool = True
    accepts_sms: bool = True
    accepts_calls: bool = True
    accepts_letters: bool = True


class ContactOut(Out):
    id: int
    customer_id: int
    name: str
    email: str | None
    phone: str | None
    role: str
    is_primary: bool
    receives_reminders: bool
    accepts_email: bool
    accepts_sms: bool
    accepts_calls: bool
    accepts_letters: bool


class NewContactIn(ContactIn):
    """A contact added to the customer named by ``customer_reference`` (yours) or
    ``customer_id`` (Relance's): give one of them. The first contact becomes the primary one."""

    customer_reference: Reference | None = None
    customer_id: Id | None = None


class ContactListQuery(In):
    customer_reference: Reference | None = Field(None, description="Your reference, or:")
    customer_id: Id | None = Field(None, description="Relance's id of the customer.")


class ContactList(Out):
    data: list[ContactOut]


class ContactRemoved(Out):
    id: int
    customer_id: int
    removed: Literal[True] = True


class CustomerIn(In):
    """A customer, upserted by ``reference``: the body is the whole customer (fields left
    out take their defaults). ``contacts`` are upserted by email, else phone, else name."""

    reference: Reference
    name: Annotated[str, Field(min_length=1, max_length=200)]
    siren: Annotated[str | None, Field(max_length=20)] = None
    siret: Annotated[str | None, Field(max_length=20)] = None
    vat_number: Annotated[str | None, Field(max_length=20)] = None
    address_line1: Annotated[str, Field(max_length=200)] = ""
    address_line2: Annotated[str, Field(max_length=200)] = ""
    postcode: Annotated[str, Field(max_length=16)] = ""
    city: Annotated[str, Field(max_length=100)] = ""
    country: Annotated[str, Field(min_length=2, max_length=2)] = "FR"
    language: Annotated[str, Field(min_length=2, max_length=8)] = "fr"
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "Europe/Paris"
    risk_segment: Literal["low", "medium", "high"] = "medium"
    strategic: bool = False
    contacts: Annotated[list[ContactIn], Field(max_length=50)] = []


class CustomerOut(Out):
    id: int
    reference: str
    name: str
    siren: str | None
    siret: str | None
    vat_number: str | None
    address_line1: str
    address_line2: str
    postcode: str
    city: str
    country: str
    language: str
    timezone: str
    risk_segment: str
    strategic: bool
    reminders_paused_until: dt.date | None
    contacts: list[ContactOut]
    created_at: dt.datetime
    updated_at: dt.datetime | None


class CustomerUpserted(Out):
    outcome: Literal["created", "changed", "unchanged"]
    customer: CustomerOut


# --- invoices ---------------------------------------------------------------------------


class InvoiceIn(In):
    """An invoice, upserted by ``number``."""

    number: Number
    customer_reference: Reference
    issue_date: dt.date
    due_date: dt.date
    currency: Currency
    amount_minor: Minor


class InvoiceOut(Out):
    id: int
    number: str
    customer_id: int
    issue_date: dt.date
    due_date: dt.date
    currency: str
    amount_minor: int
    paid_minor: int
    remaining_minor: int
    status: Literal["open", "paid", "cancelled"]
    reminders_paused_until: dt.date | None
    created_at: dt.datetime
    updated_at: dt.datetime | None


class InvoiceUpserted(Out):
    outcome: Literal["created", "changed", "unchanged"]
    invoice: InvoiceOut


class CancelIn(In):
    reason: Annotated[str, Field(max_length=500)] = ""


class CreditNoteIn(In):
    """A credit note, upserted by ``number``; applied to ``applies_to`` first."""

    number: Number
    customer_reference: Reference
    issue_date: dt.date
    currency: Currency
    amount_minor: Minor
    applies_to: Annotated[list[Number], Field(max_length=100)] = []
    reason: Annotated[str, Field(max_length=500)] = ""


class CreditNoteOut(Out):
    id: int
    number: str
    customer_id: int
    issue_date: dt.date
    currency: str
    amount_minor: int
    status: Literal["issued", "cancelled"]
    applies_to: list[str]
    outcome: Literal["created", "changed", "unchanged"]


# --- payments ---------------------------------------------------------------------------


class PaymentIn(In):
    """A payment received elsewhere; recorded once per (customer, reference)."""

    customer_reference: Reference
    amount_minor: Minor
    currency: Currency
    method: Literal["cheque", "transfer", "offset", "other"]
    reference: Annotated[str, Field(min_length=1, max_length=100)]
    received_on: dt.date
    invoice_numbers: Annotated[list[Number], Field(max_length=200)] = []


class AllocationOut(Out):
    invoice_number: str
    amount_minor: int


class PaymentOut(Out):
    id: int
    customer_id: int
    amount_minor: int
    currency: str
    method: str
    received_at: dt.datetime
    allocations: list[AllocationOut]
    outcome: Literal["created", "unchanged"]


# --- portal links -----------------------------------------------------------------------


class PortalLinkIn(In):
    """A signed portal link for the customer, optionally limited to some invoices."""

    customer_reference: Reference
    invoice_numbers: Annotated[list[Number], Field(max_length=100)] = []
    lifetime_days: Annotated[int | None, Field(ge=1, le=365)] = None


class PortalLinkOut(Out):
    url: str
    expires_at: dt.datetime


# --- cases, holds, timeline ---------------------------------------------------------------


class CaseOut(Out):
    id: int
    customer_id: int
    kind: Literal["dispute", "plan", "promise"]
    status: str
    currency: str
    total_minor: int
    invoice_numbers: list[str]
    promised_date: dt.date | None
    answer_by: dt.date | None
    resolution: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class DecisionIn(In):
    """Accept or reject a plan under review; reject a dispute (the note tells the debtor
    why). A dispute's other outcomes: ``/cases/{case_id}/resolution``."""

    decision: Literal["accept", "reject"]
    note: Annotated[str, Field(max_length=5000)] = ""


class CounterProposalIn(In):
    """Other terms for a plan under review: a first payment date and either a number of
    monthly instalments (``count``) or a monthly amount (``monthly_minor``)."""

    first_date: dt.date
    count: Annotated[int | None, Field(ge=1, le=60)] = None
    monthly_minor: Minor | None = None
    note: Annotated[str, Field(max_length=5000)] = ""


class ResolutionIn(In):
    """How an open dispute ends: ``cancel`` the invoice, ``credit`` ``amount_minor`` off
    it, ``adjust`` it to ``amount_minor``, or ``reject`` the dispute (``note`` says why).
    ``invoice_number`` names the invoice of the case it changes."""

    outcome: Literal["cancel", "credit", "adjust", "reject"]
    invoice_number: Number | None = None
    amount_minor: Annotated[int | None, Field(ge=0, le=10**13)] = None
    note: Annotated[str, Field(max_length=5000)] = ""


class MessageIn(In):
    """A message to the debtor in the case's thread (emailed to them with a link)."""

    message: Annotated[str, Field(min_length=1, max_length=5000)]


class CloseIn(In):
    """A broken plan or promise has been dealt with: ``note`` says how."""

    note: Annotated[str, Field(min_length=1, max_length=5000)]


class TransferOut(Out):
    id: int
    customer_id: int
    currency: str
    amount_minor: int
    status: str
    reference: str
    invoice_numbers: list[str]
    declared_at: dt.datetime | None
    declared_amount_minor: int | None
    declared_paid_on: dt.date | None


class TransferList(Out):
    data: list[TransferOut]


class TransferConfirmIn(In):
    """The money of a declared transfer arrived: how much, and when."""

    amount_minor: Minor
    received_on: dt.date


class TransferConfirmed(Out):
    transfer: TransferOut
    payment: PaymentOut


class PauseIn(In):
    """Pause reminders through ``until`` (the whole customer, or one invoice)."""

    until: dt.date
    invoice_number: Number | None = None


class ResumeIn(In):
    invoice_number: Number | None = None


class HoldOut(Out):
    customer_id: int
    invoice_number: str | None
    reminders_paused_until: dt.date | None


class TimelineEventOut(Out):
    id: int
    occurred_at: dt.datetime
    actor: str
    action: str
    subject_type: str | None
    subject_id: str | None
    details: dict[str, object]


# --- lists and problems -------------------------------------------------------------------


class ListQuery(In):
    updated_since: dt.datetime | None = Field(
        None, description="Only what changed at or after this time (ISO 8601, with offset)."
    )
    cursor: Annotated[str | None, Field(max_length=200)] = Field(
        None, description="From the previous page's next_cursor."
    )
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class InvoiceListQuery(ListQuery):
    customer_id: Id | None = None
    status: Literal["open", "paid", "cancelled"] | None = None


class CaseListQuery(ListQuery):
    customer_id: Id | None = None
    kind: Literal["dispute", "plan", "promise"] | None = None


class TimelineQuery(In):
    cursor: Annotated[str | None, Field(max_length=200)] = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class CustomerPage(Out):
    data: list[CustomerOut]
    next_cursor: str | None


class InvoicePage(Out):
    data: list[InvoiceOut]
    next_cursor: str | None


class CasePage(Out):
    data: list[CaseOut]
    next_cursor: str | None


class TimelinePage(Out):
    data: list[TimelineEventOut]
    next_cursor: str | None


class FieldProblem(Out):
    detail: str
    pointer: str | None = None  # JSON pointer into the body, e.g. "#/amount_minor"
    parameter: str | None = None  # a query or path parameter


class Problem(Out):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldProblem] = []
