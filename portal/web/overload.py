"""A bounded number of requests in flight per worker, shrunk while answers get slow;
beyond it, a quick 503."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Seconds a refused client is asked to wait before trying again.
RETRY_AFTER_SECONDS = 2
# An admitted request answered slower than this means the worker takes too many at once
# (PORTAL_SLOW_ANSWER_MS).
DEFAULT_LATENCY_TARGET_SECONDS = 0.4
# Never admit fewer at once: one request stuck on a lock must not shut the worker.
MIN_LIMIT = 4
# Each slow answer cuts the limit by this factor, at most once per latency target.
DECREASE_FACTOR = 0.7


class AdaptiveLimit:
    """How many requests may be in flight, adjusted from how long the last ones took.

    Additive increase, multiplicative decrease (as TCP and Netflix's concurrency-limits do):
    a request answered within ``target`` seconds raises the limit by ``1 / limit`` (about one
    per full round of requests), up to ``ceiling``; a slower one cuts it by ``DECREASE_FACTOR``,
    at most once per ``target`` seconds so that the requests already admitted under the old
    limit do not cut it again before the cut can show. A busy machine (other processes, a
    slow database) thus makes each worker admit fewer at once, so the ones it admits are
    answered in time instead of everyone waiting longer.
    """

    def __init__(
        self, ceiling: int, target: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ceiling = ceiling
        self.floor = min(MIN_LIMIT, ceiling)
        self.target = target
        self.clock = clock
        self.value = float(ceiling)
        self._last_cut = -float("inf")

    @property
    def admits(self) -> int:
        return max(self.floor, int(self.value))

    def record(self, seconds: float) -> None:
        if seconds <= self.target:
            self.value = min(float(self.ceiling), self.value + 1 / max(self.value, 1.0))
            return
        now = self.clock()
        if now - self._last_cut >= self.target:
            self._last_cut = now
            self.value = max(float(self.floor), self.value * DECREASE_FACTOR)


class InFlightLimit:
    """Admit at most ``limit.admits`` HTTP requests at once; answer the others at once with
    ``busy(request)`` (a 503 carrying ``Retry-After``) rather than queue them.

    Queued requests only wait longer and longer while the worker is saturated: a quick
    refusal lets the client (or a load balancer) try again or elsewhere. Paths starting
    with one of ``exempt_prefixes`` (the health check, static files) are never refused nor
    counted. One instance per worker process, on its single event loop: plain counters.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        busy: Callable[[Request], Response],
        exempt_prefixes: tuple[str, ...] = (),
        latency_target: float = DEFAULT_LATENCY_TARGET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.limit = AdaptiveLimit(limit, latency_target, clock) if limit else None
        self.clock = clock
        self.busy = busy
        self.exempt = exempt_prefixes
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit
        if scope["type"] != "http" or limit is None or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= limit.admits:
            response = self.busy(Request(scope, receive))
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            await response(scope, receive, send)
            return
        self.in_flight += 1
        started = self.clock()
        answered: list[float] = []

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered.append(self.clock())

        try:
            await self.app(scope, receive, timed_send)
        finally:
            self.in_flight -= 1
            # The time to the last byte sent is what the worker controls; a request that
            # failed before answering says nothing about speed.
            if answered:
                limit.record(answered[0] - started)
