"""Dates as the reader writes them: a UK customer's English is en-GB, an American's en-US;
the back office writes the month in words, so no colleague misreads 1/12."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal import i18n
from portal.company.models import Company
from portal.settings import Settings
from portal.users.models import Role
from tests.factories import make_customer, make_invoice
from tests.web.embed_helpers import log_in, make_staff
from tests.web.helpers import open_portal

DUE = dt.date(2026, 9, 28)


@pytest.mark.parametrize(
    ("country", "shown", "not_shown"),
    [("GB", "28/09/2026", "9/28/26"), ("US", "9/28/26", "28/09/2026")],
)
def test_an_english_customer_reads_dates_of_their_country(
    client: TestClient,
    db: Session,
    settings: Settings,
    company: Company,
    country: str,
    shown: str,
    not_shown: str,
) -> None:
    customer = make_customer(db, company, language="en", country=country)
    make_invoice(db, customer, number="UK-1", due_date=DUE, issue_date=DUE - dt.timedelta(30))
    open_portal(client, db, settings, customer)
    page = client.get("/").text
    assert "UK-1" in page
    assert shown in page
    assert not_shown not in page


def test_the_back_office_writes_the_month_in_words(
    client: TestClient, db: Session, company: Company
) -> None:
    customer = make_customer(db, company, language="en", country="GB")
    make_invoice(db, customer, number="BO-1", due_date=dt.date(2026, 12, 1))
    log_in(client, make_staff(db, Role.CREDIT_MANAGER))
    client.cookies.set("relance_lang", "en")
    page = client.get(f"/admin/customers/{customer.id}").text
    assert "1 Dec 2026" in page
    assert "12/1/26" not in page
    assert "01/12/2026" not in page


def test_a_language_without_that_country_keeps_its_own_way() -> None:
    assert i18n.regional("en", "GB") == "en_GB"
    assert i18n.regional("fr", "US") == "fr"
    assert i18n.regional("en", "") == "en"
