"""Every kind of timeline event as a sentence in the reader's language, with its details.

``SENTENCES`` is the list of kinds: tests/domain/test_timeline_sentences.py finds every
kind the code records and fails on one missing here, so no stored code such as
``reminder.sent`` ever reaches a screen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from portal import i18n
from portal.i18n import gettext_ as _
from portal.money import format_money

Details = Mapping[str, Any]


def _money(details: Details, key: str = "amount_minor") -> str:
    amount, currency = details.get(key), details.get("currency")
    if not isinstance(amount, int) or not currency:
        return ""
    return format_money(amount, str(currency), i18n.current_locale.get())


def _date(value: Any) -> str:
    """An ISO date or moment stored in the details, as the reader writes dates."""
    if not value:
        return "—"
    try:
        day = dt.datetime.fromisoformat(str(value)).date()
    except ValueError:
        return str(value)
    return i18n.format_date(day, i18n.regional(i18n.current_locale.get()))


def _numbers(details: Details, key: str = "invoices") -> str:
    value = details.get(key) or []
    return ", ".join(str(each) for each in value) if isinstance(value, list) else str(value)


def method_name(method: Any) -> str:
    return {
        "card": _("card"),
        "transfer": _("bank transfer"),
        "direct_debit": _("direct debit"),
        "cheque": _("cheque"),
        "offset": _("offset"),
        "credit_note": _("credit note"),
    }.get(str(method), _("other"))


def channel_name(channel: Any) -> str:
    return {
        "email": _("email"),
        "sms": _("text message"),
        "letter": _("letter"),
        "task": _("call"),
    }.get(str(channel), _("message"))


def message_status_name(status: Any) -> str:
    return {
        "pending": _("planned"),
        "sending": _("being sent"),
        "sent": _("sent"),
        "failed": _("failed"),
        "bounced": _("refused by the recipient"),
        "cancelled": _("not sent"),
    }.get(str(status), str(status))


def _outcome(details: Details) -> str:
    return {
        "cancel": _("invoice cancelled"),
        "credit": _("invoice credited"),
        "adjust": _("invoice amount corrected"),
        "reject": _("rejected"),
    }.get(str(details.get("outcome")), _("closed"))


def _cancel_reason(details: Details) -> str:
    return {
        "customer_paused": _("reminders are paused"),
        "no_recipient": _("no address to send it to"),
        "nothing_due": _("nothing is due any more"),
        "monthly_cap": _("the customer has had as many messages as the monthly limit allows"),
    }.get(str(details.get("reason")), _("nothing left to remind"))


def _amount_suffix(details: Details, key: str = "amount_minor") -> str:
    amount = _money(details, key)
    return f": {amount}" if amount else ""


def _number(details: Details) -> str:
    return str(details.get("number") or "")


Sentence = Callable[[Details], str]

SENTENCES: dict[str, Sentence] = {
    # Links and the debtor's sessions
    "link.issued": lambda d: _("Link issued"),
    "link.emailed": lambda d: _("Link emailed to %(email)s", email=d.get("to", "")),
    "link.opened": lambda d: _("Link opened"),
    "link.refused": lambda d: _("Link refused"),
    "link.revoked": lambda d: _("Every earlier link revoked"),
    "portal.logged_out": lambda d: _("Logged out"),
    "portal.lookup_opened": lambda d: _(
        "Invoice %(number)s opened without a link (number and amount, or reference and postcode)",
        number=_number(d),
    ),
    "portal.lookup_failed": lambda d: _("An attempt to open an invoice without a link failed"),
    "portal.lookup_throttled": lambda d: _("Too many attempts to open an invoice without a link"),
    "portal.session_handed_over": lambda d: _("Account opened from the company's website"),
    # Invoices and credit notes
    "invoice.created": lambda d: (
        _("Invoice %(number)s created", number=_number(d)) + _amount_suffix(d)
    ),
    "invoice.updated": lambda d: _("Invoice %(number)s changed", number=_number(d)),
    "invoice.downloaded": lambda d: _("Invoice %(number)s downloaded", number=_number(d)),
    "invoice.cancelled": lambda d: _("Invoice %(number)s cancelled", number=_number(d)),
    "invoice.credited": lambda d: _(
        "Invoice %(number)s credited: now %(amount)s",
        number=_number(d),
        amount=_money(d, "amount_after_minor"),
    ),
    "invoice.adjusted": lambda d: _(
        "Invoice %(number)s corrected: now %(amount)s",
        number=_number(d),
        amount=_money(d, "amount_after_minor"),
    ),
    "invoice.pdf_attached": lambda d: _("PDF attached to invoice %(number)s", number=_number(d)),
    "invoice.settled_elsewhere": lambda d: (
        _("Invoice %(number)s settled outside Relance", number=_number(d)) + _amount_suffix(d)
    ),
    "credit_note.issued": lambda d: (
        _("Credit note %(number)s recorded", number=_number(d)) + _amount_suffix(d)
    ),
    "credit_note.cancelled": lambda d: _("Credit note %(number)s cancelled", number=_number(d)),
    "credit_note.pdf_attached": lambda d: _(
        "PDF attached to credit note %(number)s", number=_number(d)
    ),
    # Payments
    "payment_request.created": lambda d: _(
        "Payment by %(method)s started for %(invoices)s: %(amount)s",
        method=method_name(d.get("method")),
        invoices=_numbers(d),
        amount=_money(d),
    ),
    "payment.recorded": lambda d: (
        _("Payment recorded")
        + (f": {_money(d)} ({method_name(d.get('method'))})" if _money(d) else "")
    ),
    "payment.processing": lambda d: _("Card payment being processed by the bank"),
    "payment.failed": lambda d: _("Card payment failed") + _amount_suffix(d),
    "payment.cancelled": lambda d: _("Payment cancelled") + _amount_suffix(d),
    "payment.refunded": lambda d: _("Payment refunded") + _amount_suffix(d),
    "payment.charged_back": lambda d: _("Card payment charged back") + _amount_suffix(d),
    "payment.chargeback_opened": lambda d: (
        _("The card holder disputes a payment") + _amount_suffix(d)
    ),
    "payment.chargeback_won": lambda d: _("Card payment dispute won") + _amount_suffix(d),
    "transfer.declared": lambda d: _(
        "Transfer of %(amount)s declared, paid on %(date)s",
        amount=_money(d),
        date=_date(d.get("paid_on")),
    ),
    "transfer.confirmed": lambda d: _(
        "Transfer of %(amount)s received on %(date)s",
        amount=_money(d),
        date=_date(d.get("received_on")),
    ),
    "bank_line.matched": lambda d: _(
        "Bank statement line of %(date)s matched: %(amount)s",
        date=_date(d.get("booked_on")),
        amount=_money(d),
    ),
    "bank_line.not_customer": lambda d: _(
        "Bank statement line of %(date)s marked as not from a customer",
        date=_date(d.get("booked_on")),
    ),
    # Reminders
    "reminder.queued": lambda d: _(
        "Reminder by %(channel)s planned for %(date)s about %(invoices)s",
        channel=channel_name(d.get("channel")),
        date=_date(d.get("send_after")),
        invoices=_numbers(d),
    ),
    "reminder.sent": lambda d: _(
        "Reminder by %(channel)s sent to %(to)s",
        channel=channel_name(d.get("channel")),
        to=d.get("to") or "—",
    ),
    "reminder.retry": lambda d: _(
        "Reminder by %(channel)s could not be sent; next try on %(date)s",
        channel=channel_name(d.get("channel")),
        date=_date(d.get("next_attempt_at")),
    ),
    "reminder.bounced": lambda d: _(
        "Reminder by %(channel)s refused for %(to)s",
        channel=channel_name(d.get("channel")),
        to=d.get("to") or "—",
    ),
    "reminder.failed": lambda d: _(
        "Reminder by %(channel)s given up after retries", channel=channel_name(d.get("channel"))
    ),
    "reminder.cancelled": lambda d: _(
        "Reminder by %(channel)s not sent: %(reason)s",
        channel=channel_name(d.get("channel")),
        reason=_cancel_reason(d),
    ),
    "reminder.task_opened": lambda d: _("Call to make about %(invoices)s", invoices=_numbers(d)),
    "reminder.follow_up_scheduled": lambda d: (
        _("Follow-up call scheduled for %(date)s", date=_date(d.get("on")))
        + (f": {d['note']}" if d.get("note") else "")
    ),
    "reminder.requeued": lambda d: _("Failed reminder queued to be sent again"),
    "reminder.task_done": lambda d: _("Call done") + (f": {d['note']}" if d.get("note") else ""),
    "reminders.paused": lambda d: (
        _("Reminders paused until %(date)s", date=_date(d.get("until")))
        + (f" ({d['number']})" if d.get("number") else "")
    ),
    "reminders.resumed": lambda d: (
        _("Reminders resumed") + (f" ({d['number']})" if d.get("number") else "")
    ),
    # Cases
    "dispute.opened": lambda d: _("Dispute opened on %(invoices)s", invoices=_numbers(d)),
    "dispute.resolved": lambda d: (
        _("Dispute settled: %(outcome)s", outcome=_outcome(d))
        + (f" ({d['number']})" if d.get("number") else "")
    ),
    "dispute.rejected": lambda d: (
        _("Dispute rejected") + (f": {d['note']}" if d.get("note") else "")
    ),
    "plan.proposed": lambda d: _("Payment plan proposed on %(invoices)s", invoices=_numbers(d)),
    "plan.accepted": lambda d: _("Payment plan accepted"),
    "plan.countered": lambda d: _("Counter-proposal sent"),
    "plan.rejected": lambda d: (
        _("Payment plan rejected") + (f": {d['note']}" if d.get("note") else "")
    ),
    "plan.completed": lambda d: _("Payment plan completed"),
    "plan.broken": lambda d: _(
        "Payment plan broken (instalment %(seq)s missed)", seq=d.get("instalment", "")
    ),
    "plan.instalment_due_reminded": lambda d: _(
        "Reminder sent: instalment %(seq)s of %(amount)s due on %(date)s",
        seq=d.get("instalment", ""),
        amount=_money(d),
        date=_date(d.get("due_date")),
    ),
    "plan.instalment_overdue_reminded": lambda d: _(
        "Reminder sent: instalment %(seq)s of %(amount)s was due on %(date)s",
        seq=d.get("instalment", ""),
        amount=_money(d),
        date=_date(d.get("due_date")),
    ),
    "promise.made": lambda d: _("Promise to pay by %(date)s", date=_date(d.get("promised_date"))),
    "promise.kept": lambda d: _("Promise kept"),
    "promise.broken": lambda d: _("Promise not kept"),
    "case.agreed": lambda d: _("Agreement recorded from %(ip)s", ip=d.get("ip") or "—"),
    "case.message": lambda d: _("Message in case"),
    "case.closed": lambda d: _("Case closed") + (f": {d['note']}" if d.get("note") else ""),
    "note.added": lambda d: _("Note: %(text)s", text=d.get("text", "")),
    # Customers and contacts
    "customer.created": lambda d: _("Customer created"),
    "customer.updated": lambda d: _("Customer details changed"),
    "customer.segment_suggested": lambda d: _("Risk segment suggested from payment behaviour"),
    "customer.segment_pinned": lambda d: _("Risk segment set by hand"),
    "customer.segment_unpinned": lambda d: _("Risk segment left to payment behaviour again"),
    "contact.added": lambda d: _("Contact %(name)s added", name=d.get("name", "")),
    "contact.updated": lambda d: _("Contact %(name)s changed", name=d.get("name", "")),
    "contact.removed": lambda d: _("Contact %(name)s removed", name=d.get("name", "")),
    "contact.email_bounced": lambda d: _(
        "Email to %(to)s bounced: other channels are used until the address changes",
        to=d.get("to") or "—",
    ),
    "contact.sms_opted_out": lambda d: _(
        "%(phone)s answered STOP: no more text messages to this number",
        phone=d.get("phone") or "—",
    ),
    # Users, integrations and settings (the company's own history)
    "user.created": lambda d: _("User %(email)s created", email=d.get("email", "")),
    "user.updated": lambda d: _("User changed"),
    "user.logged_in": lambda d: _("Logged in to the back office"),
    "user.logged_out": lambda d: _("Logged out of the back office"),
    "user.logged_out_everywhere": lambda d: _("Logged out of every device"),
    "user.login_failed": lambda d: _("Failed login"),
    "user.login_refused": lambda d: _("Login refused"),
    "user.login_throttled": lambda d: _("Logins slowed down after failures"),
    "user.locked": lambda d: _("Account locked until %(date)s", date=_date(d.get("locked_until"))),
    "user.unlocked": lambda d: _("Account unlocked"),
    "user.totp_enabled": lambda d: _("Two-step login turned on"),
    "user.totp_disabled": lambda d: _("Two-step login turned off"),
    "user.password_changed": lambda d: _("Password changed"),
    "user.password_change_failed": lambda d: _("Password change refused"),
    "user.password_reset": lambda d: _("Password reset"),
    "user.password_reset_sent": lambda d: _("Password reset link sent"),
    "api_key.created": lambda d: _("API key created"),
    "api_key.revoked": lambda d: _("API key revoked"),
    "webhook.registered": lambda d: _("Webhook endpoint added"),
    "webhook.updated": lambda d: _("Webhook endpoint changed"),
    "webhook.disabled": lambda d: _("Webhook endpoint turned off after repeated failures"),
    "webhook.redelivered": lambda d: _("Webhook delivery sent again"),
    "embed.origin_added": lambda d: _("Website allowed to show the portal"),
    "embed.origin_removed": lambda d: _("Website no longer allowed to show the portal"),
    "embed.lookup_switched": lambda d: (
        _("Opening invoices without a link turned on")
        if d.get("enabled")
        else _("Opening invoices without a link turned off")
    ),
    "branding.changed": lambda d: _("Colours, logo or texts changed"),
    "reminders.scenarios_changed": lambda d: (
        _("Reminder scenarios changed") + (f": {d['subject']}" if d.get("subject") else "")
    ),
    "reminders.text_changed": lambda d: _(
        "Reminder text %(template)s (%(channel)s, %(language)s) changed",
        template=d.get("template", ""),
        channel=channel_name(d.get("channel")),
        language=d.get("language", ""),
    ),
    "reminders.text_reset": lambda d: _(
        "Reminder text %(template)s (%(channel)s, %(language)s) back to the default",
        template=d.get("template", ""),
        channel=channel_name(d.get("channel")),
        language=d.get("language", ""),
    ),
    "reminders.policy_changed": lambda d: _("Reminder limits changed (monthly cap, quiet periods)"),
    "reminders.frozen": lambda d: (
        _("Every reminder frozen") + (f": {d['reason']}" if d.get("reason") else "")
    ),
    "reminders.unfrozen": lambda d: _("Reminders running again"),
}


def describe(action: str, details: Details | None) -> str:
    """The sentence for one event in the current language; an unknown kind (a newer
    release's, read by an older one) says only that something happened."""
    sentence = SENTENCES.get(action)
    if sentence is None:
        return _("Other event")
    return sentence(details or {})
