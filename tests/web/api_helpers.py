"""Fixtures for API tests: an admin, keys of both scopes, and a client that sends them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.api import keys
from portal.company.models import Company
from portal.users.models import Role, User
from portal.users.service import create_user


@pytest.fixture
def api_admin(db: Session, company: Company) -> User:
    user = create_user(db, "integrator-admin@relance.example", Role.ADMIN, "x" * 20)
    db.flush()
    return user


@pytest.fixture
def write_key(db: Session, company: Company, api_admin: User) -> str:
    secret = keys.create_key(db, company.id, name="ERP", scope="write", user_id=api_admin.id)
    db.commit()
    return secret.secret


@pytest.fixture
def read_key(db: Session, company: Company, api_admin: User) -> str:
    secret = keys.create_key(db, company.id, name="BI", scope="read", user_id=api_admin.id)
    db.commit()
    return secret.secret


@pytest.fixture
def api(client: TestClient, write_key: str) -> Iterator[TestClient]:
    """The app's client with the write key and no browser headers (like curl)."""
    client.headers.pop("Sec-Fetch-Site", None)
    client.headers["Authorization"] = f"Bearer {write_key}"
    return client


def customer_body(reference: str = "C-001", **values: Any) -> dict[str, Any]:
    return {"reference": reference, "name": f"Client {reference}", **values}


def invoice_body(number: str, customer_reference: str = "C-001", **values: Any) -> dict[str, Any]:
    return {
        "number": number,
        "customer_reference": customer_reference,
        "issue_date": "2026-11-01",
        "due_date": "2026-12-01",
        "currency": "EUR",
        "amount_minor": 12_000,
        **values,
    }
