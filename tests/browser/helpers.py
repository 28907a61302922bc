"""Helpers for the browser tests: reading emails, link forgery, translated labels, axe."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING

from playwright.sync_api import FrameLocator, Locator, Page, Response, expect
from sqlalchemy import select

from portal import clock
from portal.company.models import Company
from portal.customers.models import Contact, Customer
from portal.db import make_engine, make_session_factory, transaction
from portal.demo.portfolio import invoice_number
from portal.demo.seed import DEMO_PROFILES
from portal.i18n import current_locale, pgettext_, translate_in
from portal.invoices.models import Invoice, InvoiceStatus
from portal.links.tokens import LinkClaims, LinkSigner, decode_claims
from tests.conftest import TEST_SECRET
from tests.mail_sink import text_body

if TYPE_CHECKING:
    from axe_playwright_python.sync_playwright import Axe

    from tests.browser.conftest import LiveServer

LINK_MAX_AGE_DAYS = 45


@dataclass(frozen=True)
class DemoAccount:
    """A demo customer as its portal shows it, read from the seed's figures
    (portal/demo): invoice numbers in the portal's order (by due date)."""

    reference: str
    name: str
    language: str
    email: str
    paid: list[str]
    overdue: list[str]  # open, past their due date
    upcoming: list[str]  # open, not yet due
    stored_pdf: set[str]  # those with a PDF stored by the seed (others are generated)

    @property
    def open(self) -> list[str]:
        return self.overdue + self.upcoming

    @property
    def generated_pdf(self) -> list[str]:
        return [n for n in self.open if n not in self.stored_pdf]


def _accounts() -> list[DemoAccount]:
    accounts = []
    for index, profile in enumerate(DEMO_PROFILES, start=1):
        numbers = [
            (invoice_number(index, position), spec)
            for position, spec in enumerate(profile.invoices, start=1)
        ]
        ordered = sorted(numbers, key=lambda pair: (pair[1].due_in, pair[0]))
        accounts.append(
            DemoAccount(
                profile.reference,
                profile.name,
                profile.language,
                profile.email,
                paid=[n for n, spec in ordered if spec.paid_percent == 100],
                overdue=[n for n, spec in ordered if spec.paid_percent < 100 and spec.due_in < 0],
                upcoming=[n for n, spec in ordered if spec.paid_percent < 100 and spec.due_in >= 0],
                stored_pdf={n for n, spec in ordered if spec.pdf},
            )
        )
    return accounts


DEMO_ACCOUNTS = _accounts()


def demo_account(reference: str) -> DemoAccount:
    return next(a for a in DEMO_ACCOUNTS if a.reference == reference)


def pick_account(wanted: Callable[[DemoAccount], bool]) -> DemoAccount:
    """The first demo customer with the wanted history (tests say what they need, not who)."""
    found = next((a for a in DEMO_ACCOUNTS if wanted(a)), None)
    assert found is not None, "no demo customer has that history"
    return found


# The French account the portal tests read: something paid, two or more overdue (the first
# with a generated PDF, a later one with a stored PDF) and something not yet due. Its demo
# link is printed by `portal demo`, like the English one's (a paid invoice and open ones).
FRENCH = pick_account(
    lambda a: (
        a.language == "fr"
        and bool(a.paid)
        and len(a.overdue) >= 2
        and bool(a.upcoming)
        and a.overdue[0] not in a.stored_pdf
        and any(n in a.stored_pdf for n in a.overdue[1:])
    )
)
ENGLISH = pick_account(lambda a: a.language == "en" and bool(a.paid) and bool(a.open))
FRENCH_CUSTOMER = (FRENCH.reference, FRENCH.name)
ENGLISH_CUSTOMER = (ENGLISH.reference, ENGLISH.name)
CLAIRE = FRENCH.email  # the French account's contact


def fr(message: str, **variables: object) -> str:
    """``message`` as the French pages show it (from the live catalog)."""
    return translate_in("fr", message, **variables)


def en(message: str, **variables: object) -> str:
    return translate_in("en", message, **variables)


def is_reminder(message: EmailMessage) -> bool:
    """A reminder from the outbox: its Message-ID is ``<reminder-ID.CYCLE@domain>``."""
    return str(message["Message-ID"]).startswith("<reminder-")


def link_in(message: EmailMessage) -> str:
    found = re.search(r"http://\S+/l/[\w.-]+", text_body(message))
    assert found, text_body(message)
    return found.group(0)


# --- links signed in-process with the server's secret ------------------------------------


def claims_of(url: str) -> LinkClaims:
    token = url.rsplit("/l/", 1)[1]
    return decode_claims(token.split(".", 1)[0])


