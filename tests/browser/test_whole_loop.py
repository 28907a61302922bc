"""The whole loop, in Chromium and on the command line: a debtor disputes an invoice; the
next reminder run leaves that invoice out but still reminds about the others; a credit
manager rejects the dispute; the next run reminds about it again."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from portal.demo.seed import DEMO_SCENARIOS_FILE
from tests.browser.conftest import CLI_TIMEOUT_SECONDS, LiveServer, NewContext
from tests.browser.helpers import add_customer, en, is_reminder, open_portal, pfr
from tests.browser.test_cases import MANAGER, dispute, log_in, staff  # noqa: F401 - fixture
from tests.mail_sink import text_body

pytestmark = pytest.mark.browser

# The demo's "standard" scenario (medium risk): an email from one day overdue, a text at
# eight days, an email again at twenty-five days.
NEXT_EMAIL_STEP_DAYS = 23


def portal_cli(server: LiveServer, *args: str, shift_days: int = 0) -> str:
    env = dict(
        server.env,
        PORTAL_REMINDER_SCENARIOS_FILE=str(DEMO_SCENARIOS_FILE),
        PORTAL_CLOCK_SHIFT_DAYS=str(shift_days),
    )
    result = subprocess.run(
        [sys.executable, "-m", "portal.cli", *args],
        env=env,
        cwd=server.workdir,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"portal {args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def reminder_run(server: LiveServer, reference: str, email: str, shift_days: int = 0) -> str:
    """Plan and deliver ``reference``'s reminders; the text of the reminder that arrives.

    Other emails to the debtor (the answer to the dispute) leave the server in the
    background, whenever: only reminders count here."""
    since = server.inbox.mark()
    portal_cli(
        server, "reminders", "run", "--customer", reference, "--send-now", shift_days=shift_days
    )
    portal_cli(server, "worker", "--once", "--no-plan", "--send-now", shift_days=shift_days)
    reminder = server.inbox.wait_for_message(email, since=since, where=is_reminder)
    # The worker hands its emails over before it exits: all of this run's are in.
    assert server.inbox.received(email, since=since, where=is_reminder) == [reminder]
    return text_body(reminder)


def test_a_dispute_pauses_its_invoice_until_it_is_rejected(
    new_context: NewContext,
    staff: LiveServer,  # noqa: F811
) -> None:
    reference, numbers, email = add_customer(staff, "Boucherie Lemaire", due_in_days=(-4, -3, -2))
    disputed, *others = numbers

    debtor = new_context().new_page()
    open_portal(debtor, staff.mint_link(reference), "Boucherie Lemaire")
    dispute(debtor, disputed, "Facture déjà réglée par chèque.")
    expect(debtor.get_by_text(pfr("dispute", "Being reviewed"))).to_be_visible()

    first = reminder_run(staff, reference, email)
    assert disputed not in first
    assert all(number in first for number in others)

    manager = new_context().new_page()
    log_in(manager, MANAGER)
    manager.get_by_role("link", name=re.compile(en("Open disputes"))).click()
    row = manager.get_by_role("row").filter(has_text="Boucherie Lemaire")
    row.get_by_role("link").first.click()
    manager.get_by_label(en("Reject the dispute")).check()
    manager.get_by_label(en("Message to the customer (required when rejecting)")).fill(
        "Aucun chèque reçu à ce jour."
    )
    since = staff.inbox.mark()
    manager.get_by_role("button", name=en("Record the decision")).click()
    expect(manager.get_by_role("status")).to_have_text(en("Done."))
    staff.inbox.wait_for_message(
        email, since=since, where=lambda m: "Aucun chèque reçu à ce jour." in text_body(m)
    )

    later = reminder_run(staff, reference, email, shift_days=NEXT_EMAIL_STEP_DAYS)
    assert disputed in later
