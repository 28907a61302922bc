"""Helpers for web tests: open a portal link like a debtor would."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.customers.models import Customer
from portal.links.service import issue_link
from portal.links.tokens import LinkSigner
from portal.settings import Settings


def signer_for(settings: Settings) -> LinkSigner:
    return LinkSigner(settings.secret_keys, settings.link_max_age_seconds)


def link_for(db: Session, settings: Settings, customer: Customer, **kwargs: object) -> str:
    url = issue_link(db, signer_for(settings), settings.base_url, customer, **kwargs)  # type: ignore[arg-type]
    db.commit()
    return url.removeprefix(settings.base_url)


def open_portal(
    client: TestClient, db: Session, settings: Settings, customer: Customer, **kwargs: object
) -> None:
    response = client.get(link_for(db, settings, customer, **kwargs))
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"
