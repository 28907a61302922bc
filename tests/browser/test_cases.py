"""Cases in a real browser: a debtor disputes, proposes plans, and credit managers decide.

Each test works on its own demo customer, so the shared server's state never couples them:
C-1002 disputes, C-1004 (low risk) a plan within policy, C-1009 (high risk) a plan outside
policy, C-1007 the authorization checks; each on that customer's first overdue invoice.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import CLI_TIMEOUT_SECONDS, LiveServer, NewContext
from tests.browser.helpers import demo_account, en, fr, open_portal, pfr, status
from tests.mail_sink import text_body

pytestmark = pytest.mark.browser

STAFF_PASSWORD = "browser-staff-password"
MANAGER = "manager@relance.example"
VIEWER = "viewer@relance.example"
ADMIN = ("admin@relance.example", "relance-demo-admin")  # the demo seed's administrator
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
DISPUTING = demo_account("C-1002")
PLAN_WITHIN_POLICY = demo_account("C-1004")
PLAN_OUTSIDE_POLICY = demo_account("C-1009")
AUTHORIZATION = demo_account("C-1007")


def create_user(server: LiveServer, email: str, role: str) -> None:
    env = {**server.env, "PORTAL_NEW_USER_PASSWORD": STAFF_PASSWORD}
    result = subprocess.run(
        [sys.executable, "-m", "portal.cli", "user", "create", "--email", email, "--role", role],
        env=env,
        cwd=server.workdir,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0 or "already exists" in result.stderr, result.stderr


@pytest.fixture(scope="session")
def staff(live_server: LiveServer) -> LiveServer:
    """A credit manager and a viewer on the live server (the demo has its admin)."""
    create_user(live_server, MANAGER, "credit_manager")
    create_user(live_server, VIEWER, "viewer")
    return live_server


def log_in(page: Page, email: str, password: str = STAFF_PASSWORD) -> None:
    page.goto("/admin/login")
    page.get_by_label(en("Email address")).fill(email)
    page.get_by_label(en("Password"), exact=True).fill(password)
    page.get_by_role("button", name=en("Log in")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Dashboard"))


def debtor(page: Page, server: LiveServer, reference: str, name: str, language: str) -> None:
    open_portal(page, server.mint_link(reference), name, language)


def post_status(page: Page, path: str, data: dict[str, str]) -> int:
    """A same-origin form POST from the page (as a form would send it); its HTTP status."""
    return int(
        page.evaluate(
            """async ([path, data]) => (await fetch(path, {
                method: "POST", body: new URLSearchParams(data), redirect: "manual"})).status""",
            [path, data],
        )
    )


def dispute(page: Page, invoice: str, message: str, lang: str = "fr") -> None:
    t = fr if lang == "fr" else en
    page.get_by_role("link", name=invoice, exact=True).click()
    page.get_by_role("link", name=t("Dispute this invoice")).click()
    expect(page.get_by_role("checkbox", name=re.compile(invoice))).to_be_checked()
    page.get_by_label(t("Reason")).select_option(label=t("The amount is wrong"))
    page.get_by_label(t("Message"), exact=True).fill(message)
    page.get_by_label(t("Documents (optional)")).set_input_files(
        [{"name": "delivery-note.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    page.get_by_role("button", name=t("Send the dispute")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(t("Dispute"))


def test_a_debtor_opens_a_dispute_and_a_credit_manager_rejects_it(
    new_context: NewContext, staff: LiveServer
) -> None:
    page = new_context().new_page()
    debtor(page, staff, DISPUTING.reference, DISPUTING.name, "fr")
    dispute(page, DISPUTING.overdue[0], "Le prix convenu était de 500 €.")
    expect(page.get_by_text(pfr("dispute", "Being reviewed"))).to_be_visible()
    expect(page.get_by_text("Le prix convenu était de 500 €.")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="delivery-note.pdf").click()
    assert download.value.suggested_filename == "delivery-note.pdf"
    case_url = page.url

    manager = new_context().new_page()
    log_in(manager, MANAGER)
    manager.get_by_role("link", name=re.compile(en("Open disputes"))).click()
    manager.get_by_role("row").filter(has_text=DISPUTING.name).get_by_role("link").first.click()
    expect(manager.get_by_text("Le prix convenu était de 500 €.")).to_be_visible()
    manager.get_by_label(en("Reject the dispute")).check()
    manager.get_by_label(en("Message to the customer (required when rejecting)")).fill(
        "Le devis signé indique 640 €."
    )
    since = staff.inbox.mark()
    manager.get_by_role("button", name=en("Record the decision")).click()
    expect(manager.get_by_role("status")).to_have_text(en("Done."))
    expect(manager.get_by_text(en("Rejected"), exact=True).first).to_be_visible()

    page.goto(case_url)
    expect(page.get_by_text(pfr("dispute", "Declined"))).to_be_visible()  # "Refusée"
    expect(
        page.get_by_text(fr("Our answer: %(note)s", note="Le devis signé indique 640 €."))
    ).to_be_visible()
    staff.inbox.wait_for_message(
        DISPUTING.email,
        since=since,
        where=lambda m: "Le devis signé indique 640 €." in text_body(m),
    )


def _plan(page: Page, invoice: str, count: str) -> None:
    page.get_by_role("link", name=en("Ask for a payment plan")).first.click()
    page.get_by_role("checkbox", name=re.compile(invoice)).check()
    page.get_by_label(en("Number of instalments")).fill(count)


def test_a_plan_within_policy_is_accepted_at_once(
    new_context: NewContext, staff: LiveServer
) -> None:
    page = new_context().new_page()
    debtor(page, staff, PLAN_WITHIN_POLICY.reference, PLAN_WITHIN_POLICY.name, "en")
    _plan(page, PLAN_WITHIN_POLICY.overdue[0], "3")
    # htmx shows the verdict as the form changes, before anything is sent.
    expect(
        page.get_by_text(en("Within our usual terms: the plan is accepted as soon as you confirm."))
    ).to_be_visible()
    expect(page.get_by_role("table", name=en("Your schedule")).get_by_role("row")).to_have_count(4)
    since = staff.inbox.mark()
    page.get_by_role("button", name=en("Propose this plan")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Payment plan"))
    expect(page.get_by_text(en("Running"), exact=True)).to_be_visible()
    expect(page.get_by_role("table", name=en("Schedule")).get_by_role("row")).to_have_count(4)
    expect(
        page.get_by_text(
            re.compile(
                re.escape(
                    en("Next instalment: %(amount)s by %(date)s.", amount="X", date="Y").split("X")[
                        0
                    ]
                )
            )
        )
    ).to_be_visible()
    staff.inbox.wait_for_message(PLAN_WITHIN_POLICY.email, subject="is accepted", since=since)


def test_a_plan_outside_policy_is_countered_and_accepted_by_the_debtor(
    new_context: NewContext, staff: LiveServer
) -> None:
    page = new_context().new_page()
    debtor(page, staff, PLAN_OUTSIDE_POLICY.reference, PLAN_OUTSIDE_POLICY.name, "en")
    _plan(page, PLAN_OUTSIDE_POLICY.overdue[0], "4")
    expect(page.get_by_text(re.compile(en("Outside our usual terms")))).to_be_visible()
    expect(page.get_by_text(en("Your account's plans are agreed with our team."))).to_be_visible()
    # The preview follows the typed count after a short delay; clicking before it lands would
    # hit a button that the longer schedule is about to push down.
    expect(page.get_by_role("table", name=en("Your schedule")).get_by_role("row")).to_have_count(5)
    page.get_by_role("button", name=en("Propose this plan")).click()
    expect(page.get_by_text(en("Waiting for our answer"))).to_be_visible()
    expect(page.get_by_text(en("Our answer by"))).to_be_visible()
    case_url = page.url

    manager = new_context().new_page()
    log_in(manager, MANAGER)
    manager.get_by_role("link", name=re.compile(en("Plan proposals"))).click()
    manager.get_by_role("row").filter(has_text=PLAN_OUTSIDE_POLICY.name).get_by_role(
        "link"
    ).first.click()
    manager.get_by_label(en("Number of instalments")).fill("2")
    manager.get_by_role("textbox", name=en("Message to the customer (optional)")).last.fill(
        "Two months, not four."
    )
    manager.get_by_role("button", name=en("Send the counter-proposal")).click()
    expect(manager.get_by_text(en("Counter-proposal sent"), exact=True).first).to_be_visible()

    page.goto(case_url)
    expect(page.get_by_role("heading", name=en("The terms we propose"))).to_be_visible()
    expect(page.get_by_text("Two months, not four.")).to_be_visible()
    page.get_by_role("button", name=en("Accept these terms")).click()
    expect(page.get_by_text(en("Running"), exact=True)).to_be_visible()
    expect(page.get_by_role("table", name=en("Schedule")).get_by_role("row")).to_have_count(3)


def test_authorization_debtor_viewer_and_credit_manager(
    new_context: NewContext, staff: LiveServer
) -> None:
    page = new_context().new_page()
    debtor(page, staff, AUTHORIZATION.reference, AUTHORIZATION.name, "en")
    dispute(page, AUTHORIZATION.overdue[0], "Wrong pallet count.", "en")
    case_id = page.url.rstrip("/").rsplit("/", 1)[1]
    # The debtor's session does not open the back office.
    page.goto("/admin/queues/disputes")
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Log in to the back office"))

    viewer = new_context().new_page()
    log_in(viewer, VIEWER)
    viewer.goto(f"/admin/cases/{case_id}")
    expect(viewer.get_by_text("Wrong pallet count.")).to_be_visible()
    expect(viewer.get_by_role("button", name=en("Record the decision"))).to_have_count(0)
    assert post_status(viewer, f"/admin/cases/{case_id}/resolve", {"outcome": "cancel"}) == 403
    viewer.goto(f"/admin/cases/{case_id}")
    expect(viewer.get_by_text(en("Open"), exact=True).first).to_be_visible()

    manager = new_context().new_page()
    log_in(manager, MANAGER)
    expect(manager.get_by_role("link", name=en("Settings"), exact=True)).to_have_count(0)
    expect(manager.get_by_role("link", name=en("Users"))).to_have_count(0)
    assert status(manager.goto("/admin/users")) == 403
    data = {"email": "intruder@relance.example", "role": "admin", "password": "x" * 20}
    assert post_status(manager, "/admin/users", data) == 403


def test_repeated_wrong_passwords_are_slowed_then_made_to_wait(
    new_context: NewContext, staff: LiveServer
) -> None:
    email = f"throttled-{os.getpid()}@relance.example"
    create_user(staff, email, "viewer")
    page = new_context().new_page()
    page.goto("/admin/login")
    error = page.get_by_role("alert")

    def submit(password: str) -> None:
        page.get_by_label(en("Email address")).fill(email)
        page.get_by_label(en("Password"), exact=True).fill(password)
        with page.expect_navigation():
            page.get_by_role("button", name=en("Log in")).click()

    waiting = re.compile(r"Too many attempts\. Try again in (\d+) seconds?\.")
    for _attempt in range(5):
        started = time.monotonic()
        submit("not the password at all")
        expect(error).to_be_visible()
        assert time.monotonic() - started >= 0.9  # every failure waits about a second
    # More failures make the next attempt wait, longer each time (2 s, 4 s, 8 s...): go on
    # until the page says a wait long enough to try the right password within it.
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "never asked to wait"
        submit("not the password at all")
        said = waiting.search(error.inner_text())
        if said and int(said.group(1)) >= 4:
            break
    submit(STAFF_PASSWORD)  # even the right password waits, and it says so
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Log in to the back office"))
    expect(error).to_contain_text(waiting)
    # Once the wait is over the right password opens the back office: nothing was locked.
    while page.get_by_role("heading", level=1).inner_text() != en("Dashboard"):
        assert time.monotonic() < deadline + 30, "still refused after the wait"
        submit(STAFF_PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Dashboard"))
