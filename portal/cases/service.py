"""The case operations the portal, the back office and the API call, in one namespace.

Opening cases, deciding on them, and checking that plans and promises are kept. Each
operation lives in the module of its kind of case; this module gathers them so callers
write ``cases.open_dispute(...)`` whatever the kind.
"""

from portal.cases.commitments import CheckResult, check_commitments, close_broken, promise_to_pay
from portal.cases.core import (
    DECIDERS,
    HOLD_SUBJECT,
    LIVE,
    MESSAGE_MAX,
    AgreementInfo,
    CaseError,
    assignee_for,
    live_case_of,
)
from portal.cases.disputes import DISPUTE_OUTCOMES, open_dispute, post_message, resolve_dispute
from portal.cases.payment_plans import (
    NextInstalment,
    PlanPreview,
    accept_counter_proposal,
    counter_propose,
    decide_plan,
    instalment_states,
    next_instalment,
    paid_since_accepted,
    preview_plan,
    propose_plan,
)
from portal.cases.reads import (
    agreements,
    attachment_for_case,
    case_invoices,
    customer_cases,
    debtor_case,
    get_case,
    thread,
)

__all__ = [
    "DECIDERS",
    "DISPUTE_OUTCOMES",
    "HOLD_SUBJECT",
    "LIVE",
    "MESSAGE_MAX",
    "AgreementInfo",
    "CaseError",
    "CheckResult",
    "NextInstalment",
    "PlanPreview",
    "accept_counter_proposal",
    "agreements",
    "assignee_for",
    "attachment_for_case",
    "case_invoices",
    "check_commitments",
    "close_broken",
    "counter_propose",
    "customer_cases",
    "debtor_case",
    "decide_plan",
    "get_case",
    "instalment_states",
    "live_case_of",
    "next_instalment",
    "open_dispute",
    "paid_since_accepted",
    "post_message",
    "preview_plan",
    "promise_to_pay",
    "propose_plan",
    "resolve_dispute",
    "thread",
]
