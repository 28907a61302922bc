"""Allowed host sites: checked, stored, listed, removed (admins, in the back office)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal import clock
from portal.embed.models import EmbedOrigin
from portal.timeline.models import Actor
from portal.timeline.service import record

MAX_ORIGINS = 50
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class BadOrigin(ValueError):
    """Not an origin the portal may be embedded in; ``reason`` is a message id."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalise_origin(raw: str, *, allow_http: bool) -> str:
    """``https://www.Example.com/pay`` -> ``https://www.example.com``; raises BadOrigin.

    Only HTTPS (plain HTTP on loopback in development), no user, no wildcard, no path
    beyond "/": exactly what a browser sends as the host page's origin.
    """
    text = raw.strip()
    if not text or len(text) > 200 or any(c.isspace() for c in text):
        raise BadOrigin("shape")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BadOrigin("shape")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise BadOrigin("shape")
    if parts.path not in ("", "/") or "*" in text:
        raise BadOrigin("shape")
    host = parts.hostname.lower()
    netloc = parts.netloc.lower()
    loopback = host in LOOPBACK_HOSTS or _loopback(host)
    if parts.scheme == "http" and not (allow_http and loopback):
        raise BadOrigin("https")
    try:
        port = parts.port
    except ValueError:
        raise BadOrigin("shape") from None
    default_port = {"https": 443, "http": 80}[parts.scheme]
    if port == default_port:
        netloc = netloc.rsplit(":", 1)[0]
    return f"{parts.scheme}://{netloc}"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def stored_origins(session: Session, company_id: int) -> list[str]:
    return list(
        session.scalars(
            select(EmbedOrigin.origin)
            .where(EmbedOrigin.company_id == company_id)
            .order_by(EmbedOrigin.origin)
        )
    )


def add_origin(
    session: Session, company_id: int, raw: str, *, user_id: int | None, allow_http: bool
) -> str:
    origin = normalise_origin(raw, allow_http=allow_http)
    existing = stored_origins(session, company_id)
    if origin in existing:
        return origin
    if len(existing) >= MAX_ORIGINS:
        raise BadOrigin("too_many")
    session.add(
        EmbedOrigin(
            company_id=company_id, origin=origin, created_at=clock.now(), created_by=user_id
        )
    )
    _note(session, company_id, user_id, "embed.origin_added", origin)
    return origin


def remove_origin(session: Session, company_id: int, origin: str, *, user_id: int | None) -> bool:
    result = session.execute(
        delete(EmbedOrigin).where(
            EmbedOrigin.company_id == company_id, EmbedOrigin.origin == origin
        )
    )
    removed = bool(getattr(result, "rowcount", 0))
    if removed:
        _note(session, company_id, user_id, "embed.origin_removed", origin)
    return removed


def _note(session: Session, company_id: int, user_id: int | None, action: str, origin: str) -> None:
    record(
        session,
        company_id=company_id,
        actor=Actor.USER,
        actor_id=str(user_id) if user_id is not None else None,
        action=action,
        details={"origin": origin},
    )
