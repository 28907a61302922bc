"""Handing a session over when the browser kept no cookie in the frame.

A session started inside the widget is answered with a redirect to ``/embed/check`` that
carries a hand-over token: signed (itsdangerous, its own salt), valid ten minutes, naming
the session and the host site. When the cookie came back, the check goes on to the
portal. When it did not (the browser blocks cookies in frames, even partitioned ones), the
page says so and offers the Storage Access API or a new tab; either follows the token to
``/embed/resume``, which ends the first session and starts its twin, once: a token whose
session has ended opens nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import update
from sqlalchemy.orm import Session

from portal import clock
from portal.access.models import DebtorSession
from portal.access.service import start_session
from portal.customers.models import Customer
from portal.timeline.models import Actor
from portal.timeline.service import record

SALT = "relance.embed-handoff"
MAX_AGE_SECONDS = 600


@dataclass(frozen=True)
class Handoff:
    session_id: str
    host: str


class HandoffSigner:
    def __init__(self, secret_keys: Sequence[str]) -> None:
        # itsdangerous signs with the last key; the settings list the newest first.
        self._serializer = URLSafeTimedSerializer(list(reversed(secret_keys)), salt=SALT)

    def issue(self, session_id: str, host: str) -> str:
        return str(self._serializer.dumps([session_id, host]))

    def read(self, token: str) -> Handoff | None:
        if not token or len(token) > 600:
            return None
        try:
            value = self._serializer.loads(token, max_age=MAX_AGE_SECONDS)
        except BadSignature:
            return None
        if not (isinstance(value, list) and len(value) == 2):
            return None
        session_id, host = value
        if not (isinstance(session_id, str) and isinstance(host, str)):
            return None
        return Handoff(session_id, host)


def resume(
    session: Session,
    handoff: Handoff,
    *,
    top_level: bool,
    client_ip: str | None,
    user_agent: str | None,
) -> str | None:
    """End the handed-over session and start its twin; the new cookie secret, or None
    when the session is gone (ended, revoked, or this token was used already)."""
    row = session.get(DebtorSession, handoff.session_id)
    if row is None or row.ended_at is not None:
        return None
    customer = session.get(Customer, row.customer_id)
    if customer is None or customer.link_version != row.link_version:
        return None
    ended = session.execute(
        update(DebtorSession)
        .where(DebtorSession.id == row.id, DebtorSession.ended_at.is_(None))
        .values(ended_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    if not getattr(ended, "rowcount", 0):
        return None  # another request used the token first
    secret = start_session(
        session,
        customer,
        row.scope_id,
        client_ip,
        user_agent,
        embed_origin=None if top_level else handoff.host,
    )
    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=Actor.DEBTOR,
        action="portal.session_handed_over",
        details={"to": "new_tab" if top_level else "frame", "host": handoff.host},
    )
    return secret
