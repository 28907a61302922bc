"""Pooled PostgreSQL connections are checked on checkout without a ping per request."""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text

from portal import pool_checks
from portal.db import make_engine
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="needs PORTAL_TEST_DATABASE_URL")


def counting_pings(engine: Engine) -> list[None]:
    """Count the dialect's pings on ``engine`` (each appends one item)."""
    pings: list[None] = []
    real_ping = engine.dialect.do_ping

    def do_ping(dbapi_connection: Any) -> bool:
        pings.append(None)
        return real_ping(dbapi_connection)

    engine.dialect.do_ping = do_ping  # type: ignore[method-assign]
    return pings


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def pooled_sockets(engine: Engine) -> list[int]:
    """The socket descriptors of the connections ``engine`` returned to its pool."""
    sockets: list[int] = []

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None:
            sockets.append(dbapi_connection.fileno())

    return sockets


def wait_until_readable(descriptor: int) -> None:
    """Until the server's farewell has reached the client socket (5 s at most)."""
    poller = select.poll()
    poller.register(descriptor, select.POLLIN | select.POLLPRI | select.POLLHUP)
    assert poller.poll(5000), "the closed connection's socket never became readable"


@pytest.fixture
def admin() -> Iterator[Engine]:
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def terminate(admin: Engine, pid: int) -> None:
    """Ends a backend as a server restart or an idle timeout would, and waits until it is gone."""
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            gone = connection.execute(
                text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).scalar_one()
            if gone:
                return
            time.sleep(0.02)
    raise AssertionError(f"backend {pid} still running")


def test_a_recently_used_connection_is_reused_without_a_ping() -> None:
    engine = make_engine(POSTGRES_URL, pool_size=1, max_overflow=0)
    try:
        pings = counting_pings(engine)
        first = backend_pid(engine)
        assert [backend_pid(engine) for _ in range(5)] == [first] * 5
        assert pings == []
    finally:
        engine.dispose()


def test_a_connection_the_server_closed_is_replaced_before_use(admin: Engine) -> None:
    engine = make_engine(POSTGRES_URL, pool_size=1, max_overflow=0)
    try:
        pings = counting_pings(engine)
        sockets = pooled_sockets(engine)
        first = backend_pid(engine)
        terminate(admin, first)
        wait_until_readable(sockets[-1])
        # The page view that follows gets a working connection, not an error.
        second = backend_pid(engine)
        assert second != first
        assert len(pings) == 1
    finally:
        engine.dispose()


def test_a_connection_idle_for_a_while_is_pinged_first(admin: Engine) -> None:
    engine = create_engine(POSTGRES_URL, pool_size=1, max_overflow=0)
    pool_checks.install(engine, ping_after_idle_seconds=0.2)
    try:
        pings = counting_pings(engine)
        first = backend_pid(engine)
        backend_pid(engine)
        assert pings == []
        time.sleep(0.3)
        assert backend_pid(engine) == first
        assert len(pings) == 1
    finally:
        engine.dispose()


def test_without_the_checks_the_closed_connection_would_fail(admin: Engine) -> None:
    """The failure the checks prevent: a plain pool hands out the dead connection."""
    engine = create_engine(POSTGRES_URL, pool_size=1, max_overflow=0)
    try:
        terminate(admin, backend_pid(engine))
        with pytest.raises(Exception, match=r"terminat|closed|connection"):
            backend_pid(engine)
    finally:
        engine.dispose()
