"""The reminder editor in Chromium: a new scenario, a refused step with its message next to
the field, a step moved with the buttons, the dates preview swapped in by htmx, and a
message text previewed live (refused when it tries to escape); every page passes axe.

It changes a scenario of its own only and saves no message text, so the other browser
tests' reminders stay the demo's."""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.browser.helpers import assert_no_axe_violations, en
from tests.browser.test_cases import ADMIN, log_in

pytestmark = pytest.mark.browser


def _step(page: Page, number: int):  # type: ignore[no-untyped-def]
    return page.get_by_role("listitem").filter(
        has=page.get_by_role("heading", name=re.compile(rf"^Step {number}:"))
    )


def test_the_scenario_editor_and_its_dates_preview(page: Page, axe: Axe) -> None:
    log_in(page, *ADMIN)
    page.get_by_role("link", name=en("Reminders"), exact=True).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Reminder scenarios"))
    assert_no_axe_violations(axe, page, "scenarios")

    page.get_by_label(en("Short name (lowercase letters, digits, dashes)")).fill("browser-check")
    page.get_by_label(en("Name shown")).fill("Browser check")
    page.get_by_role("button", name=en("Create the scenario")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Browser check")

    # Step 3 on the day of step 2: refused, the message next to the field.
    third = _step(page, 3)
    second_days = _step(page, 2).get_by_label(en("Days from the due date (negative: before it)"))
    days = second_days.input_value()
    third.get_by_label(en("Days from the due date (negative: before it)")).fill(days)
    third.get_by_role("button", name=en("Save this step")).click()
    field = _step(page, 3).get_by_label(en("Days from the due date (negative: before it)"))
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(_step(page, 3).locator(".field-error")).to_contain_text("is on the same day")
    assert_no_axe_violations(axe, page, "a refused step")

    # Move step 3 earlier: it takes step 2's day.
    before = _step(page, 3).get_by_label(en("Channel")).input_value()
    _step(page, 3).get_by_role("button", name=en("Move earlier")).click()
    expect(page.get_by_role("status")).to_contain_text("Saved as version")
    expect(_step(page, 2).get_by_label(en("Channel"))).to_have_value(before)
    expect(_step(page, 2).get_by_role("heading")).to_contain_text(f"day {int(days):+d}")

    # The dates a real customer would get, swapped in when another customer is chosen.
    dates = page.locator("#dates")
    customer = dates.get_by_label(en("Customer"))
    options = customer.locator("option")
    expect(options.first).to_be_attached()
    second_name = options.nth(1).inner_text().split(" (")[0]
    customer.select_option(index=1)
    expect(dates).to_contain_text(f"If {second_name} paid nothing")
    expect(dates.get_by_role("table")).to_be_visible()
    assert_no_axe_violations(axe, page, "a scenario with its dates")

    page.get_by_role("link", name=en("History")).click()
    expect(page.get_by_role("table")).to_contain_text("Moved the step browser-check/")
    assert_no_axe_violations(axe, page, "history")


def test_a_message_text_is_previewed_live_and_an_escape_is_refused(page: Page, axe: Axe) -> None:
    log_in(page, *ADMIN)
    page.goto("/admin/messages")
    assert_no_axe_violations(axe, page, "message texts")
    page.get_by_role("link", name="reminder_overdue").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("reminder_overdue")
    preview = page.locator("#preview")
    expect(preview).to_contain_text(en("Preview of the default text"))
    name = page.get_by_label(en("Preview with the customer")).locator("option:checked")
    customer = name.inner_text().split(" (")[0]

    body = page.get_by_label(en("Text"), exact=True)
    body.fill("Checking {{ customer_name }}: {{ total_due }}")
    expect(preview).to_contain_text(f"Checking {customer}:")
    expect(preview.get_by_role("heading")).to_have_text(en("Preview"))
    assert_no_axe_violations(axe, page, "a live preview")

    body.fill("{{ ''.__class__ }}")
    expect(preview).to_contain_text("“__class__” is refused")

    # Without waiting for htmx: the Preview button posts the form and shows the same.
    page.get_by_role("button", name=en("Preview"), exact=True).click()
    expect(page.locator("#f-body-error")).to_contain_text("“__class__” is refused")
    expect(body).to_have_attribute("aria-invalid", "true")
    assert_no_axe_violations(axe, page, "a refused text")
