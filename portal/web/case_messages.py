"""The debtor's case errors and plan verdicts, in the debtor's language."""

from __future__ import annotations

from portal import i18n
from portal.cases import service as cases
from portal.cases.attachments import AttachmentRejected
from portal.cases.models import DisputeReason
from portal.cases.policy import PlanError
from portal.cases.service import CaseError
from portal.i18n import gettext_ as _
from portal.money import format_money
from portal.settings import Settings

DATE_UNREADABLE = "date_unreadable"
AMOUNT_UNREADABLE = "amount_unreadable"


def error_message(key: str, settings: Settings) -> str:
    """The translated sentence for a case, plan or attachment error key."""
    policy = settings.cases
    messages = {
        CaseError.EMPTY_SELECTION: _("Choose at least one invoice."),
        CaseError.UNKNOWN_INVOICE: _(
            "One of the chosen invoices is not open any more. Reload the page and choose again."
        ),
        CaseError.MIXED_CURRENCIES: _(
            "The chosen invoices are in different currencies: choose invoices in one currency."
        ),
        CaseError.ALREADY_IN_CASE: _(
            "One of the chosen invoices is already in a dispute, a payment plan or a promise."
        ),
        CaseError.NOTHING_DUE: _("Nothing remains to be paid on these invoices."),
        CaseError.MESSAGE_REQUIRED: _("Write a message."),
        CaseError.MESSAGE_TOO_LONG: _(
            "The message is too long (%(max)d characters at most).", max=cases.MESSAGE_MAX
        ),
        CaseError.REASON_INVALID: _("Choose a reason."),
        CaseError.DATE_PAST: _("The date cannot be in the past."),
        CaseError.DATE_TOO_FAR: _(
            "The date can be at most %(days)d days from today.", days=policy.promise_max_days
        ),
        CaseError.WRONG_STATE: _("This can no longer be done: the case has changed."),
        CaseError.AMOUNT_INVALID: _("Enter a valid amount."),
        CaseError.INVOICE_NOT_IN_CASE: _("Choose one of the invoices of this case."),
        CaseError.OUTCOME_INVALID: _("Choose a decision."),
        CaseError.TOO_MANY_MESSAGES: _(
            "You have sent many messages in a short time. Please wait an hour before writing "
            "again: our team reads every message."
        ),
        PlanError.COUNT_INVALID: _("Enter a number of instalments between 1 and 60."),
        PlanError.MONTHLY_INVALID: _(
            "Enter a monthly amount that pays everything in at most 60 instalments."
        ),
        PlanError.FIRST_DATE_PAST: _("The first payment date cannot be in the past."),
        PlanError.FIRST_DATE_INVALID: _("Enter the date of the first payment."),
        PlanError.NOTHING_TO_PLAN: _("Nothing remains to be paid on these invoices."),
        AttachmentRejected.TOO_LARGE: _(
            "A file is too large (%(size)s at most).",
            size=_("%(megabytes)d MB", megabytes=policy.attachment_max_bytes // (1024 * 1024) or 1),
        ),
        AttachmentRejected.TOO_MANY: _(
            "Attach %(count)d files at most.", count=policy.attachment_max_count
        ),
        AttachmentRejected.WRONG_TYPE: _("Attach PDF documents or PNG or JPEG images only."),
        AttachmentRejected.EMPTY: _("A file is empty."),
        DATE_UNREADABLE: _("Enter a date."),
        AMOUNT_UNREADABLE: _("Enter an amount, for example 150.00."),
    }
    return messages.get(key, _("Something went wrong. Please try again."))


def violation_message(key: str, settings: Settings, currency: str) -> str:
    policy = settings.cases
    locale = i18n.current_locale.get()
    messages = {
        "too_many_instalments": _(
            "More than %(count)d instalments.", count=policy.plan_max_instalments
        ),
        "too_long": _(
            "The last payment is more than %(days)d days away.", days=policy.plan_max_days
        ),
        "instalment_too_small": _(
            "Instalments under %(amount)s.",
            amount=format_money(policy.plan_min_instalment_minor, currency, locale),
        ),
        "total_too_high": _(
            "A total above %(amount)s.",
            amount=format_money(policy.plan_max_total_minor, currency, locale),
        ),
        "risk_not_allowed": _("Your account's plans are agreed with our team."),
        "currency_not_allowed": _("Plans in this currency are agreed with our team."),
    }
    return messages.get(key, key)


def reason_labels() -> dict[str, str]:
    return {
        DisputeReason.NOT_RECEIVED: _("I did not receive the goods or the service"),
        DisputeReason.WRONG_AMOUNT: _("The amount is wrong"),
        DisputeReason.NOT_AS_AGREED: _("The goods or the service are not as agreed"),
        DisputeReason.ALREADY_PAID: _("I have already paid"),
        DisputeReason.OTHER: _("Another reason"),
    }
