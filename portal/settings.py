"""Configuration: the only module that reads the environment.

Every setting comes from an environment variable named ``PORTAL_<NAME>``; a
``.env`` file in the working directory fills in what the environment does not
set. docs/configuration.md lists them all.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEVELOPMENT_SECRET = "development-secret-change-me"  # noqa: S105 - refused outside development

ENVIRONMENTS = ("development", "test", "production")
# portal.customers.models.RiskSegment's values (literal: settings import no models).
RISK_SEGMENTS = ("low", "medium", "high")
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class ConfigurationError(ValueError):
    """A setting is missing or invalid; the message names it."""


def _secret_repr(value: object) -> str:
    return "'***'" if value else "''"


@dataclass(frozen=True)
class CompanyIdentity:
    """Who the debtor is dealing with: shown on every page, email and PDF."""

    name: str = "Relance Demo SAS"
    legal_name: str = "Relance Demo SAS"
    address: str = "12 rue de la Paix\n75002 Paris\nFrance"
    registration: str = "SIREN 123 456 789"
    vat_number: str = "FR32123456789"
    email: str = "credit@relance.example"
    phone: str = "+33 1 23 45 67 89"
    website: str = "https://relance.example"
    logo_path: str = ""
    primary_colour: str = "#1f4e79"
    accent_colour: str = "#0b7a53"
    iban: str = "FR7630006000011234567890189"
    bic: str = "AGRIFRPPXXX"
    country: str = "FR"
    currency: str = "EUR"
    timezone: str = "Europe/Paris"


@dataclass(frozen=True)
class SmtpSettings:
    host: str = ""
    port: int = 587
    security: str = "starttls"  # "none", "starttls" or "tls"
    username: str = ""
    password: str = field(default="", repr=False)
    sender: str = "Relance <no-reply@relance.example>"
    timeout_seconds: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.host)


@dataclass(frozen=True)
class StripeSettings:
    """Card payments through Stripe; hidden unless both keys are set."""

    secret_key: str = field(default="", repr=False)
    publishable_key: str = ""
    webhook_secret: str = field(default="", repr=False)
    # Seconds a webhook's signed timestamp may be old (Stripe's default tolerance).
    webhook_tolerance_seconds: int = 300
    # Empty: Stripe's own API. Tests point this at a local fake of Stripe.
    api_base: str = ""
    js_url: str = "https://js.stripe.com/v3/"
    # Let the Stripe account decide which methods (cards, SEPA Debit, wallets) are offered.
    # Off: cards only (for API fakes that reject ``automatic_payment_methods``).
    automatic_payment_methods: bool = True
    timeout_seconds: float = 15.0

    @property
    def enabled(self) -> bool:
        return bool(self.secret_key and self.publishable_key)


@dataclass(frozen=True)
class SmsSettings:
    provider: str = "log"  # "log" (development: logged, not sent) or "twilio"
    api_url: str = "https://api.twilio.com"
    account_sid: str = ""
    auth_token: str = field(default="", repr=False)
    sender: str = ""
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class ReminderSettings:
    """The reminder engine (portal/reminders); scenarios live in their own TOML file."""

    scenarios_file: Path = PROJECT_ROOT / "portal" / "reminders" / "scenarios.toml"
    # Public holidays of this country are not business days; empty: the company's country.
    holiday_country: str = ""
    send_from_hour: int = 9  # business hours, in the customer's timezone
    send_until_hour: int = 18
    # The ECB's refinancing rate in percent; late-payment penalties are this plus 10 points.
    ecb_rate: str = "4.15"
    formal_notice_penalties: bool = True
    max_attempts: int = 5
    retry_base_seconds: int = 60
    # A claimed message not recorded as sent within this time is claimed again.
    lease_seconds: int = 300
    poll_seconds: float = 30.0
    # /healthz/outbox reports "stalled" when due messages waited this long and nothing left.
    stall_seconds: int = 900
    # The worker logs its progress (messages/s, queue, retries, failures) this often.
    progress_log_seconds: float = 60.0
    plan_hour: int = 6  # the worker plans once a day from this hour (company timezone)
    letters_dir: Path = PROJECT_ROOT / "var" / "letters"
    # An open call step holds its invoices this many days; then the scenario goes on and
    # the task shows as overdue in the call queue.
    call_wait_days: int = 7
    # Messages one customer may receive in any 30 days (the back office may change it).
    monthly_cap: int = 4
    # Yearly periods without reminders, "MM-DD..MM-DD" separated by commas, e.g.
    # "08-01..08-31,12-24..12-31" (the back office may change them).
    quiet_periods: str = ""
    # Registered letters (lettre recommandée): "task" (a credit manager posts it and
    # records the tracking number) or "local" (the local stand-in of a postal provider).
    registered_letters: str = "task"


@dataclass(frozen=True)
class CaseSettings:
    """Company policy for payment plans and promises, and limits on attachments.

    Amounts are in minor units of the company's currency.
    """

    plan_max_instalments: int = 6
    plan_max_days: int = 180
    plan_min_instalment_minor: int = 5_000
    plan_max_total_minor: int = 1_000_000
    plan_risk_segments: tuple[str, ...] = ("low", "medium")
    plan_grace_days: int = 5
    review_days: int = 2
    promise_max_days: int = 30
    promise_grace_days: int = 3
    attachments_dir: Path = PROJECT_ROOT / "var" / "attachments"
    attachment_max_bytes: int = 5 * 1024 * 1024
    attachment_max_count: int = 5
    # Messages a debtor may post per hour, in one case and across all their cases.
    case_messages_per_hour: int = 10
    customer_messages_per_hour: int = 30
    # The assignee hears of the first debtor message at once, then of the next ones in
    # one digest email per case at most this often.
    staff_digest_minutes: int = 60


@dataclass(frozen=True)
class ApiSettings:
    """The integrators' API (portal/web/api) and outgoing webhooks (portal/webhooks)."""

    # Requests one API key may make per calendar minute (all workers together), then 429.
    rate_per_minute: int = 600
    # Networks (CIDR) webhook URLs may resolve to although private, loopback or link-local:
    # empty in production; tests and a local demo receiver list 127.0.0.0/8.
    webhook_allowed_networks: tuple[str, ...] = ()
    webhook_timeout_seconds: float = 10.0
    # A claimed delivery not recorded within this time is claimed again (a worker died).
    webhook_lease_seconds: int = 60
    webhook_poll_seconds: float = 1.0
    # An endpoint whose every attempt failed for this many days is disabled, admins emailed.
    webhook_disable_after_days: int = 5
    # Hours a stored answer to a request with an Idempotency-Key is replayed, then pruned.
    idempotency_hours: int = 24
    # Days a finished webhook delivery (delivered, or failed for good) stays in the log.
    webhook_retention_days: int = 30


