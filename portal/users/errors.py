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
    """Too many consecutive failures: every attempt is refused until ``until``."""

    def __init__(self, until: dt.datetime) -> None:
        super().__init__(f"account locked until {until.isoformat()}")
        self.until = until
