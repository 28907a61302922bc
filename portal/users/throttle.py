"""Throttling back-office login attempts, per client, per address and per both.

Each failed attempt counts against three keys (``LoginThrottle`` rows): ``ip``, the
client's IP address (guessing across many accounts); ``account``, the address typed
(guessing one account from many clients); ``client``, the pair (one client at one
account). A key's first ``free`` failures cost nothing; each one after that makes the
next attempt wait, twice as long each time, up to ``max_delay``. An attempt while any of
its keys waits is refused before the password is checked: it costs no Argon2 work and
changes nothing. A key's count is forgotten ``forget_after`` its last failure; a
success forgets the ``client`` and ``account`` counts (not the ``ip`` one, or one good
account would let a client guess at others forever).

The answer depends only on what was typed and where from, never on whether an account
exists, so it tells nobody which addresses have one. Failures from elsewhere never touch
a user's own ``client`` key: they are held back only by the ``account`` key, whose
delays stay under a minute, and by the lock after ``users.service.LOCK_AFTER_FAILURES``
failures, which they can lift from the emailed link.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from portal.db import conflict_insert
from portal.users.models import LoginThrottle


@dataclass(frozen=True)
class Rule:
    free: int
    base_delay: dt.timedelta
    max_delay: dt.timedelta
    forget_after: dt.timedelta

    def delay(self, failures: int) -> dt.timedelta | None:
        if failures <= self.free:
            return None
        steps = min(failures - self.free - 1, 30)
        delay: dt.timedelta = self.base_delay * (2**steps)
        return min(self.max_delay, delay)


SECOND, MINUTE, HOUR = dt.timedelta(seconds=1), dt.timedelta(minutes=1), dt.timedelta(hours=1)
RULES = {
    "client": Rule(free=5, base_delay=2 * SECOND, max_delay=15 * MINUTE, forget_after=HOUR),
    "ip": Rule(free=20, base_delay=2 * SECOND, max_delay=15 * MINUTE, forget_after=HOUR),
    "account": Rule(free=20, base_delay=SECOND, max_delay=MINUTE, forget_after=HOUR),
    # Password reset emails for one address: three, then one per 20 minutes, 40, 80...
    "reset": Rule(free=2, base_delay=20 * MINUTE, max_delay=6 * HOUR, forget_after=6 * HOUR),
    # "Pay an invoice" without a link (portal/embed/lookup.py): per client, and per invoice
    # number typed, which a guesser of postcodes or amounts has to keep.
    "lookup_client": Rule(free=10, base_delay=2 * SECOND, max_delay=15 * MINUTE, forget_after=HOUR),
    "lookup_invoice": Rule(free=3, base_delay=MINUTE, max_delay=6 * HOUR, forget_after=6 * HOUR),
}
LOGIN_SCOPES = ("client", "ip", "account")


def digest(secret: str, *parts: str) -> str:
    """A keyed digest of what was typed: never stored as typed (or as a plain hash)."""
    message = "\0".join(parts).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def login_keys(secret: str, email: str, client_ip: str | None) -> list[tuple[str, str]]:
    ip = (client_ip or "unknown")[:64]
    typed = email.strip().lower()
    return [
        ("client", digest(secret, "client", typed, ip)),
        ("ip", ip),
        *account_keys(secret, email),
    ]


def account_keys(secret: str, email: str) -> list[tuple[str, str]]:
    return [("account", digest(secret, "account", email.strip().lower()))]


def reset_keys(secret: str, email: str) -> list[tuple[str, str]]:
    return [("reset", digest(secret, "reset", email.strip().lower()))]


def retry_after(
    session: Session, keys: list[tuple[str, str]], now: dt.datetime
) -> dt.timedelta | None:
    """How long until an attempt with these keys is allowed; None if it is now."""
    latest = session.scalar(
        select(func.max(LoginThrottle.next_allowed_at)).where(
            tuple_(LoginThrottle.scope, LoginThrottle.key).in_(keys),
            LoginThrottle.next_allowed_at > now,
        )
    )
    return latest - now if latest is not None else None


def first_refusal(session: Session, keys: list[tuple[str, str]], now: dt.datetime) -> bool:
    """Whether this is the first refused attempt of the current wait on any of ``keys``
    (and note it): the timeline gets one row per wait, whatever the number of refusals."""
    result = session.execute(
        update(LoginThrottle)
        .where(
            tuple_(LoginThrottle.scope, LoginThrottle.key).in_(keys),
            LoginThrottle.next_allowed_at > now,
            or_(
                LoginThrottle.refusal_noted_at.is_(None),
                LoginThrottle.refusal_noted_at < LoginThrottle.last_failure_at,
            ),
        )
        .values(refusal_noted_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def record_failure(session: Session, keys: list[tuple[str, str]], now: dt.datetime) -> None:
    """Count one failure against every key (rows are locked: concurrent ones add up)."""
    table = LoginThrottle.__table__
    for scope, key in keys:
        session.execute(
            conflict_insert(session, table)  # type: ignore[arg-type]
            .values(scope=scope, key=key, failures=0, last_failure_at=now)
            .on_conflict_do_nothing()
        )
        row = session.scalars(
            select(LoginThrottle)
            .where(LoginThrottle.scope == scope, LoginThrottle.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        rule = RULES[scope]
        if now - row.last_failure_at > rule.forget_after:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        delay = rule.delay(row.failures)
        row.next_allowed_at = now + delay if delay is not None else None


def forget(session: Session, keys: list[tuple[str, str]]) -> None:
    """A success: the address's counts start again (the client's stay, see above)."""
    kept = [k for k in keys if k[0] != "ip"]
    if kept:
        session.execute(
            delete(LoginThrottle).where(tuple_(LoginThrottle.scope, LoginThrottle.key).in_(kept))
        )


# Longer than any rule's forget_after: a row this old counts nothing any more.
KEEP = dt.timedelta(days=1)


def prune(session: Session, now: dt.datetime) -> int:
    """Delete the rows that no longer count (``portal worker`` does it); returns how many."""
    result = session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.last_failure_at < now - KEEP,
            or_(LoginThrottle.next_allowed_at.is_(None), LoginThrottle.next_allowed_at <= now),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