@dataclass(frozen=True)
class Settings:
    environment: str = "development"
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'relance.db'}"
    secret_keys: tuple[str, ...] = field(default=(DEVELOPMENT_SECRET,), repr=False)
    base_url: str = "http://127.0.0.1:8000"
    link_max_age_days: int = 45
    languages: tuple[str, ...] = ("fr", "en")
    default_language: str = "fr"
    session_idle_minutes: int = 30
    frame_ancestors: tuple[str, ...] = ("'self'",)
    documents_dir: Path = PROJECT_ROOT / "var" / "documents"
    pdf_font_path: str = ""
    fresh_link_limit_per_hour: int = 5
    # Days after a declared transfer's date during which its invoices count as "payment pending".
    transfer_grace_days: int = 10
    # Threads serving database-bound requests per worker process; more only add lock contention.
    request_threads: int = 4
    # Requests one worker process serves at once; beyond it a quick 503 (0: no limit).
    max_requests_in_flight: int = 32
    # Answers slower than this make a worker admit fewer requests at once (web.overload).
    slow_answer_ms: int = 400
    # Proxies whose X-Forwarded-For/-Proto headers are trusted (uvicorn's forwarded_allow_ips).
    forwarded_allow_ips: str = "127.0.0.1"
    log_level: str = "info"
    # Where the footers link to this version's source code (AGPL-3.0 section 13): change it
    # to your own repository if you run a modified version.
    source_url: str = "https://github.com/relance/relance"
    mail_spool_dir: Path = PROJECT_ROOT / "var" / "mail"
    company: CompanyIdentity = field(default_factory=CompanyIdentity)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    stripe: StripeSettings = field(default_factory=StripeSettings)
    # Whether a debtor may pay an amount of their choosing, and the smallest such amount
    # (in minor units of the invoices' currency).
    partial_payments: bool = True
    partial_payment_minimum_minor: int = 1000
    # Development and tests only: `portal` commands run this many days ahead of today.
    clock_shift_days: int = 0
    # Development only, and only when switched on (`portal demo` does): the outbox viewer
    # at /dev/outbox, behind the back-office login. It shows live portal links.
    dev_outbox: bool = False
    # The bearer secret a mail server or mailbox reader posts delivery status notifications
    # with (POST /webhooks/email/dsn); empty: the endpoint does not exist.
    dsn_secret: str = field(default="", repr=False)
    sms: SmsSettings = field(default_factory=SmsSettings)
    reminders: ReminderSettings = field(default_factory=ReminderSettings)
    cases: CaseSettings = field(default_factory=CaseSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    # Imports: where original files are kept for audit, for how long, and what is accepted.
    imports_dir: Path = PROJECT_ROOT / "var" / "imports"
    import_retention_days: int = 90
    import_max_bytes: int = 200 * 1024 * 1024
    import_max_rows: int = 2_000_000

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={_secret_repr(getattr(self, f.name))}"
            if f.name in ("secret_keys", "dsn_secret")
            else f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"Settings({shown})"

    @property
    def development(self) -> bool:
        return self.environment in ("development", "test")

    @property
    def secure_cookies(self) -> bool:
        return not self.development

    @property
    def link_max_age_seconds(self) -> int:
        return self.link_max_age_days * 86400

    def check(self) -> None:
        """Refuse configurations that are unsafe or unusable."""
        if self.environment not in ENVIRONMENTS:
            raise ConfigurationError(f"PORTAL_ENVIRONMENT must be one of {', '.join(ENVIRONMENTS)}")
        if not self.secret_keys or any(not key for key in self.secret_keys):
            raise ConfigurationError("PORTAL_SECRET_KEYS must list at least one secret")
        if not self.development:
            weak = [k for k in self.secret_keys if k == DEVELOPMENT_SECRET or len(k) < 32]
            if weak:
                raise ConfigurationError(
                    "PORTAL_SECRET_KEYS holds the development default or a secret shorter "
                    "than 32 characters; generate one with: "
                    "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
                )
            if not self.base_url.startswith("https://"):
                raise ConfigurationError("PORTAL_BASE_URL must use https outside development")
        if self.default_language not in self.languages:
            raise ConfigurationError("PORTAL_DEFAULT_LANGUAGE must be one of PORTAL_LANGUAGES")
        from portal.i18n import SUPPORTED

        unknown = set(self.languages) - set(SUPPORTED)
        if unknown:
            raise ConfigurationError(f"PORTAL_LANGUAGES: no translation for {sorted(unknown)}")
        if not self.source_url.startswith(("https://", "http://")):
            raise ConfigurationError("PORTAL_SOURCE_URL must be an http(s) address")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigurationError("PORTAL_LOG_LEVEL must be debug, info, warning or error")
        if self.request_threads < 1:
            raise ConfigurationError("PORTAL_REQUEST_THREADS must be at least 1")
        if self.max_requests_in_flight < 0:
            raise ConfigurationError("PORTAL_MAX_REQUESTS_IN_FLIGHT must be 0 or more")
        if self.slow_answer_ms < 1:
            raise ConfigurationError("PORTAL_SLOW_ANSWER_MS must be at least 1")
        if self.link_max_age_days < 1:
            raise ConfigurationError("PORTAL_LINK_MAX_AGE_DAYS must be at least 1")
        if self.transfer_grace_days < 1:
            raise ConfigurationError("PORTAL_TRANSFER_GRACE_DAYS must be at least 1")
        for name in ("primary_colour", "accent_colour"):
            if not HEX_COLOUR.match(getattr(self.company, name)):
                raise ConfigurationError(
                    f"PORTAL_COMPANY_{name.upper()} must be a colour like #1f4e79"
                )
        if self.company.iban:
            from stdnum import iban as iban_check

            if not iban_check.is_valid(self.company.iban):
                raise ConfigurationError("PORTAL_COMPANY_IBAN is not a valid IBAN")
        if self.company.bic:
            from stdnum import bic as bic_check

            if not bic_check.is_valid(self.company.bic):
                raise ConfigurationError("PORTAL_COMPANY_BIC is not a valid BIC")
        if self.smtp.security not in ("none", "starttls", "tls"):
            raise ConfigurationError("PORTAL_SMTP_SECURITY must be none, starttls or tls")
        for network in self.api.webhook_allowed_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigurationError(
                    "PORTAL_WEBHOOK_ALLOWED_NETWORKS lists networks such as 127.0.0.0/8, "
                    f"not {network!r}"
                ) from None
        if self.api.rate_per_minute < 1:
            raise ConfigurationError("PORTAL_API_RATE_PER_MINUTE must be at least 1")
        if self.api.idempotency_hours < 1 or self.api.webhook_retention_days < 1:
            raise ConfigurationError(
                "PORTAL_API_IDEMPOTENCY_HOURS and PORTAL_WEBHOOK_RETENTION_DAYS must be at least 1"
            )
        if self.clock_shift_days and not self.development:
            raise ConfigurationError("PORTAL_CLOCK_SHIFT_DAYS is for development and tests only")
        if self.dev_outbox and not self.development:
            raise ConfigurationError(
                "PORTAL_DEV_OUTBOX is for development only: the outbox viewer shows live "
                "portal links"
            )
        if self.partial_payment_minimum_minor < 1:
            raise ConfigurationError("PORTAL_PARTIAL_PAYMENT_MINIMUM must be more than zero")
        if self.stripe.enabled:
            if not self.stripe.secret_key.startswith(("sk_", "rk_")):
                raise ConfigurationError("PORTAL_STRIPE_SECRET_KEY must start with sk_ or rk_")
            if not self.stripe.publishable_key.startswith("pk_"):
                raise ConfigurationError("PORTAL_STRIPE_PUBLISHABLE_KEY must start with pk_")
            if not self.stripe.webhook_secret.startswith("whsec_"):
                raise ConfigurationError(
                    "PORTAL_STRIPE_WEBHOOK_SECRET must be set (whsec_...) when Stripe is on"
                )
        if self.stripe.webhook_tolerance_seconds < 1:
            raise ConfigurationError("PORTAL_STRIPE_WEBHOOK_TOLERANCE_SECONDS must be positive")
        self._check_reminders()

    def _check_reminders(self) -> None:
        from decimal import Decimal, InvalidOperation

        r = self.reminders
        if self.sms.provider not in ("log", "twilio"):
            raise ConfigurationError("PORTAL_SMS_PROVIDER must be log or twilio")
        if self.sms.provider == "twilio" and not (
            self.sms.account_sid and self.sms.auth_token and self.sms.sender
        ):
            raise ConfigurationError(
                "PORTAL_SMS_PROVIDER=twilio needs PORTAL_SMS_ACCOUNT_SID, "
                "PORTAL_SMS_AUTH_TOKEN and PORTAL_SMS_SENDER"
            )
        if not 0 <= r.send_from_hour < r.send_until_hour <= 24:
            raise ConfigurationError(
                "PORTAL_REMINDER_SEND_FROM_HOUR and PORTAL_REMINDER_SEND_UNTIL_HOUR must "
                "satisfy 0 <= from < until <= 24"
            )
        try:
            rate = Decimal(r.ecb_rate)
        except InvalidOperation:
            rate = Decimal(-1)
        if not Decimal(-5) <= rate <= Decimal(50) or rate != rate.quantize(Decimal("0.01")):
            raise ConfigurationError(
                "PORTAL_REMINDER_ECB_RATE must be a percentage with at most two decimals"
            )
        if r.max_attempts < 1:
            raise ConfigurationError("PORTAL_REMINDER_MAX_ATTEMPTS must be at least 1")
        if r.lease_seconds < 2 * max(self.smtp.timeout_seconds, self.sms.timeout_seconds):
            # A send still in progress must never look abandoned to another worker.
            raise ConfigurationError(
                "PORTAL_REMINDER_LEASE_SECONDS must be at least twice the SMTP and SMS timeouts"
            )
        if not 0 <= r.plan_hour <= 23:
            raise ConfigurationError("PORTAL_REMINDER_PLAN_HOUR must be between 0 and 23")
        if r.call_wait_days < 0 or r.monthly_cap < 1:
            raise ConfigurationError(
                "PORTAL_REMINDER_CALL_WAIT_DAYS must be 0 or more, "
                "PORTAL_REMINDER_MONTHLY_CAP at least 1"
            )
        if r.registered_letters not in ("task", "local"):
            raise ConfigurationError("PORTAL_REMINDER_REGISTERED_LETTERS must be task or local")
        from portal.reminders.quiet import QuietPeriodError, parse_quiet_periods

        try:
            parse_quiet_periods(r.quiet_periods)
        except QuietPeriodError as error:
            raise ConfigurationError(f"PORTAL_REMINDER_QUIET_PERIODS: {error}") from None
        self._check_cases()
        for name in ("import_retention_days", "import_max_bytes", "import_max_rows"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"PORTAL_{name.upper()} must be at least 1")

    def _check_cases(self) -> None:
        cases = self.cases
        for name in (
            "plan_max_instalments",
            "plan_max_days",
            "plan_min_instalment_minor",
            "plan_max_total_minor",
            "promise_max_days",
            "attachment_max_bytes",
            "attachment_max_count",
            "case_messages_per_hour",
            "customer_messages_per_hour",
            "staff_digest_minutes",
        ):
            if getattr(cases, name) < 1:
                raise ConfigurationError(f"PORTAL_{name.upper()} must be at least 1")
        for name in ("plan_grace_days", "review_days", "promise_grace_days"):
            if getattr(cases, name) < 0:
                raise ConfigurationError(f"PORTAL_{name.upper()} cannot be negative")
        unknown = set(cases.plan_risk_segments) - set(RISK_SEGMENTS)
        if unknown:
            raise ConfigurationError(
                f"PORTAL_PLAN_RISK_SEGMENTS: unknown segments {sorted(unknown)} (low, medium, high)"
            )


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _as_int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"PORTAL_{name} must be a whole number") from None


