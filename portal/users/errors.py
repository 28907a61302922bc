"""Errors of the back-office users domain (no HTTP here: portal/web turns them into pages)."""

from __future__ import annotations

import datetime as dt


class UserError(Exception):
    """Base of the users domain's errors."""


class InvalidEmail(UserError):
    """Not something that can be a login (shape or length)."""


class EmailTaken(UserError):
    """Another user already has this email address (compared case-insensitively)."""

    def __init__(self, email: str) -> None:
        super().__init__(f"a user with the email {email} already exists")
        self.email = email


class WeakPassword(UserError):
    """The password does not meet the policy; the message says what is wrong."""


class LoginRefused(UserError):
    """A login attempt failed.

    Callers show one and the same answer for every subclass, so that nobody
    learns whether an address has an account, or whether it is locked.
    """


class InvalidCredentials(LoginRefused):
    """Unknown email, wrong password or deactivated account: deliberately not told apart."""


class AccountLocked(LoginRefused):
    """Too many consecutive failures (``LOCK_AFTER_FAILURES``): every attempt is refused
    until ``until``, or until the user unlocks it from the emailed link or an admin does."""

    def __init__(self, until: dt.datetime) -> None:
        super().__init__(f"account locked until {until.isoformat()}")
        self.until = until


class AccountJustLocked(InvalidCredentials):
    """This failure locked the account: the same answer, and the user is told by email."""

    def __init__(self, user_id: int, email: str, until: dt.datetime) -> None:
        super().__init__()
        self.user_id = user_id
        self.email = email
        self.until = until


class TooManyAttempts(LoginRefused):
    """Attempts from this client or at this address wait ``retry_after`` before the next.

    Told as such (with the wait): it depends only on what was typed and where from."""

    def __init__(self, retry_after: dt.timedelta) -> None:
        super().__init__(f"too many attempts; retry after {retry_after}")
        self.retry_after = retry_after


class InvalidToken(UserError):
    """A reset or unlock link that is expired, tampered with, or already used."""
