"""Shared fixtures: migrated databases (SQLite, and PostgreSQL when configured),
a rolled-back savepoint session per test, and an app bound to that session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from portal import clock, migrate
from portal.company.models import Company
from portal.company.service import sync_company
from portal.db import make_engine
from portal.settings import Settings, load_settings
from portal.web.app import create_app

POSTGRES_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"

# A property test's examples take what a busy 2-core machine gives them: a per-example
# deadline or a "too slow" health check would fail a correct test at random.
hypothesis_settings.register_profile(
    "relance", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("relance")

if IN_CI and not POSTGRES_URL:
    raise pytest.UsageError(
        "CI must set PORTAL_TEST_DATABASE_URL: PostgreSQL tests cannot be skipped"
    )


def backends() -> list[str]:
    return ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


@pytest.fixture(autouse=True)
def _unfrozen_clock() -> Iterator[None]:
    yield
    clock.freeze(None)


def create_postgres_database(base_url: str) -> tuple[str, callable]:  # type: ignore[valid-type]
    """A fresh, uniquely named database next to the one in ``base_url``; returns (url, drop)."""
    url = make_url(base_url)
    name = f"relance_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def fresh_database_url(backend: str, directory: Path) -> tuple[str, callable]:  # type: ignore[valid-type]
    if backend == "postgresql":
        return create_postgres_database(POSTGRES_URL)
    path = directory / f"relance-{uuid.uuid4().hex[:8]}.db"
    return f"sqlite:///{path}", lambda: None


@pytest.fixture(scope="session", params=backends())
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Engine]]:
    """A database migrated to head by Alembic (never create_all)."""
    url, drop = fresh_database_url(request.param, tmp_path_factory.mktemp("db"))
    engine = make_engine(url)
    migrate.upgrade(url, engine=engine)
    yield url, engine
    engine.dispose()
    drop()


@pytest.fixture
def connection(database: tuple[str, Engine]) -> Iterator[Connection]:
    _url, engine = database
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        outer.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    """Sessions whose commits become savepoints of the test's outer transaction."""
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as session:
        yield session


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        {
            "PORTAL_ENVIRONMENT": "test",
            "PORTAL_SECRET_KEYS": TEST_SECRET,
            "PORTAL_BASE_URL": "http://testserver",
            "PORTAL_DOCUMENTS_DIR": str(tmp_path / "documents"),
            "PORTAL_IMPORTS_DIR": str(tmp_path / "imports"),
            "PORTAL_DATABASE_URL": "sqlite://",
        }
    )


@pytest.fixture
def company(db: Session, settings: Settings) -> Company:
    company = sync_company(db, settings.company)
    db.flush()
    return company


@pytest.fixture
def client(
    settings: Settings, session_factory: sessionmaker[Session], company: Company, db: Session
) -> Iterator[TestClient]:
    """The app over the test's session; browser-like headers so forms pass the CSRF guard."""
    db.commit()
    app = create_app(settings, session_factory=session_factory)
    with TestClient(
        app,
        base_url="http://testserver",
        follow_redirects=False,
        headers={"Sec-Fetch-Site": "same-origin"},
    ) as test_client:
        yield test_client
