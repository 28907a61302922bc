"""Declared bank transfers waiting for the money, and confirming them, as the back office's
transfer queue does (``web.backoffice_transfers``): the payment is recorded, allocated and
its receipt queued by ``payments.requests.confirm_transfer``."""

from __future__ import annotations

from sqlalchemy import select

from portal import clock
from portal.api import schemas as s
from portal.cases.queues import transfer_queue
from portal.changes import FieldErrors
from portal.customers.models import Customer
from portal.i18n import gettext_ as _
from portal.invoices.models import Invoice
from portal.payments import requests as payment_requests
from portal.payments.models import Payment, PaymentMethod, PaymentRequest
from portal.payments.requests import PaymentRequestError
from portal.timeline.models import Actor
from portal.web.api import problems
from portal.web.api.framework import ApiProblem, Call, Result, operation
from portal.web.api.money import payment_out

TAG = "Payments"


_COPIED = [n for n in s.TransferOut.model_fields if n not in ("reference", "invoice_numbers")]


def transfer_out(request: PaymentRequest, numbers: list[str]) -> s.TransferOut:
    return s.TransferOut.model_validate(
        {name: getattr(request, name) for name in _COPIED}
        | {"reference": payment_requests.reference_of(request), "invoice_numbers": numbers}
    )


@operation(
    "GET",
    "/transfers",
    summary="Bank transfers debtors declared, waiting for the money (oldest first)",
    tag=TAG,
    ok=(200, s.TransferList),
)
def list_transfers(call: Call) -> Result:
    rows = transfer_queue(call.db, call.caller.company_id)
    return Result(
        200, s.TransferList(data=[transfer_out(r.request, r.invoice_numbers) for r in rows])
    )


@operation(
    "POST",
    "/transfers/{transfer_id}/confirm",
    summary="The money of a transfer arrived: record and allocate it, send the receipt",
    tag=TAG,
    body=s.TransferConfirmIn,
    ok=(200, s.TransferConfirmed),
)
def confirm_transfer(call: Call) -> Result:
    body: s.TransferConfirmIn = call.body
    request = call.db.get(PaymentRequest, call.path["transfer_id"])
    customer = call.db.get(Customer, request.customer_id) if request else None
    if (
        request is None
        or customer is None
        or customer.company_id != call.caller.company_id
        or request.method is not PaymentMethod.TRANSFER
    ):
        raise ApiProblem(problems.not_found())
    try:
        recorded = payment_requests.confirm_transfer(
            call.db,
            request,
            amount_minor=body.amount_minor,
            received_on=body.received_on,
            today=clock.today_in(call.state.settings.company.timezone),
            actor=Actor.USER,
            actor_id=str(call.caller.user_id),
        )
    except PaymentRequestError as error:
        if error.key == PaymentRequestError.RECEIVED_IN_FUTURE:
            raise FieldErrors(
                {"received_on": _("The date received cannot be in the future.")}
            ) from None
        if error.key == PaymentRequestError.AMOUNT_NOT_POSITIVE:
            raise FieldErrors(
                {"amount_minor": _("The amount received must be more than zero.")}
            ) from None
        raise ApiProblem(problems.conflict(_("This transfer was already confirmed."))) from None
    payment = call.db.get(Payment, recorded.id)
    assert payment is not None
    numbers = list(
        call.db.scalars(
            select(Invoice.number).where(Invoice.id.in_(request.invoice_ids)).order_by(Invoice.id)
        )
    )
    return Result(
        200,
        s.TransferConfirmed(
            transfer=transfer_out(request, numbers),
            payment=payment_out(call.db, payment, "created"),
        ),
    )