def _as_float(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigurationError(f"PORTAL_{name} must be a number") from None


def _as_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"PORTAL_{name} must be true or false")


def _sms_settings(get: Any) -> SmsSettings:
    sms: dict[str, Any] = {}
    for f in fields(SmsSettings):
        name = f"SMS_{f.name.upper()}"
        if (raw := get(name)) is not None:
            sms[f.name] = _as_float(name, raw) if f.name == "timeout_seconds" else raw.strip()
    if "api_url" in sms:
        sms["api_url"] = sms["api_url"].rstrip("/")
    return SmsSettings(**sms)


def _reminder_settings(get: Any) -> ReminderSettings:
    values: dict[str, Any] = {}
    for f in fields(ReminderSettings):
        name = f"REMINDER_{f.name.upper()}"
        if (raw := get(name)) is None:
            continue
        if f.name in ("scenarios_file", "letters_dir"):
            values[f.name] = Path(raw)
        elif f.name == "poll_seconds":
            values[f.name] = _as_float(name, raw)
        elif f.name == "formal_notice_penalties":
            values[f.name] = _as_bool(name, raw)
        elif f.name in ("quiet_periods", "registered_letters"):
            values[f.name] = raw.strip()
        elif f.name in ("holiday_country", "ecb_rate"):
            values[f.name] = raw.strip().upper() if f.name == "holiday_country" else raw.strip()
        else:
            values[f.name] = _as_int(name, raw)
    return ReminderSettings(**values)


