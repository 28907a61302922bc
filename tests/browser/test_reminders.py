"""Reminders end to end: the worker emails a reminder to the SMTP sink, its link opens that
customer's portal in Chromium; the outbox viewer and the call-task queue pass axe."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from portal.demo.seed import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, DEMO_SCENARIOS_FILE
from tests.browser.conftest import CLI_TIMEOUT_SECONDS, LiveServer
from tests.browser.helpers import (
    assert_no_axe_violations,
    demo_account,
    en,
    is_reminder,
    open_portal,
)
from tests.mail_sink import text_body

pytestmark = pytest.mark.browser

# C-1002 (medium risk, the standard scenario): its most overdue invoice is a few weeks late,
# so the first run sends one email about it.
REMINDED = demo_account("C-1002")
LINK = re.compile(r"http://127\.0\.0\.1:\d+/l/\S+")


def _portal(server: LiveServer, *args: str) -> str:
    env = dict(server.env, PORTAL_REMINDER_SCENARIOS_FILE=str(DEMO_SCENARIOS_FILE))
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


@pytest.fixture(scope="module")
def reminder_sent(live_server: LiveServer) -> str:
    """Plan C-1002's run, let a worker deliver it; the link from the email that arrived."""
    since = live_server.inbox.mark()
    plan = _portal(live_server, "reminders", "plan", "--customer", REMINDED.reference)
    assert REMINDED.reference in plan
    assert "email" in plan
    assert "1 messages enqueued" in _portal(
        live_server, "reminders", "run", "--customer", REMINDED.reference, "--send-now"
    )
    _portal(live_server, "worker", "--once", "--no-plan", "--send-now")
    # The contact may get other emails meanwhile (answers to cases): only reminders count.
    message = live_server.inbox.wait_for_message(REMINDED.email, since=since, where=is_reminder)
    assert live_server.inbox.received(REMINDED.email, since=since, where=is_reminder) == [message]
    assert REMINDED.overdue[0] in text_body(message)
    found = LINK.search(text_body(message))
    assert found, text_body(message)
    return found.group(0)


def test_a_reminder_link_opens_that_customers_portal(page: Page, reminder_sent: str) -> None:
    open_portal(page, reminder_sent, REMINDED.name)
    expect(page.get_by_role("link", name=re.compile(REMINDED.overdue[0]))).to_be_visible()


def test_the_outbox_viewer_and_the_task_queue_are_accessible(
    page: Page, axe: Axe, reminder_sent: str, live_server: LiveServer
) -> None:
    # The outbox shows live portal links: only to a logged-in back-office user.
    page.goto("/dev/outbox")
    page.get_by_label(en("Email address")).fill(DEMO_ADMIN_EMAIL)
    page.get_by_label(en("Password")).fill(DEMO_ADMIN_PASSWORD)
    page.get_by_role("button", name=en("Log in")).click()
    expect(page.get_by_role("heading", level=1, name=en("Outbox"))).to_be_visible()
    assert_no_axe_violations(axe, page, "outbox")
    page.get_by_role("link", name=re.compile("Atelier|F2026|Relance", re.I)).first.click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert_no_axe_violations(axe, page, "outbox message")
    page.goto("/admin/tasks")
    expect(page.get_by_role("heading", level=1, name=en("Call tasks"))).to_be_visible()
    assert_no_axe_violations(axe, page, "call tasks")
