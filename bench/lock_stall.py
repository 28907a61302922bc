"""The lock-stall phase of portal_page.py: one page view stuck on a lock, the rest timed.

The measured customer's session is made due for its last-seen update, then another
transaction holds the lock that update needs for ``--lock-seconds`` (the session's row,
``SELECT … FOR UPDATE``, on PostgreSQL; the write lock, ``BEGIN IMMEDIATE``, on SQLite), as
a migration or a long transaction would. One page view of that customer waits on it;
meanwhile two probes request ``/healthz`` and another customer's page one after the
other, and their latencies are what this phase reports.
"""

from __future__ import annotations

import datetime as dt
import http.client
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import text, update

from portal import clock
from portal.access.models import DebtorSession
from portal.access.service import digest
from portal.db import make_engine

GOAL_STALL_P99_MS = 100.0
# How long the waiting page view gets to reach its lock before the probes start.
SETTLE_SECONDS = 0.3


class StallError(RuntimeError):
    """The phase could not set up what it measures."""


@dataclass
class Probe:
    path: str
    cookie: str | None
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 0.99)

    @property
    def max_ms(self) -> float:
        return max(self.latencies_ms, default=float("nan"))


@dataclass
class StallResult:
    lock_seconds: float
    blocked_status: int
    blocked_seconds: float
    health: Probe
    other_page: Probe

    def goals(self) -> list[tuple[str, bool]]:
        return [
            (
                f"/healthz p99 < {GOAL_STALL_P99_MS:g} ms during a lock",
                self.health.p99_ms < GOAL_STALL_P99_MS and set(self.health.statuses) == {200},
            ),
            (
                f"other page p99 < {GOAL_STALL_P99_MS:g} ms during a lock",
                self.other_page.p99_ms < GOAL_STALL_P99_MS
                and set(self.other_page.statuses) == {200},
            ),
        ]

    def summary(self) -> str:
        return (
            f"lock held {self.lock_seconds:g} s: the waiting page view answered HTTP "
            f"{self.blocked_status} after {self.blocked_seconds:.2f} s; meanwhile /healthz p99 "
            f"{self.health.p99_ms:.1f} ms, max {self.health.max_ms:.1f} ms "
            f"({len(self.health.latencies_ms)} requests), another customer's page p99 "
            f"{self.other_page.p99_ms:.1f} ms, max {self.other_page.max_ms:.1f} ms "
            f"({len(self.other_page.latencies_ms)} requests)"
        )


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _get(connection: http.client.HTTPConnection, path: str, cookie: str | None) -> int:
    headers = {"Cookie": f"relance_session={cookie}"} if cookie else {}
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    return response.status


def _probe(port: int, probe: Probe, stop: threading.Event) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        while not stop.is_set():
            started = time.perf_counter()
            status = _get(connection, probe.path, probe.cookie)
            probe.latencies_ms.append((time.perf_counter() - started) * 1000)
            probe.statuses[status] = probe.statuses.get(status, 0) + 1
    finally:
        connection.close()


def _blocked_on_lock(connection: object) -> bool:
    """PostgreSQL shows the page view's session update waiting for the row lock."""
    count = connection.scalar(  # type: ignore[attr-defined]
        text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE 'UPDATE debtor_sessions%'"
        )
    )
    connection.rollback()  # type: ignore[attr-defined]
    return bool(count)


def run_stall(
    url: str, port: int, stuck_cookie: str, other_cookie: str, lock_seconds: float
) -> StallResult:
    session_id = digest(stuck_cookie)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            # Due for its last-seen update (every minute at most; see access.service).
            connection.execute(
                update(DebtorSession)
                .where(DebtorSession.id == session_id)
                .values(last_seen_at=clock.now() - dt.timedelta(minutes=5))
            )
        blocked: dict[str, float] = {}
        health = Probe("/healthz", None)
        other = Probe("/", other_cookie)
        with engine.connect() as holder, engine.connect() as watcher:
            holder.begin()  # SQLite: BEGIN IMMEDIATE, the write lock (portal.db.make_engine)
            if engine.dialect.name == "postgresql":
                holder.execute(
                    text("SELECT 1 FROM debtor_sessions WHERE id = :id FOR UPDATE"),
                    {"id": session_id},
                )
            locked_at = time.monotonic()

            def stuck_view() -> None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                started = time.monotonic()
                try:
                    blocked["status"] = _get(connection, "/", stuck_cookie)
                finally:
                    blocked["seconds"] = time.monotonic() - started
                    connection.close()

            waiter = threading.Thread(target=stuck_view, daemon=True)
            waiter.start()
            time.sleep(SETTLE_SECONDS)
            if engine.dialect.name == "postgresql" and not _blocked_on_lock(watcher):
                holder.rollback()
                raise StallError("the page view is not waiting on the session's row lock")
            stop = threading.Event()
            probes = [
                threading.Thread(target=_probe, args=(port, probe, stop), daemon=True)
                for probe in (health, other)
            ]
            for each in probes:
                each.start()
            time.sleep(max(0.0, lock_seconds - (time.monotonic() - locked_at)))
            stop.set()
            holder.rollback()
            for each in probes:
                each.join(timeout=60)
        waiter.join(timeout=60)
        if "status" not in blocked:
            raise StallError("the waiting page view never answered")
        if blocked["seconds"] < lock_seconds - SETTLE_SECONDS - 0.5:
            raise StallError(
                f"the page view answered after {blocked['seconds']:.2f} s: it did not wait "
                "on the lock"
            )
        return StallResult(lock_seconds, int(blocked["status"]), blocked["seconds"], health, other)
    finally:
        engine.dispose()
