"""A case's status in words, agreeing with its kind.

French labels take the gender of the noun they qualify: "Contestation refusée" (a dispute,
feminine), "Échéancier refusé" (a payment plan, masculine), "Promesse tenue". Each label
is therefore translated with its kind as context (``pgettext``), the staff's words for the
back office and the debtor's for the portal.
"""

from __future__ import annotations

from collections.abc import Callable

from portal.i18n import pgettext_

Label = Callable[[], str]

STAFF: dict[tuple[str, str], Label] = {
    ("dispute", "open"): lambda: pgettext_("dispute", "Open"),
    ("dispute", "resolved"): lambda: pgettext_("dispute", "Resolved"),
    ("dispute", "rejected"): lambda: pgettext_("dispute", "Rejected"),
    ("dispute", "closed"): lambda: pgettext_("dispute", "Closed"),
    ("plan", "review"): lambda: pgettext_("plan", "To review"),
    ("plan", "countered"): lambda: pgettext_("plan", "Counter-proposal sent"),
    ("plan", "active"): lambda: pgettext_("plan", "Running"),
    ("plan", "completed"): lambda: pgettext_("plan", "Completed"),
    ("plan", "broken"): lambda: pgettext_("plan", "Broken"),
    ("plan", "rejected"): lambda: pgettext_("plan", "Rejected"),
    ("plan", "closed"): lambda: pgettext_("plan", "Closed"),
    ("promise", "active"): lambda: pgettext_("promise", "Running"),
    ("promise", "completed"): lambda: pgettext_("promise", "Kept"),
    ("promise", "broken"): lambda: pgettext_("promise", "Broken"),
    ("promise", "closed"): lambda: pgettext_("promise", "Closed"),
}

DEBTOR: dict[tuple[str, str], Label] = {
    ("dispute", "open"): lambda: pgettext_("dispute", "Being reviewed"),
    ("dispute", "resolved"): lambda: pgettext_("dispute", "Resolved"),
    ("dispute", "rejected"): lambda: pgettext_("dispute", "Declined"),
    ("dispute", "closed"): lambda: pgettext_("dispute", "Closed"),
    ("plan", "review"): lambda: pgettext_("plan", "Waiting for our answer"),
    ("plan", "countered"): lambda: pgettext_("plan", "New terms proposed to you"),
    ("plan", "active"): lambda: pgettext_("plan", "Running"),
    ("plan", "completed"): lambda: pgettext_("plan", "Completed"),
    ("plan", "broken"): lambda: pgettext_("plan", "Not kept"),
    ("plan", "rejected"): lambda: pgettext_("plan", "Declined"),
    ("plan", "closed"): lambda: pgettext_("plan", "Closed"),
    ("promise", "active"): lambda: pgettext_("promise", "Running"),
    ("promise", "completed"): lambda: pgettext_("promise", "Kept"),
    ("promise", "broken"): lambda: pgettext_("promise", "Not kept"),
    ("promise", "closed"): lambda: pgettext_("promise", "Closed"),
}


def _name(table: dict[tuple[str, str], Label], status: object, kind: object) -> str:
    label = table.get((str(kind), str(status))) or table.get((str(kind), "closed"))
    return label() if label else str(status)


def staff_status_name(status: object, kind: object) -> str:
    return _name(STAFF, status, kind)


def debtor_status_name(status: object, kind: object) -> str:
    return _name(DEBTOR, status, kind)