def _api_settings(get: Any) -> ApiSettings:
    values: dict[str, Any] = {}
    for f in fields(ApiSettings):
        name = f.name.upper() if f.name.startswith("webhook") else f"API_{f.name.upper()}"
        if (raw := get(name)) is None:
            continue
        if f.name == "webhook_allowed_networks":
            values[f.name] = _split(raw)
        elif f.name.endswith("_seconds") and f.name != "webhook_lease_seconds":
            values[f.name] = _as_float(name, raw)
        else:
            values[f.name] = _as_int(name, raw)
    return ApiSettings(**values)


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = None
) -> Settings:
    """Read settings from ``environ`` (default: os.environ) over a ``.env`` file."""
    source: dict[str, str] = {}
    dotenv_path = env_file if env_file is not None else Path.cwd() / ".env"
    if environ is None and dotenv_path.is_file():
        source.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    source.update(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        return source.get(f"PORTAL_{name}")

    values: dict[str, Any] = {}
    simple_text = {
        "ENVIRONMENT": "environment",
        "DATABASE_URL": "database_url",
        "BASE_URL": "base_url",
        "DEFAULT_LANGUAGE": "default_language",
        "PDF_FONT_PATH": "pdf_font_path",
        "FORWARDED_ALLOW_IPS": "forwarded_allow_ips",
        "LOG_LEVEL": "log_level",
        "SOURCE_URL": "source_url",
    }
    for env_name, attr in simple_text.items():
        if (raw := get(env_name)) is not None:
            values[attr] = raw.strip()
    for env_name, attr in {
        "LINK_MAX_AGE_DAYS": "link_max_age_days",
        "SESSION_IDLE_MINUTES": "session_idle_minutes",
        "FRESH_LINK_LIMIT_PER_HOUR": "fresh_link_limit_per_hour",
        "REQUEST_THREADS": "request_threads",
        "MAX_REQUESTS_IN_FLIGHT": "max_requests_in_flight",
        "SLOW_ANSWER_MS": "slow_answer_ms",
        "TRANSFER_GRACE_DAYS": "transfer_grace_days",
        "CLOCK_SHIFT_DAYS": "clock_shift_days",
        "IMPORT_RETENTION_DAYS": "import_retention_days",
        "IMPORT_MAX_BYTES": "import_max_bytes",
        "IMPORT_MAX_ROWS": "import_max_rows",
    }.items():
        if (raw := get(env_name)) is not None:
            values[attr] = _as_int(env_name, raw)
    if (raw := get("SECRET_KEYS")) is not None:
        values["secret_keys"] = _split(raw)
    if (raw := get("LANGUAGES")) is not None:
        values["languages"] = _split(raw)
    if (raw := get("FRAME_ANCESTORS")) is not None:
        values["frame_ancestors"] = tuple(raw.split())
    if (raw := get("DOCUMENTS_DIR")) is not None:
        values["documents_dir"] = Path(raw)
    if (raw := get("IMPORTS_DIR")) is not None:
        values["imports_dir"] = Path(raw)
    if (raw := get("MAIL_SPOOL_DIR")) is not None:
        values["mail_spool_dir"] = Path(raw)
    if "base_url" in values:
        values["base_url"] = values["base_url"].rstrip("/")

    company: dict[str, Any] = {}
    for f in fields(CompanyIdentity):
        if (raw := get(f"COMPANY_{f.name.upper()}")) is not None:
            company[f.name] = raw.replace("\\n", "\n").strip()
    if "iban" in company:
        company["iban"] = company["iban"].replace(" ", "").upper()
    values["company"] = CompanyIdentity(**company)

    smtp: dict[str, Any] = {}
    for f in fields(SmtpSettings):
        if (raw := get(f"SMTP_{f.name.upper()}")) is not None:
            if f.name == "port":
                smtp[f.name] = _as_int("SMTP_PORT", raw)
            elif f.name == "timeout_seconds":
                try:
                    smtp[f.name] = float(raw)
                except ValueError:
                    raise ConfigurationError(
                        "PORTAL_SMTP_TIMEOUT_SECONDS must be a number"
                    ) from None
            else:
                smtp[f.name] = raw
    values["smtp"] = SmtpSettings(**smtp)
    values["sms"] = _sms_settings(get)
    values["reminders"] = _reminder_settings(get)

    stripe: dict[str, Any] = {}
    for f in fields(StripeSettings):
        if (raw := get(f"STRIPE_{f.name.upper()}")) is None:
            continue
        if f.name == "webhook_tolerance_seconds":
            stripe[f.name] = _as_int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", raw)
        elif f.name == "timeout_seconds":
            try:
                stripe[f.name] = float(raw)
            except ValueError:
                raise ConfigurationError("PORTAL_STRIPE_TIMEOUT_SECONDS must be a number") from None
        elif f.name == "automatic_payment_methods":
            stripe[f.name] = _as_bool("STRIPE_AUTOMATIC_PAYMENT_METHODS", raw)
        else:
            stripe[f.name] = raw.strip()
    if "api_base" in stripe:
        stripe["api_base"] = stripe["api_base"].rstrip("/")
    values["stripe"] = StripeSettings(**stripe)
    if (raw := get("PARTIAL_PAYMENTS")) is not None:
        values["partial_payments"] = _as_bool("PARTIAL_PAYMENTS", raw)
    if (raw := get("DEV_OUTBOX")) is not None:
        values["dev_outbox"] = _as_bool("DEV_OUTBOX", raw)
    if (raw := get("DSN_SECRET")) is not None:
        values["dsn_secret"] = raw.strip()
    if (raw := get("PARTIAL_PAYMENT_MINIMUM")) is not None:
        from portal.money import parse_amount

        try:
            values["partial_payment_minimum_minor"] = parse_amount(raw, values["company"].currency)
        except ValueError:
            raise ConfigurationError(
                "PORTAL_PARTIAL_PAYMENT_MINIMUM must be an amount such as 10.00"
            ) from None

    cases: dict[str, Any] = {}
    for f in fields(CaseSettings):
        if (raw := get(f.name.upper())) is None:
            continue
        if f.name == "attachments_dir":
            cases[f.name] = Path(raw)
        elif f.name == "plan_risk_segments":
            cases[f.name] = _split(raw.lower())
        else:
            cases[f.name] = _as_int(f.name.upper(), raw)
    values["cases"] = CaseSettings(**cases)
    values["api"] = _api_settings(get)

    settings = Settings(**values)
    settings.check()
    return settings
