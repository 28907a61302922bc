"""The second factor: TOTP secrets, their enrolment URI, and codes each good once."""

from __future__ import annotations

import hmac

import pyotp
from sqlalchemy.orm import Session

from portal import clock
from portal.timeline.models import Actor
from portal.timeline.service import record
from portal.users.models import User

TOTP_ISSUER = "Relance"


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, email: str, issuer: str = TOTP_ISSUER) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def accepted_totp_step(secret: str, code: str, last_step: int | None = None) -> int | None:
    """The 30-second step whose 6-digit code this is (now, or the step before or after, for
    clock drift), provided it is later than ``last_step``, the last one accepted; else None.

    Remembering the step makes each code good once: a code seen over someone's shoulder or
    replayed from a captured request is refused even within its validity window.
    """
    digits = "".join(code.split())
    if len(digits) != 6 or not digits.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now_step = totp.timecode(clock.now())
    for step in (now_step - 1, now_step, now_step + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), digits):
            return step
    return None


def set_totp(
    session: Session, user: User, secret: str | None, code: str, *, company_id: int
) -> bool:
    """Turn the second factor on (``secret``) or off (None); the code must match. False if not."""
    check = secret if secret is not None else user.totp_secret
    step = accepted_totp_step(check, code, user.totp_last_step) if check else None
    if step is None:
        return False
    user.totp_secret = secret
    user.totp_last_step = step
    record(
        session,
        company_id=company_id,
        actor=Actor.USER,
        actor_id=str(user.id),
        action="user.totp_enabled" if secret else "user.totp_disabled",
        subject_type="user",
        subject_id=user.id,
    )
    return True
