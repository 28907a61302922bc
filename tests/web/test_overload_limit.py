"""The in-flight limit shrinks while answers are slow and grows back while they are fast."""

from __future__ import annotations

import threading

import anyio
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send

from portal.web.overload import DECREASE_FACTOR, MIN_LIMIT, AdaptiveLimit, InFlightLimit

TARGET = 0.4


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_fast_answers_keep_the_ceiling() -> None:
    limit = AdaptiveLimit(32, TARGET, FakeClock())
    for _ in range(1000):
        limit.record(0.05)
    assert limit.admits == 32


def test_a_slow_answer_cuts_the_limit_once_per_target_interval() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(32, TARGET, clock)
    for _ in range(20):  # a burst of slow answers admitted under the old limit
        limit.record(1.5)
    assert limit.admits == int(32 * DECREASE_FACTOR)
    clock.now += TARGET + 0.01
    limit.record(1.5)
    assert limit.admits == int(32 * DECREASE_FACTOR * DECREASE_FACTOR)


def test_the_limit_never_falls_below_its_floor_and_grows_back() -> None:
    clock = FakeClock()
    limit = AdaptiveLimit(32, TARGET, clock)
    for _ in range(50):
        clock.now += TARGET + 0.01
        limit.record(5.0)
    assert limit.admits == MIN_LIMIT
    for _ in range(2000):
        limit.record(0.01)
    assert limit.admits == 32


def test_a_ceiling_below_the_floor_is_kept() -> None:
    limit = AdaptiveLimit(1, TARGET, FakeClock())
    limit.record(9.0)
    assert limit.admits == 1


def _busy(request: Request) -> Response:
    return PlainTextResponse("busy", status_code=503)


class HeldApp:
    """Holds every request until released; the round of requests takes ``seconds`` of the
    fake clock (they run side by side, as on the event loop)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.release = anyio.Event()
        self.entered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered += 1
        await self.release.wait()
        await PlainTextResponse("page")(scope, receive, send)


async def _get(app: InFlightLimit, statuses: list[int], path: str = "/") -> None:
    scope: Scope = {"type": "http", "method": "GET", "path": path, "headers": [], "app": None}

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)


def test_after_slow_answers_the_worker_admits_fewer_at_once() -> None:
    # On a thread of its own: after the browser tests, this thread has an event loop
    # running (Playwright's), and anyio.run would refuse to start another one.
    failures: list[BaseException] = []

    def run() -> None:
        try:
            anyio.run(_slow_answers_make_the_worker_admit_fewer)
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


async def _slow_answers_make_the_worker_admit_fewer() -> None:
    clock = FakeClock()
    inner = HeldApp()
    app = InFlightLimit(inner, limit=10, busy=_busy, latency_target=TARGET, clock=clock)
    statuses: list[int] = []

    async def round_of(count: int) -> list[int]:
        statuses.clear()
        inner.release = anyio.Event()
        inner.entered = 0
        async with anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(_get, app, statuses)
            while inner.entered + statuses.count(503) < count:
                await anyio.sleep(0)  # until every request is in or refused
            clock.now += inner.seconds
            inner.release.set()
        return sorted(statuses)

    assert await round_of(12) == [200] * 10 + [503] * 2  # the configured ceiling
    inner.seconds = 2.0  # the machine slows down: answers take longer than the target
    assert await round_of(10) == [200] * 10
    admitted = int(10 * DECREASE_FACTOR)
    assert await round_of(10) == [200] * admitted + [503] * (10 - admitted)
    # The health check and static files are never counted nor refused.
    health = InFlightLimit(inner, limit=1, busy=_busy, exempt_prefixes=("/healthz",))
    inner.release.set()
    codes: list[int] = []
    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(_get, health, codes, "/healthz")
    assert codes == [200] * 3
