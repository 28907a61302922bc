"""A bounded number of requests in flight per worker; beyond it, a quick 503."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

# Seconds a refused client is asked to wait before trying again.
RETRY_AFTER_SECONDS = 2


class InFlightLimit:
    """Admit at most ``limit`` HTTP requests at once; answer the others at once with
    ``busy(request)`` (a 503 carrying ``Retry-After``) rather than queue them.

    Queued requests only wait longer and longer while the worker is saturated: a quick
    refusal lets the client (or a load balancer) try again or elsewhere. Paths starting
    with one of ``exempt_prefixes`` (the health check, static files) are never refused nor
    counted. One instance per worker process, on its single event loop: a plain counter.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        busy: Callable[[Request], Response],
        exempt_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.limit = limit
        self.busy = busy
        self.exempt = exempt_prefixes
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limit or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            response = self.busy(Request(scope, receive))
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
