"""Pure ASGI middleware: security headers, cross-site request refusal, request body limits."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def content_security_policy(
    frame_ancestors: Iterable[str],
    *,
    script: Iterable[str] = (),
    img: Iterable[str] = (),
    connect: Iterable[str] = (),
    frames: Iterable[str] = (),
) -> str:
    """The portal's policy (no inline script, nothing from elsewhere), plus the origins a
    page needs beyond it (the card page adds Stripe's)."""
    ancestors = " ".join(frame_ancestors) or "'none'"
    directives = [
        "default-src 'self'",
        " ".join(["script-src 'self'", *script]),
        "style-src 'self'",
        " ".join(["img-src 'self' data:", *img]),
        "font-src 'self'",
        " ".join(["connect-src 'self'", *connect]),
    ]
    if frame_list := list(frames):
        directives.append(" ".join(["frame-src", *frame_list]))
    directives += [
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        f"frame-ancestors {ancestors}",
    ]
    return "; ".join(directives)


class FrameAncestors(Protocol):
    def ancestors(self) -> tuple[str, ...]: ...

    async def refresh(self, state: Any) -> None: ...


class SecurityHeaders:
    """CSP without inline script, no referrer, nosniff, HSTS outside development.

    ``frame_ancestors`` gives the host sites allowed to frame the portal (the configured
    ones and the admins', ``web.site_config``); its answer is refreshed before the
    request, off the event loop, and the policy string is built once per answer.
    """

    def __init__(self, app: ASGIApp, *, frame_ancestors: FrameAncestors, hsts: bool) -> None:
        self.app = app
        self.frame_ancestors = frame_ancestors
        self._policies: dict[tuple[str, ...], str] = {}
        self.hsts = hsts

    def policy(self) -> str:
        ancestors = self.frame_ancestors.ancestors()
        csp = self._policies.get(ancestors)
        if csp is None:
            csp = self._policies[ancestors] = content_security_policy(ancestors)
        return csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        app = scope.get("app")
        if app is not None:
            await self.frame_ancestors.refresh(app.state)
        csp = self.policy()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", csp)
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
                if self.hsts:
                    headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CrossSiteRequestGuard:
    """Refuse state-changing requests that a browser marks as coming from another site.

    Browsers send ``Sec-Fetch-Site`` (and ``Origin``) on every POST, htmx's
    included, so no token needs threading through forms. Requests without
    either header are refused too: only webhook paths, which authenticate by
    signature, are exempt.
    """

    def __init__(
        self, app: ASGIApp, *, allowed_origins: Iterable[str], exempt_prefixes: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.allowed = {o.rstrip("/") for o in allowed_origins}
        self.exempt = tuple(exempt_prefixes)

    def _allowed(self, scope: Scope) -> bool:
        headers = Headers(scope=scope)
        site = headers.get("sec-fetch-site")
        if site is not None:
            return site in ("same-origin", "none")
        origin = headers.get("origin")
        if origin is None or origin == "null":
            return False
        if origin.rstrip("/") in self.allowed:
            return True
        host = headers.get("host")
        return host is not None and urlsplit(origin).netloc == host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in SAFE_METHODS
            and not scope["path"].startswith(self.exempt)
            and not self._allowed(scope)
        ):
            body = (
                b"<!doctype html><html lang=en><title>Forbidden</title>"
                b"<p>This request came from another site and was refused. "
                b"/ Cette demande venait d'un autre site et a \xc3\xa9t\xc3\xa9 refus\xc3\xa9e.</p>"
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"text/html; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class BodyTooLarge(Exception):
    """Raised inside the app when the body read so far passes the route's limit."""


class RequestBodyLimit:
    """Refuse a request body larger than its route allows, before or while it is read.

    A declared ``Content-Length`` over the limit is answered at once, without reading a
    byte (nor calling the route). A body sent in chunks, or longer than it said, is
    counted as the app reads it: the chunk that passes the limit raises ``BodyTooLarge``
    out of ``receive``, which stops the form parser before it writes more to its
    temporary files, and ``refuse`` answers instead of the route. Either way the
    connection is closed after the answer, so the rest of the body is never read.
    """

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int], refuse: ASGIApp) -> None:
        self.app = app
        self.limit_for = limit_for
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self.refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(f"{scope['path']}: more than {limit} bytes")
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:  # an answer is already on its way: nothing better to say
                return
            await self.refuse(scope, receive, send)
