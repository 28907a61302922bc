"""Helpers for the widget's web tests: an admin session and an allowed host site."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.users import service as users
from portal.users.models import Role, User

PASSWORD = "correct horse battery staple"
HOST = "https://www.client.example"
_sequence = itertools.count(1)


@pytest.fixture
def cheap_hashing() -> Iterator[None]:
    previous = users.set_password_hasher(
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    yield
    users.set_password_hasher(previous)


def make_staff(db: Session, role: Role = Role.ADMIN) -> User:
    user = users.create_user(db, f"embed{next(_sequence)}@relance.example", role, PASSWORD)
    db.commit()
    return user


def log_in(client: TestClient, user: User) -> None:
    client.app.state.login_failure_delay = 0  # type: ignore[attr-defined]
    response = client.post("/admin/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 303, response.text


def allow_host(client: TestClient, db: Session, host: str = HOST) -> None:
    """An admin adds ``host`` in the back office, then logs out again."""
    log_in(client, make_staff(db))
    response = client.post("/admin/embed/origins", data={"origin": host})
    assert response.status_code == 303, response.text
    client.post("/admin/logout")
    client.cookies.clear()
