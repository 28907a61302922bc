"""Decisions on cases, as the back office's case page offers them (``web.casework``):
accept, reject or counter a plan, resolve or reject a dispute, reply to the debtor, close a
broken plan or promise. The same service calls, the same emails to the debtor after the
commit, the same timeline events and so the same outgoing webhooks."""

from __future__ import annotations

from collections.abc import Callable

from starlette.background import BackgroundTask

from portal import clock
from portal.api import schemas as s
from portal.cases import notify
from portal.cases import service as cases
from portal.cases.models import Case, CaseKind
from portal.cases.policy import PlanError
from portal.cases.service import CaseError
from portal.changes import FieldErrors
from portal.customers.models import Customer
from portal.i18n import gettext_ as _
from portal.invoices.editing import find_invoice
from portal.timeline.models import Actor
from portal.users.models import User
from portal.web.api import problems
from portal.web.api.cases import TAG, case_out, load_case
from portal.web.api.framework import ApiProblem, Call, Result, operation
from portal.web.case_messages import error_message

# A case error about one field of the body is that field's problem (422); the others say
# the case is not in the state the decision needs (409).
FIELD_OF_ERROR = {
    CaseError.MESSAGE_REQUIRED: "note",
    CaseError.MESSAGE_TOO_LONG: "note",
    CaseError.AMOUNT_INVALID: "amount_minor",
    CaseError.INVOICE_NOT_IN_CASE: "invoice_number",
    CaseError.OUTCOME_INVALID: "outcome",
    PlanError.COUNT_INVALID: "count",
    PlanError.MONTHLY_INVALID: "monthly_minor",
    PlanError.FIRST_DATE_INVALID: "first_date",
    PlanError.FIRST_DATE_PAST: "first_date",
}


def refusal(call: Call, error: CaseError, note_field: str = "note") -> Exception:
    field = FIELD_OF_ERROR.get(error.key)
    if error.key == CaseError.MESSAGE_REQUIRED:
        return FieldErrors({note_field: _("Say in the note why: the debtor is told.")})
    message = error_message(error.key, call.state.settings)
    if field is not None:
        return FieldErrors({note_field if field == "note" else field: message})
    if error.key == CaseError.WRONG_STATE:
        message = _("This case is not waiting for this decision.")
    return ApiProblem(problems.conflict(message))


def decide(
    call: Call,
    act: Callable[[Case, User], str | None],
    note: str,
    note_field: str = "note",
) -> Result:
    """``act`` on the company's case, in the name of the admin who created the key; it
    returns the event the debtor is emailed about (after the commit), if any."""
    case = load_case(call)
    user = call.db.get(User, call.caller.user_id)
    assert user is not None
    try:
        event = act(case, user)
    except CaseError as error:
        raise refusal(call, error, note_field) from None
    state = call.state
    mail = None
    if event is not None:
        mail = notify.debtor_email(
            call.db,
            state.signer,
            state.settings,
            case,
            event,
            note=note,
            actor=Actor.USER,
            actor_id=str(user.id),
        )
    call.db.flush()
    task = (
        BackgroundTask(notify.send_all, state.templates, state.mailer, state.settings, [mail])
        if mail is not None
        else None
    )
    return Result(200, case_out(call, case), background=task)


@operation(
    "POST",
    "/cases/{case_id}/decision",
    summary="Accept or reject a plan under review, or reject a dispute",
    tag=TAG,
    body=s.DecisionIn,
    ok=(200, s.CaseOut),
)
def decide_case(call: Call) -> Result:
    body: s.DecisionIn = call.body
    accept = body.decision == "accept"

    def act(case: Case, user: User) -> str:
        if case.kind is CaseKind.PLAN:
            cases.decide_plan(call.db, case, user, accept=accept, note=body.note)
            return "plan_accepted" if accept else "plan_rejected"
        if case.kind is CaseKind.DISPUTE and not accept:
            cases.resolve_dispute(call.db, case, user, outcome="reject", note=body.note)
            return "dispute_rejected"
        raise CaseError(CaseError.WRONG_STATE)

    return decide(call, act, body.note)


@operation(
    "POST",
    "/cases/{case_id}/counter-proposal",
    summary="Offer other terms for a plan under review (the debtor accepts them in the portal)",
    tag=TAG,
    body=s.CounterProposalIn,
    ok=(200, s.CaseOut),
)
def counter_propose(call: Call) -> Result:
    body: s.CounterProposalIn = call.body
    if (body.count is None) == (body.monthly_minor is None):
        raise FieldErrors({"count": _("Give either count or monthly_minor.")})

    def act(case: Case, user: User) -> str:
        customer = call.db.get(Customer, case.customer_id)
        assert customer is not None
        cases.counter_propose(
            call.db,
            case,
            user,
            first_date=body.first_date,
            today=clock.today_in(customer.timezone),
            count=body.count,
            monthly_minor=body.monthly_minor,
            note=body.note,
        )
        return "plan_countered"

    return decide(call, act, body.note)


def _invoice_id(call: Call, case: Case, number: str | None) -> int | None:
    if number is None:
        return None
    invoice = find_invoice(call.db, call.caller.company_id, number)
    if invoice is None or invoice.id not in case.invoice_ids:
        raise CaseError(CaseError.INVOICE_NOT_IN_CASE)
    return invoice.id


@operation(
    "POST",
    "/cases/{case_id}/resolution",
    summary="End an open dispute: cancel, credit or adjust one of its invoices, or reject it",
    tag=TAG,
    body=s.ResolutionIn,
    ok=(200, s.CaseOut),
)
def resolve_dispute(call: Call) -> Result:
    body: s.ResolutionIn = call.body

    def act(case: Case, user: User) -> str:
        cases.resolve_dispute(
            call.db,
            case,
            user,
            outcome=body.outcome,
            note=body.note,
            invoice_id=_invoice_id(call, case, body.invoice_number),
            amount_minor=body.amount_minor,
        )
        return "dispute_rejected" if body.outcome == "reject" else "dispute_resolved"

    return decide(call, act, body.note)


@operation(
    "POST",
    "/cases/{case_id}/messages",
    summary="Write to the debtor in the case's thread (they are emailed a link to it)",
    tag=TAG,
    body=s.MessageIn,
    ok=(200, s.CaseOut),
)
def reply(call: Call) -> Result:
    body: s.MessageIn = call.body

    def act(case: Case, user: User) -> str:
        cases.post_message(call.db, case, body.message, author=Actor.USER, user=user)
        return "reply"

    return decide(call, act, body.message, note_field="message")


@operation(
    "POST",
    "/cases/{case_id}/close",
    summary="Close a broken plan or promise that has been dealt with (the debtor is not told)",
    tag=TAG,
    body=s.CloseIn,
    ok=(200, s.CaseOut),
)
def close_case(call: Call) -> Result:
    body: s.CloseIn = call.body

    def act(case: Case, user: User) -> None:
        cases.close_broken(call.db, case, user, body.note)

    return decide(call, act, body.note)
