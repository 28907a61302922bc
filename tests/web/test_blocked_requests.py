"""A page view waiting on a database lock does not hold up the other requests of its worker.

The app is served for real (uvicorn in a thread, its own database). A debtor's session is
due for its last-seen update while another transaction holds the lock that update needs
(the session's row on PostgreSQL, the write lock on SQLite), as a migration or a long
transaction would. While that page view waits, the health check and another debtor's page
answer at once.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, event, text, update

from portal import clock, migrate
from portal.access.models import DebtorSession
from portal.access.service import digest, start_session
from portal.company.service import sync_company
from portal.db import make_engine, make_session_factory, transaction
from portal.settings import Settings, load_settings
from portal.web.context import session_cookie_name
from tests.conftest import TEST_SECRET, backends, fresh_database_url
from tests.factories import make_customer, make_invoice
from tests.mail_sink import free_port
from tests.payments_live import serve

# Far longer than any answer takes, far shorter than the lock is held.
QUICK_SECONDS = 2.0
BLOCK_DEADLINE_SECONDS = 15.0


@dataclass
class LiveApp:
    backend: str
    url: str
    engine: Engine
    settings: Settings
    cookies: dict[str, str]  # customer name -> session cookie

    def get(
        self,
        path: str,
        customer: str | None = None,
        timeout: float = 30,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        cookies = {session_cookie_name(self.settings): self.cookies[customer]} if customer else {}
        return httpx.get(
            f"{self.url}{path}",
            cookies=cookies,
            headers=headers,
            timeout=timeout,
            trust_env=False,
        )


@contextmanager
def live_app(backend: str, workdir: Path, **settings_env: str) -> Iterator[LiveApp]:
    """The app served by uvicorn in a thread over its own database, with two debtors
    holding a portal session each."""
    database_url, drop = fresh_database_url(backend, workdir)
    engine = make_engine(database_url)
    try:
        migrate.upgrade(database_url, engine=engine)
        port = free_port()
        settings = load_settings(
            {
                "PORTAL_ENVIRONMENT": "test",
                "PORTAL_SECRET_KEYS": TEST_SECRET,
                "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
                "PORTAL_DATABASE_URL": database_url,
                "PORTAL_DOCUMENTS_DIR": str(workdir / "documents"),
                **settings_env,
            }
        )
        cookies = {}
        with transaction(make_session_factory(engine)) as db:
            company = sync_company(db, settings.company)
            for name in ("Waiting SARL", "Other SAS"):
                customer = make_customer(db, company, name=name)
                make_invoice(db, customer)
                cookies[name] = start_session(db, customer, None, None, None)
        with serve(settings, port):
            yield LiveApp(backend, settings.base_url, engine, settings, cookies)
    finally:
        engine.dispose()
        drop()


@pytest.fixture(params=backends())
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveApp]:
    with live_app(request.param, tmp_path) as app:
        yield app


@pytest.fixture(params=backends())
def live_one_at_a_time(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveApp]:
    with live_app(request.param, tmp_path, PORTAL_MAX_REQUESTS_IN_FLIGHT="1") as app:
        yield app


@contextmanager
def session_row_locked(live: LiveApp, cookie: str) -> Iterator[None]:
    """The session is due for its last-seen update, and another transaction holds the lock
    that update needs until the block ends."""
    session_id = digest(cookie)
    with live.engine.begin() as connection:
        connection.execute(
            update(DebtorSession)
            .where(DebtorSession.id == session_id)
            .values(last_seen_at=clock.now() - dt.timedelta(minutes=5))
        )
    with live.engine.connect() as holder:
        holder.begin()  # on SQLite, BEGIN IMMEDIATE: the database's write lock (db.make_engine)
        if live.backend == "postgresql":
            holder.execute(
                text("SELECT 1 FROM debtor_sessions WHERE id = :id FOR UPDATE"), {"id": session_id}
            )
        try:
            yield
        finally:
            holder.rollback()


@contextmanager
def session_update_watch(live: LiveApp) -> Iterator[threading.Event]:
    """Set once the app sends a session update to the database (SQLite's wait shows nowhere
    else); on PostgreSQL, once the server shows that update waiting for a lock."""
    reached = threading.Event()

    def before_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("UPDATE debtor_sessions"):
            reached.set()

    event.listen(Engine, "before_cursor_execute", before_execute)
    try:
        yield reached
    finally:
        event.remove(Engine, "before_cursor_execute", before_execute)


def wait_until_blocked(live: LiveApp, reached: threading.Event) -> None:
    assert reached.wait(BLOCK_DEADLINE_SECONDS), "the page view never sent its session update"
    if live.backend == "sqlite":
        return  # the write lock is held: SQLite waits on it (busy timeout)
    deadline = time.monotonic() + BLOCK_DEADLINE_SECONDS
    with live.engine.connect() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE 'UPDATE debtor_sessions%'"
                )
            )
            watcher.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("the page view's session update never waited for the lock")


@contextmanager
def page_view_blocked(live: LiveApp, answers: list[httpx.Response]) -> Iterator[threading.Thread]:
    """A page view of "Waiting SARL" in flight, waiting on a lock until the block ends."""
    with (
        session_row_locked(live, live.cookies["Waiting SARL"]),
        session_update_watch(live) as reached,
    ):
        blocked = threading.Thread(
            target=lambda: answers.append(live.get("/", "Waiting SARL")), daemon=True
        )
        blocked.start()
        wait_until_blocked(live, reached)
        yield blocked
    blocked.join(timeout=30)


def test_a_page_view_waiting_on_a_lock_leaves_the_worker_answering(live: LiveApp) -> None:
    answers: list[httpx.Response] = []
    with page_view_blocked(live, answers) as blocked:
        health = live.get("/healthz", timeout=QUICK_SECONDS)
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "database": "ok"}
        other = live.get("/", "Other SAS", timeout=QUICK_SECONDS)
        assert other.status_code == 200
        assert "Other SAS" in other.text
        invoice_path = re.search(r'href="(/invoices/\d+)"', other.text)
        assert invoice_path is not None
        for path in ("/paid", invoice_path.group(1)):
            page = live.get(path, "Other SAS", timeout=QUICK_SECONDS)
            assert page.status_code == 200, path
            assert 'action="/logout"' in page.text, path  # in the session, not the welcome page
        assert live.get("/invoices/999999", "Other SAS", timeout=QUICK_SECONDS).status_code == 404
        assert blocked.is_alive(), "the lock was not in the page view's way"

    assert [response.status_code for response in answers] == [200]
    assert "Waiting SARL" in answers[0].text


def test_requests_beyond_the_limit_in_flight_are_refused_at_once(
    live_one_at_a_time: LiveApp,
) -> None:
    live = live_one_at_a_time
    answers: list[httpx.Response] = []
    with page_view_blocked(live, answers) as blocked:
        refused = live.get("/", "Other SAS", timeout=QUICK_SECONDS)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "2"
        assert refused.headers["content-language"] == "fr"  # PORTAL_DEFAULT_LANGUAGE
        assert "Le portail est très sollicité" in refused.text
        assert "Rien n'a été modifié" in refused.text.replace("&#39;", "'")
        assert "Content-Security-Policy" in refused.headers

        english = live.get(
            "/paid", "Other SAS", timeout=QUICK_SECONDS, headers={"Accept-Language": "en"}
        )
        assert english.status_code == 503
        assert "The portal is busy" in english.text

        health = live.get("/healthz", timeout=QUICK_SECONDS)  # never counted nor refused
        assert health.status_code == 200
        assert blocked.is_alive()

    assert [response.status_code for response in answers] == [200]
    # Below the limit again: served as usual.
    served = live.get("/", "Other SAS", timeout=QUICK_SECONDS)
    assert served.status_code == 200
    assert "Other SAS" in served.text
