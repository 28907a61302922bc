"""Back-office users: passwords, throttling and lockout, sessions, `portal user create`."""

from __future__ import annotations

import datetime as dt
import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import cli, clock, migrate
from portal.company.models import Company
from portal.db import make_engine, make_session_factory
from portal.demo.seed import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, seed_demo_admin
from portal.timeline.models import Actor, TimelineEvent
from portal.users import passwords, sessions, throttle, totp
from portal.users import service as users
from portal.users.errors import (
    AccountJustLocked,
    AccountLocked,
    EmailTaken,
    InvalidCredentials,
    InvalidEmail,
    LoginRefused,
    TooManyAttempts,
    WeakPassword,
)
from portal.users.models import LoginThrottle, Role, User, UserSession

PASSWORD = "correct horse battery staple"
IDLE = dt.timedelta(minutes=30)
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
_sequence = itertools.count(1)


@pytest.fixture(autouse=True)
def _cheap_hashing() -> Iterator[None]:
    """Argon2 with test-sized parameters: the same code paths in a fraction of the time."""
    previous = users.set_password_hasher(
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    yield
    users.set_password_hasher(previous)


def make_user(db: Session, role: Role = Role.CREDIT_MANAGER, **values: Any) -> User:
    email = values.pop("email", f"user{next(_sequence)}@relance.example")
    user = users.create_user(db, email, role, values.pop("password", PASSWORD), **values)
    db.flush()
    return user


def login(db: Session, company: Company, email: str, password: str) -> User:
    return users.authenticate(db, email, password, company_id=company.id, client_ip="192.0.2.7")


def events(db: Session, action: str) -> list[TimelineEvent]:
    return list(
        db.scalars(
            select(TimelineEvent).where(TimelineEvent.action == action).order_by(TimelineEvent.id)
        )
    )


# --- creating users ---------------------------------------------------------------------------


def test_create_user_normalises_the_email_and_hashes_with_argon2id(db: Session) -> None:
    user = make_user(db, Role.VIEWER, email="  Anna.Smith@Example.COM ")
    assert user.email == "anna.smith@example.com"
    assert user.role is Role.VIEWER
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert user.is_active
    assert user.failed_logins == 0
    assert user.session_version == 1


def test_the_same_email_in_another_case_is_taken(db: Session) -> None:
    make_user(db, email="dup@example.com")
    with pytest.raises(EmailTaken):
        make_user(db, email="DUP@example.com")


def test_create_user_with_a_company_lands_on_the_timeline(db: Session, company: Company) -> None:
    user = make_user(db, Role.ADMIN, company_id=company.id)
    [event] = events(db, "user.created")
    assert event.subject_id == str(user.id)
    assert event.customer_id is None
    assert event.details["role"] == "admin"


@pytest.mark.parametrize("password", ["", "short", "eleven char", " " * 12, "x" * 1025])
def test_password_policy_refuses_with_a_clear_message(db: Session, password: str) -> None:
    with pytest.raises(WeakPassword) as refusal:
        make_user(db, password=password)
    assert "password" in str(refusal.value)
    if len(password) < 12:
        assert "at least 12 characters" in str(refusal.value)


def test_twelve_characters_are_enough(db: Session) -> None:
    assert make_user(db, password="twelve chars").id


@pytest.mark.parametrize(
    "email", ["", "no-at-sign", "a@b", "two@@example.com", "x" * 250 + "@a.fr"]
)
def test_create_user_refuses_what_is_not_an_email(db: Session, email: str) -> None:
    with pytest.raises(InvalidEmail):
        make_user(db, email=email)


# --- logging in -------------------------------------------------------------------------------


def test_authenticate_returns_the_user_and_records_it(db: Session, company: Company) -> None:
    user = make_user(db, email="cm@example.com")
    assert login(db, company, " CM@example.com", PASSWORD) is user
    [event] = events(db, "user.logged_in")
    assert event.actor is Actor.USER
    assert event.actor_id == str(user.id)
    assert event.company_id == company.id
    assert event.customer_id is None
    assert event.details["ip"] == "192.0.2.7"


def totp_login(db: Session, company: Company, user: User, code: str) -> User:
    return users.authenticate(
        db, user.email, PASSWORD, company_id=company.id, client_ip="192.0.2.7", totp_code=code
    )


def test_a_second_factor_code_is_accepted_once(db: Session, company: Company) -> None:
    secret = pyotp.random_base32()
    user = make_user(db, email="totp@relance.example")
    clock.freeze(T0)
    assert totp.set_totp(db, user, secret, pyotp.TOTP(secret).at(T0), company_id=company.id)
    # The code that turned the second factor on does not log in: it was used.
    with pytest.raises(InvalidCredentials):
        totp_login(db, company, user, pyotp.TOTP(secret).at(T0))
    clock.freeze(T0 + dt.timedelta(seconds=30))
    code = pyotp.TOTP(secret).at(T0 + dt.timedelta(seconds=30))
    assert totp_login(db, company, user, code) is user
    # The same code again, still within its window: a replay, refused.
    clock.freeze(T0 + dt.timedelta(seconds=40))
    with pytest.raises(InvalidCredentials):
        totp_login(db, company, user, code)
    clock.freeze(T0 + dt.timedelta(seconds=60))
    assert totp_login(db, company, user, pyotp.TOTP(secret).at(T0 + dt.timedelta(seconds=60)))


def test_a_code_from_the_step_before_is_accepted_for_clock_drift(
    db: Session, company: Company
) -> None:
    secret = pyotp.random_base32()
    user = make_user(db, email="drift@relance.example")
    user.totp_secret = secret
    clock.freeze(T0 + dt.timedelta(seconds=35))
    assert totp_login(db, company, user, pyotp.TOTP(secret).at(T0)) is user
    assert user.totp_last_step == pyotp.TOTP(secret).timecode(T0)
    clock.freeze(T0 + dt.timedelta(seconds=100))
    with pytest.raises(InvalidCredentials):  # two steps late: too old
        totp_login(db, company, user, pyotp.TOTP(secret).at(T0 + dt.timedelta(seconds=35)))


def test_unknown_email_and_wrong_password_raise_the_same_error(
    db: Session, company: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user(db, email="known@example.com")
    verified: list[str] = []
    real_verify = users._verify

    def spy(password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return real_verify(password_hash, password)

    monkeypatch.setattr(users, "_verify", spy)
    with pytest.raises(InvalidCredentials) as wrong:
        login(db, company, "known@example.com", "not the password at all")
    with pytest.raises(InvalidCredentials) as unknown:
        login(db, company, "nobody@example.com", PASSWORD)
    assert type(wrong.value) is type(unknown.value)
    assert str(wrong.value) == str(unknown.value)
    # An unknown address costs an Argon2 verification too (against a dummy hash).
    assert len(verified) == 2
    assert verified[1] == users._dummy_hash()
    failed = events(db, "user.login_failed")
    assert [e.details["reason"] for e in failed] == ["wrong_password", "unknown_email"]
    assert all(e.actor is Actor.SYSTEM and e.customer_id is None for e in failed)
    assert "nobody" not in str(failed[1].details)  # nothing of what was typed is kept


def login_from(db: Session, company: Company, email: str, password: str, ip: str) -> User:
    return users.authenticate(db, email, password, company_id=company.id, client_ip=ip)


def test_failures_from_one_client_make_it_wait_longer_each_time(
    db: Session, company: Company
) -> None:
    clock.freeze(T0)
    make_user(db, email="slow@example.com")
    free = throttle.RULES["client"].free
    for _ in range(free):
        with pytest.raises(InvalidCredentials):
            login(db, company, "slow@example.com", "wrong password!!")
    with pytest.raises(InvalidCredentials):
        login(db, company, "slow@example.com", "wrong password!!")  # this one costs 2 s
    for address in ("slow@example.com", "SLOW@example.com "):
        with pytest.raises(TooManyAttempts) as waiting:
            login(db, company, address, PASSWORD)  # even the right password, not checked
        assert waiting.value.retry_after == dt.timedelta(seconds=2)
    assert events(db, "user.login_throttled")[-1].subject_id is None
    for _ in range(20):  # a flood of refused attempts during one wait: no row each
        with pytest.raises(TooManyAttempts):
            login(db, company, "slow@example.com", PASSWORD)
    assert len(events(db, "user.login_throttled")) == 1
    clock.freeze(T0 + dt.timedelta(seconds=2))
    with pytest.raises(InvalidCredentials):
        login(db, company, "slow@example.com", "wrong password!!")  # the next costs 4 s
    clock.freeze(T0 + dt.timedelta(seconds=5))
    with pytest.raises(TooManyAttempts) as waiting:
        login(db, company, "slow@example.com", PASSWORD)
    assert waiting.value.retry_after == dt.timedelta(seconds=1)
    clock.freeze(T0 + dt.timedelta(seconds=6))
    assert login(db, company, "slow@example.com", PASSWORD).email == "slow@example.com"


def test_an_unknown_address_is_throttled_the_same_way(db: Session, company: Company) -> None:
    clock.freeze(T0)
    make_user(db, email="known@example.com")
    answers: dict[str, list[str]] = {}
    for n, address in enumerate(("known@example.com", "nobody@example.com")):
        for _ in range(throttle.RULES["client"].free + 2):
            try:
                login_from(db, company, address, "wrong password!!", ip=f"192.0.2.{n}")
            except LoginRefused as refused:
                answers.setdefault(address, []).append(type(refused).__name__)
    assert answers["known@example.com"] == answers["nobody@example.com"]
    assert answers["nobody@example.com"][-1] == "TooManyAttempts"
    stored = [k for (k,) in db.execute(select(LoginThrottle.key))]
    assert not [k for k in stored if "nobody" in k or "known" in k]  # keyed digests only


def test_an_anonymous_client_cannot_keep_the_user_out(db: Session, company: Company) -> None:
    clock.freeze(T0)
    user = make_user(db, email="target@example.com")
    for _ in range(12):
        with pytest.raises(LoginRefused):
            login_from(db, company, "target@example.com", "wrong password!!", ip="203.0.113.9")
    assert user.locked_until is None
    # The user, at their own client, is not held back by the attacker's failures.
    assert login_from(db, company, "target@example.com", PASSWORD, ip="198.51.100.4") is user


def test_guessing_across_many_accounts_from_one_client_is_throttled(
    db: Session, company: Company
) -> None:
    clock.freeze(T0)
    make_user(db, email="real@example.com")
    free = throttle.RULES["ip"].free
    for n in range(free + 1):
        with pytest.raises(InvalidCredentials):
            login_from(db, company, f"guess{n}@example.com", "password guess!", ip="203.0.113.7")
    with pytest.raises(TooManyAttempts):
        login_from(db, company, "real@example.com", PASSWORD, ip="203.0.113.7")
    assert login_from(db, company, "real@example.com", PASSWORD, ip="198.51.100.4")


def test_many_failures_in_a_row_lock_the_account_until_unlocked(
    db: Session, company: Company
) -> None:
    user = make_user(db, email="lock@example.com")
    moment = T0
    for n in range(users.LOCK_AFTER_FAILURES):
        moment += throttle.RULES["client"].max_delay  # each attempt waits its turn
        clock.freeze(moment)
        expected = AccountJustLocked if n == users.LOCK_AFTER_FAILURES - 1 else InvalidCredentials
        with pytest.raises(expected):
            login(db, company, "lock@example.com", "wrong password!!")
    assert user.locked_until == moment + users.LOCKOUT
    [locked] = events(db, "user.locked")
    assert locked.actor is Actor.SYSTEM

    clock.freeze(moment + dt.timedelta(hours=1))
    with pytest.raises(AccountLocked):
        login_from(db, company, "lock@example.com", PASSWORD, ip="198.51.100.4")  # even so
    assert events(db, "user.login_refused")[-1].details["reason"] == "locked"
    assert passwords.unlock(db, user, company_id=company.id)
    # At once: unlocking also lifts the delay the account's failures had earned.
    assert login_from(db, company, "lock@example.com", PASSWORD, ip="198.51.100.4") is user
    assert user.failed_logins == 0
    assert user.locked_until is None


def test_the_lock_is_computed_from_the_database(db: Session, company: Company) -> None:
    user = make_user(db, email="state@example.com")
    # Failures counted by another process, straight in the table.
    db.execute(
        update(User).where(User.id == user.id).values(failed_logins=users.LOCK_AFTER_FAILURES - 1)
    )
    db.expire_all()
    with pytest.raises(AccountJustLocked):
        login(db, company, "state@example.com", "wrong password!!")
    db.flush()
    db.expire_all()
    reloaded = db.get(User, user.id)
    assert reloaded is not None
    assert reloaded.locked_until is not None
    with pytest.raises(LoginRefused):
        login(db, company, "state@example.com", PASSWORD)


def test_counts_that_no_longer_matter_are_pruned(db: Session, company: Company) -> None:
    clock.freeze(T0)
    for ip in ("192.0.2.1", "192.0.2.2"):
        with pytest.raises(InvalidCredentials):
            login_from(db, company, "someone@example.com", "wrong password!!", ip=ip)
    later = T0 + throttle.KEEP + dt.timedelta(seconds=1)
    clock.freeze(later)
    with pytest.raises(InvalidCredentials):
        login_from(db, company, "someone@example.com", "wrong password!!", ip="192.0.2.3")
    # The address's own count was just touched; the first two clients' rows are stale.
    assert throttle.prune(db, later) == 4
    left = {scope for (scope,) in db.execute(select(LoginThrottle.scope))}
    assert left == {"client", "ip", "account"}
    assert throttle.prune(db, later) == 0


def test_a_success_resets_the_count_of_consecutive_failures(db: Session, company: Company) -> None:
    user = make_user(db, email="reset@example.com")
    for _round in range(2):
        for _ in range(throttle.RULES["client"].free):
            with pytest.raises(InvalidCredentials):
                login(db, company, "reset@example.com", "wrong password!!")
        assert user.failed_logins == throttle.RULES["client"].free
        assert login(db, company, "reset@example.com", PASSWORD) is user
        assert user.failed_logins == 0
    assert user.locked_until is None


def test_an_inactive_user_cannot_log_in(db: Session, company: Company) -> None:
    user = make_user(db, email="gone@example.com")
    user.is_active = False
    with pytest.raises(InvalidCredentials):
        login(db, company, "gone@example.com", PASSWORD)


def test_an_overlong_password_is_refused_without_error(db: Session, company: Company) -> None:
    make_user(db, email="long@example.com")
    with pytest.raises(InvalidCredentials):
        login(db, company, "long@example.com", PASSWORD + "x" * 2000)


def test_a_hash_with_old_parameters_is_replaced_at_login(db: Session, company: Company) -> None:
    user = make_user(db, email="old@example.com")
    user.password_hash = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(
        PASSWORD
    )
    old_hash = user.password_hash
    assert users.needs_rehash(old_hash)
    login(db, company, "old@example.com", PASSWORD)
    assert user.password_hash != old_hash
    assert not users.needs_rehash(user.password_hash)
    assert login(db, company, "old@example.com", PASSWORD) is user


# --- sessions ---------------------------------------------------------------------------------


def test_a_session_stores_only_the_digest_of_its_secret(db: Session) -> None:
    user = make_user(db)
    secret = sessions.start_session(db, user, "192.0.2.1", "Firefox")
    db.flush()
    row = db.scalars(select(UserSession).where(UserSession.user_id == user.id)).one()
    assert row.id != secret
    assert len(row.id) == 64
    assert row.session_version == user.session_version
    current = sessions.load_session(db, secret, IDLE)
    assert current is not None
    assert current.user is user
    assert sessions.load_session(db, row.id, IDLE) is None  # the digest is not a key
    assert sessions.load_session(db, "x" * 500, IDLE) is None


def test_an_idle_session_ends(db: Session) -> None:
    clock.freeze(T0)
    user = make_user(db)
    secret = sessions.start_session(db, user, None, None)
    db.flush()
    clock.freeze(T0 + IDLE - dt.timedelta(seconds=1))
    assert sessions.load_session(db, secret, IDLE) is not None  # and touched
    clock.freeze(T0 + 2 * IDLE - dt.timedelta(seconds=2))
    assert sessions.load_session(db, secret, IDLE) is not None
    clock.freeze(T0 + 3 * IDLE)
    assert sessions.load_session(db, secret, IDLE) is None
    clock.freeze(T0 + 3 * IDLE + dt.timedelta(seconds=1))
    assert sessions.load_session(db, secret, IDLE) is None  # ended, not only idle


def test_a_session_has_a_maximum_age_whatever_its_activity(db: Session) -> None:
    clock.freeze(T0)
    user = make_user(db)
    secret = sessions.start_session(db, user, None, None)
    db.flush()
    moment = T0
    while moment < T0 + sessions.MAX_SESSION_AGE:
        moment += IDLE / 2
        clock.freeze(moment)
        assert sessions.load_session(db, secret, IDLE) is not None
    clock.freeze(T0 + sessions.MAX_SESSION_AGE + dt.timedelta(seconds=1))
    assert sessions.load_session(db, secret, IDLE) is None


def test_log_out_everywhere_ends_every_session(db: Session, company: Company) -> None:
    user = make_user(db)
    first = sessions.start_session(db, user, None, "laptop")
    second = sessions.start_session(db, user, None, "phone")
    db.flush()
    assert len(sessions.open_sessions(db, user, IDLE)) == 2
    assert sessions.log_out_everywhere(db, user, company_id=company.id, client_ip=None) == 2
    assert sessions.load_session(db, first, IDLE) is None
    assert sessions.load_session(db, second, IDLE) is None
    assert sessions.open_sessions(db, user, IDLE) == []
    assert user.session_version == 2
    [event] = events(db, "user.logged_out_everywhere")
    assert event.actor is Actor.USER
    assert event.details["sessions_ended"] == 2


def test_a_deactivated_users_sessions_stop_working(db: Session) -> None:
    user = make_user(db)
    secret = sessions.start_session(db, user, None, None)
    db.flush()
    user.is_active = False
    assert sessions.load_session(db, secret, IDLE) is None


# --- demo administrator -----------------------------------------------------------------------


def test_demo_admin_is_created_once_and_only_in_development(db: Session, company: Company) -> None:
    admin = seed_demo_admin(db, company, development=True)
    assert admin.email == DEMO_ADMIN_EMAIL
    assert admin.role is Role.ADMIN
    assert seed_demo_admin(db, company, development=True) is admin
    assert login(db, company, DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD) is admin
    with pytest.raises(RuntimeError):
        seed_demo_admin(db, company, development=False)


# --- command line -----------------------------------------------------------------------------


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated SQLite file that `portal ...` commands use through PORTAL_DATABASE_URL."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate.upgrade(url)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("PORTAL_DATABASE_URL", url)
    monkeypatch.setenv("PORTAL_ENVIRONMENT", "test")
    monkeypatch.setenv("PORTAL_DOCUMENTS_DIR", str(tmp_path / "documents"))
    monkeypatch.delenv("PORTAL_NEW_USER_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal
    return url


def _stored_users(url: str) -> list[User]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            return list(session.scalars(select(User).order_by(User.id)))
    finally:
        engine.dispose()


def test_cli_user_create_reads_the_password_from_the_environment(
    cli_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORTAL_NEW_USER_PASSWORD", PASSWORD)
    code = cli.main(["user", "create", "--email", " Ops@Example.COM", "--role", "credit_manager"])
    assert code == 0
    assert "ops@example.com" in capsys.readouterr().out
    [user] = _stored_users(cli_database)
    assert user.email == "ops@example.com"
    assert user.role is Role.CREDIT_MANAGER
    assert users.verify_password(user.password_hash, PASSWORD)

    with pytest.raises(SystemExit) as taken:
        cli.main(["user", "create", "--email", "OPS@example.com", "--role", "viewer"])
    assert "already exists" in str(taken.value.code)
    assert len(_stored_users(cli_database)) == 1


def test_cli_user_create_without_a_password_or_with_a_weak_one_creates_nothing(
    cli_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit) as missing:
        cli.main(["user", "create", "--email", "a@example.com", "--role", "viewer"])
    assert "PORTAL_NEW_USER_PASSWORD" in str(missing.value.code)
    monkeypatch.setenv("PORTAL_NEW_USER_PASSWORD", "too short")
    with pytest.raises(SystemExit) as weak:
        cli.main(["user", "create", "--email", "a@example.com", "--role", "viewer"])
    assert "at least 12 characters" in str(weak.value.code)
    assert _stored_users(cli_database) == []


def test_cli_user_create_asks_twice_on_a_terminal(
    cli_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    answers = iter(["short", PASSWORD, PASSWORD + "typo", PASSWORD, PASSWORD])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("getpass.getpass", fake_getpass)
    monkeypatch.setenv("PORTAL_NEW_USER_PASSWORD", "ignored on a terminal")
    assert cli.main(["user", "create", "--email", "tty@example.com", "--role", "admin"]) == 0
    assert len(prompts) == 5  # too short; mismatch; then a match
    [user] = _stored_users(cli_database)
    assert users.verify_password(user.password_hash, PASSWORD)


def test_cli_user_create_help_and_no_password_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as shown:
        cli.main(["user", "create", "--help"])
    assert shown.value.code == 0
    help_text = capsys.readouterr().out
    assert "--email" in help_text
    assert "--role" in help_text
    assert "PORTAL_NEW_USER_PASSWORD" in help_text
    with pytest.raises(SystemExit) as refused:
        cli.main(["user", "create", "--email", "a@example.com", "--role", "admin", "--password=x"])
    assert refused.value.code == 2
    assert set(cli.USER_ROLES) == {role.value for role in Role}


def test_cli_demo_prints_the_back_office_after_the_portal_links(
    cli_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORTAL_BASE_URL", "http://127.0.0.1:8123")
    for _run in range(2):  # idempotent
        assert cli.main(["demo", "--no-serve"]) == 0
    output = capsys.readouterr().out
    last_run = output[output.rindex("Relance demo is ready") :]
    assert last_run.index("/l/") < last_run.index("http://127.0.0.1:8123/admin")
    assert DEMO_ADMIN_EMAIL in last_run
    assert DEMO_ADMIN_PASSWORD in last_run
    admins = [u for u in _stored_users(cli_database) if u.email == DEMO_ADMIN_EMAIL]
    assert len(admins) == 1