def expired_link(server: LiveServer, reference: str = FRENCH.reference) -> str:
    """A one-day link signed two days ago (frozen clock); the server checks the real one."""
    claims = claims_of(server.demo_links[reference])
    signer = LinkSigner((TEST_SECRET,), LINK_MAX_AGE_DAYS * 86400)
    clock.freeze(dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    try:
        token = signer.sign(LinkClaims(claims.customer_id, claims.link_version, None, 1))
    finally:
        clock.freeze(None)
    return f"{server.url}/l/{token}"


def tampered_link(url: str) -> str:
    """One character of the signature changed: its first, as the last only carries padding bits."""
    head, signature = url.rsplit(".", 1)
    return f"{head}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


# --- pages ---------------------------------------------------------------------------------


def open_portal(page: Page, link: str, customer_name: str, language: str = "fr") -> None:
    """Open a link like a debtor: it lands on the account, the token gone from the URL."""
    page.goto(link)
    base = link.split("/l/", 1)[0]
    expect(page).to_have_url(f"{base}/")
    greeting = translate_in(language, "Hello %(name)s", name=customer_name)
    expect(page.get_by_role("heading", level=1)).to_have_text(greeting)


def status(response: Response | None) -> int:
    """The HTTP status of the document a navigation loaded."""
    assert response is not None, "the navigation loaded no document"
    return response.status


def invoice_links(page: Page) -> list[str]:
    """The invoice numbers linked from the page's invoice table, in order."""
    return page.get_by_role("table").get_by_role("link").all_inner_texts()


def assert_no_axe_violations(axe: Axe, page: Page, what: str) -> None:
    results = axe.run(page)
    assert results.violations_count == 0, f"{what} ({page.url}):\n{results.generate_report()}"


def add_customer(
    server: LiveServer,
    name: str,
    language: str = "fr",
    due_in_days: tuple[int, ...] = (-20, -5, 15),
) -> tuple[str, list[str], str]:
    """A customer with open invoices due in ``due_in_days`` (overdue when negative) in the
    served database, so a test can change it without touching the demo customers; returns
    its reference, its invoice numbers (oldest due first) and its contact's email."""
    tag = uuid.uuid4().hex[:6].upper()
    engine = make_engine(server.env["PORTAL_DATABASE_URL"])
    try:
        with transaction(make_session_factory(engine)) as db:
            company = db.scalars(select(Company)).one()
            customer = Customer(
                company_id=company.id,
                reference=f"P-{tag}",
                name=name,
                language=language,
                timezone="Europe/Paris",
                link_version=1,
                created_at=clock.now(),
            )
            customer.contacts.append(
                Contact(name="Compta", email=f"{tag.lower()}@debtor.example", is_primary=True)
            )
            db.add(customer)
            db.flush()
            today = clock.now().date()
            numbers = []
            amounts = (45_000, 12_550, 30_000, 8_000, 21_000)
            for n, due_in in enumerate(due_in_days):
                amount = amounts[n % len(amounts)]
                number = f"P{tag}-{n + 1}"
                db.add(
                    Invoice(
                        company_id=company.id,
                        customer_id=customer.id,
                        number=number,
                        issue_date=today + dt.timedelta(days=due_in - 30),
                        due_date=today + dt.timedelta(days=due_in),
                        currency="EUR",
                        amount_minor=amount,
                        paid_minor=0,
                        status=InvoiceStatus.OPEN,
                        created_at=clock.now(),
                    )
                )
                numbers.append(number)
            return customer.reference, numbers, f"{tag.lower()}@debtor.example"
    finally:
        engine.dispose()


def pay_button(scope: Page | FrameLocator, method: str, language: str = "fr") -> Locator:
    """The button that pays by ``method`` ("card" or "transfer"): it states the amount,
    "Payer 575,50 € par virement"."""
    message = "Pay %(amount)s by card" if method == "card" else "Pay %(amount)s by bank transfer"
    pattern = re.escape(translate_in(language, message, amount="\x00")).replace("\x00", ".+")
    return scope.get_by_role("button", name=re.compile(f"^{pattern}$"))


def wait_for_pay_total(scope: Page | FrameLocator, amount: str) -> None:
    """After a tick changes, wait for the pay buttons htmx swaps in (they move)."""
    expect(scope.locator("#pay-actions")).to_contain_text(amount)


def pfr(context: str, message: str) -> str:
    """``message`` said of a ``context`` (a case's kind) in French: "Refusée" for a dispute."""
    token = current_locale.set("fr")
    try:
        return pgettext_(context, message)
    finally:
        current_locale.reset(token)
