from __future__ import annotations

import pytest

from portal.settings import DEVELOPMENT_SECRET, ConfigurationError, load_settings

STRONG = "x" * 48


def test_development_defaults_are_usable() -> None:
    settings = load_settings({})
    assert settings.development
    assert not settings.dev_outbox  # only when asked for: PORTAL_DEV_OUTBOX=true
    assert load_settings({"PORTAL_DEV_OUTBOX": "true"}).dev_outbox
    assert settings.link_max_age_days == 45
    assert settings.languages == ("fr", "en")


@pytest.mark.parametrize(
    "environ",
    [
        {"PORTAL_ENVIRONMENT": "production", "PORTAL_BASE_URL": "https://pay.example"},
        {
            "PORTAL_ENVIRONMENT": "production",
            "PORTAL_BASE_URL": "https://pay.example",
            "PORTAL_SECRET_KEYS": DEVELOPMENT_SECRET,
        },
        {
            "PORTAL_ENVIRONMENT": "production",
            "PORTAL_BASE_URL": "https://pay.example",
            "PORTAL_SECRET_KEYS": "short",
        },
        {
            "PORTAL_ENVIRONMENT": "production",
            "PORTAL_BASE_URL": "http://pay.example",
            "PORTAL_SECRET_KEYS": STRONG,
        },
        {"PORTAL_COMPANY_IBAN": "FR7630006000011234567890188"},
        {"PORTAL_COMPANY_BIC": "NOTABIC"},
        {"PORTAL_COMPANY_PRIMARY_COLOUR": "red; background: url(x)"},
        {"PORTAL_LANGUAGES": "fr,de"},
        {"PORTAL_LINK_MAX_AGE_DAYS": "soon"},
        {"PORTAL_ENVIRONMENT": "staging"},
        {
            "PORTAL_ENVIRONMENT": "production",
            "PORTAL_BASE_URL": "https://pay.example",
            "PORTAL_SECRET_KEYS": STRONG,
            "PORTAL_CLOCK_SHIFT_DAYS": "3",
        },
        {
            "PORTAL_ENVIRONMENT": "production",
            "PORTAL_BASE_URL": "https://pay.example",
            "PORTAL_SECRET_KEYS": STRONG,
            "PORTAL_DEV_OUTBOX": "true",
        },
        {"PORTAL_DEV_OUTBOX": "perhaps"},
        {"PORTAL_PARTIAL_PAYMENT_MINIMUM": "ten"},
        {"PORTAL_MAX_REQUESTS_IN_FLIGHT": "-1"},
        {"PORTAL_MAX_REQUESTS_IN_FLIGHT": "many"},
        {"PORTAL_SLOW_ANSWER_MS": "0"},
        {"PORTAL_SLOW_ANSWER_MS": "fast"},
        {"PORTAL_PARTIAL_PAYMENTS": "maybe"},
        {"PORTAL_STRIPE_SECRET_KEY": "sk_test_1", "PORTAL_STRIPE_PUBLISHABLE_KEY": "pk_test_1"},
        {
            "PORTAL_STRIPE_SECRET_KEY": "pk_test_1",
            "PORTAL_STRIPE_PUBLISHABLE_KEY": "pk_test_1",
            "PORTAL_STRIPE_WEBHOOK_SECRET": "whsec_1",
        },
    ],
)
def test_unsafe_or_invalid_configuration_is_refused(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        load_settings(environ)


def test_production_with_strong_secrets() -> None:
    settings = load_settings(
        {
            "PORTAL_ENVIRONMENT": "production",
            "PORTAL_BASE_URL": "https://pay.example/",
            "PORTAL_SECRET_KEYS": f"{STRONG}, {'y' * 40}",
            "PORTAL_COMPANY_IBAN": "fr76 3000 6000 0112 3456 7890 189",
            "PORTAL_FRAME_ANCESTORS": "'self' https://www.example.com",
        }
    )
    assert settings.secret_keys == (STRONG, "y" * 40)
    assert settings.base_url == "https://pay.example"
    assert settings.company.iban == "FR7630006000011234567890189"
    assert settings.secure_cookies
    assert settings.frame_ancestors == ("'self'", "https://www.example.com")
    assert STRONG not in repr(settings)
