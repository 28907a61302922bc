"""Links that do not open the account (expired, tampered, revoked) and asking for a fresh one."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from portal.i18n import language_name
from portal.settings import CompanyIdentity
from tests.browser.conftest import LiveServer, NewContext
from tests.browser.helpers import (
    CLAIRE,
    ENGLISH_CUSTOMER,
    FRENCH_CUSTOMER,
    en,
    expired_link,
    fr,
    link_in,
    open_portal,
    status,
    tampered_link,
)

pytestmark = pytest.mark.browser

INCOMPLETE_LINK_HINT = en(
    "The link may be incomplete: some email programs cut long addresses. "
    "Try copying the whole link, or ask for a new one."
)
# The served company is the default one; Claire writes in French.
FRESH_LINK_TO_CLAIRE = fr(
    "Your new link to your %(company)s account", company=CompanyIdentity().name
)
ON_ITS_WAY = en(
    "If this address is on file, a new link is on its way. It can take a few minutes to arrive."
)


def expect_fresh_link_form(page: Page, language: str) -> None:
    t = fr if language == "fr" else en
    expect(page.get_by_role("textbox", name=t("Your email address"))).to_be_editable()
    expect(page.get_by_role("button", name=t("Email me a new link"))).to_be_enabled()


def expect_no_session(page: Page, language: str = "en") -> None:
    t = fr if language == "fr" else en
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text(t("Payment portal"))
    expect(page.get_by_role("table")).to_have_count(0)


def test_an_expired_link_shows_the_friendly_page_and_a_fresh_link_arrives(
    new_context: NewContext, live_server: LiveServer
) -> None:
    page = new_context().new_page()
    assert status(page.goto(expired_link(live_server, FRENCH_CUSTOMER[0]))) == 410
    # The customer the authentic (if expired) link names writes in French.
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("This link has expired"))
    expect(
        page.get_by_text(
            fr("For your security, links to your account only work for a limited time.")
        )
    ).to_be_visible()
    expect_fresh_link_form(page, "fr")

    since = live_server.inbox.mark()
    page.get_by_role("textbox", name=fr("Your email address")).fill(CLAIRE)
    page.get_by_role("button", name=fr("Email me a new link")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Check your inbox"))
    mail = live_server.inbox.wait_for_message(CLAIRE, subject=FRESH_LINK_TO_CLAIRE, since=since)

    fresh = new_context().new_page()
    open_portal(fresh, link_in(mail), FRENCH_CUSTOMER[1])
    expect_no_session(page)  # the expired link itself opened nothing (English browser)


def test_a_tampered_link_shows_the_invalid_page(
    new_context: NewContext, live_server: LiveServer
) -> None:
    context = new_context()
    page = context.new_page()
    assert status(page.goto(tampered_link(live_server.demo_links[ENGLISH_CUSTOMER[0]]))) == 400
    expect(page.get_by_role("heading", level=1)).to_have_text(en("This link is not valid"))
    expect(page.get_by_text(INCOMPLETE_LINK_HINT)).to_be_visible()
    expect_fresh_link_form(page, "en")
    assert not [c for c in context.cookies() if c["name"] == "relance_session"]
    expect_no_session(page)


def test_a_revoked_link_shows_the_replaced_page_and_ends_earlier_sessions(
    new_context: NewContext, live_server: LiveServer
) -> None:
    reference, name = "C-1007", "Harbour Logistics Pty"  # English; no other test revokes it
    old_link = live_server.mint_link(reference)
    earlier = new_context().new_page()
    open_portal(earlier, old_link, name, "en")

    live_server.revoke_links(reference)

    earlier.reload()  # the session opened before the revocation is over
    expect(earlier.get_by_role("heading", level=1)).to_have_text(en("Payment portal"))
    expect(earlier.get_by_role("table")).to_have_count(0)
    expect(earlier.get_by_text(name)).to_have_count(0)

    assert status(earlier.goto(old_link)) == 410
    expect(earlier.get_by_role("heading", level=1)).to_have_text(en("This link has been replaced"))
    expect(
        earlier.get_by_text(
            en("A newer link has been sent for this account, so this one no longer opens it.")
        )
    ).to_be_visible()
    expect_fresh_link_form(earlier, "en")
    expect_no_session(earlier)

    # Links issued after the revocation work; a short-lived one (--days 1) too.
    open_portal(new_context().new_page(), live_server.mint_link(reference, days=1), name, "en")


def test_the_fresh_link_form_answers_the_same_whether_or_not_the_address_is_known(
    new_context: NewContext, live_server: LiveServer
) -> None:
    unknown = "nobody@unknown-company.example"
    answers = {}
    since = live_server.inbox.mark()
    for address in (unknown, CLAIRE):
        page = new_context().new_page()
        page.goto("/")
        expect(page.get_by_role("heading", level=2, name=en("Need a new link?"))).to_be_visible()
        page.get_by_role("textbox", name=en("Your email address")).fill(address)
        with page.expect_response(lambda r: r.url.endswith("/fresh-link")) as answer:
            page.get_by_role("button", name=en("Email me a new link")).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(en("Check your inbox"))
        expect(page.get_by_role("status")).to_have_text(ON_ITS_WAY)
        answers[address] = (
            answer.value.status,
            page.title(),
            page.get_by_role("main").inner_text(),
        )
        expect_no_session(page)
    assert answers[unknown] == answers[CLAIRE]
    assert answers[unknown][0] == 200

    live_server.inbox.wait_for_message(CLAIRE, subject=FRESH_LINK_TO_CLAIRE, since=since)
    # Nothing can be on its way to the unknown address: the answer carried no email task.
    assert live_server.inbox.received(unknown) == []


def test_the_fresh_link_form_explains_a_malformed_address(page: Page) -> None:
    page.goto("/")
    field = page.get_by_role("textbox", name=en("Your email address"))
    field.fill("not an address")
    with page.expect_response(lambda r: r.url.endswith("/fresh-link")) as answer:
        page.get_by_role("button", name=en("Email me a new link")).click()
    assert answer.value.status == 400
    error = en("Enter an email address such as name@example.com.")
    expect(field).to_have_value("not an address")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description(error)
    expect(field).to_be_focused()


def test_the_language_switch_works_on_a_rejected_link_page(
    page: Page, live_server: LiveServer
) -> None:
    page.goto(expired_link(live_server, FRENCH_CUSTOMER[0]))
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("This link has expired"))
    page.get_by_role("button", name=language_name("en")).click()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_the_language_switch_works_after_asking_for_a_fresh_link(page: Page) -> None:
    page.goto("/")
    page.get_by_role("textbox", name=en("Your email address")).fill("someone@example.org")
    page.get_by_role("button", name=en("Email me a new link")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Check your inbox"))
    with page.expect_response(
        lambda r: r.request.method == "GET" and r.request.resource_type == "document"
    ) as answer:
        page.get_by_role("button", name=language_name("fr")).click()
    assert answer.value.status == 200
    # The answer to a POST has no address of its own: the switch lands on the home page.
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Payment portal"))


def test_cli_revoke_links_runs_on_its_own(live_server: LiveServer) -> None:
    live_server.cli("revoke-links", "C-1009")
