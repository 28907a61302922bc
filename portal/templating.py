"""The Jinja2 environment shared by pages, emails and SMS."""

from __future__ import annotations

import datetime as dt
import weakref
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from portal import i18n
from portal.assets import static_url
from portal.cases.labels import debtor_status_name, staff_status_name
from portal.money import format_for_input, format_money, format_plain
from portal.payments.transfer import format_creditor_reference
from portal.settings import PROJECT_ROOT
from portal.timeline.sentences import channel_name, describe, message_status_name, method_name

TEMPLATES_DIR = PROJECT_ROOT / "templates"


def _money(amount_minor: int, currency: str) -> str:
    return format_money(amount_minor, currency, i18n.current_locale.get())


def _input_amount(amount_minor: int, currency: str) -> str:
    return format_for_input(amount_minor, currency, i18n.current_locale.get())


def _date(value: dt.date | dt.datetime | None, form: str = "medium") -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.date()
    return i18n.format_date(value, i18n.regional(i18n.current_locale.get()), form)


def _datetime(value: dt.datetime | None, timezone: str, form: str = "short") -> str:
    """A UTC moment as its date and time in ``timezone`` (a company's or a customer's)."""
    if value is None:
        return ""
    return i18n.format_moment(value, i18n.regional(i18n.current_locale.get()), timezone, form)


def _iso(value: dt.datetime | dt.date) -> str:
    """For ``<time datetime>``: HTML allows at most three digits of a second."""
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return value.isoformat()


def _gettext(message: str, **variables: Any) -> str:
    return i18n.gettext_(message, **variables)


def _ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    # Jinja's newstyle ngettext fills the variables (``num`` and the others) itself.
    if variables:
        return i18n.ngettext_(singular, plural, n, **variables)
    return i18n.translations(i18n.current_locale.get()).ngettext(singular, plural, n)


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "xml"], default_for_string=True, default=False),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        _gettext, _ngettext, newstyle=True, pgettext=i18n.pgettext_
    )
    env.filters["money"] = _money
    env.filters["plain_amount"] = format_plain
    env.filters["input_amount"] = _input_amount
    env.filters["rf"] = format_creditor_reference
    env.filters["date"] = _date
    env.filters["datetime"] = _datetime
    env.filters["iso"] = _iso
    env.globals["language_name"] = i18n.language_name
    env.globals["static_url"] = static_url
    env.globals["describe_event"] = describe
    env.globals["case_status_name"] = staff_status_name
    env.globals["debtor_case_status"] = debtor_status_name
    env.globals["payment_method_name"] = method_name
    env.globals["channel_name"] = channel_name
    env.globals["message_status_name"] = message_status_name
    return env


# Overlays of an environment for email parts, made once per environment.
_EMAIL_OVERLAYS: weakref.WeakKeyDictionary[Environment, tuple[Environment, Environment]] = (
    weakref.WeakKeyDictionary()
)
_OVERLAY_CACHE_SIZE = 200


def _email_overlays(env: Environment) -> tuple[Environment, Environment]:
    """(html, text): ``env`` with autoescape on, or off, for every template.

    Autoescape is decided per template by its file name, so a partial shared by both parts
    (``email/case_assigned/_text.txt``) would be included raw in the HTML part. Rendering
    each part in an environment that decides for all its templates keeps every value
    escaped in HTML and plain in text and subjects (no ``&amp;`` entities there). Each
    overlay compiles into its own cache: compiled templates bake autoescape in."""
    overlays = _EMAIL_OVERLAYS.get(env)
    if overlays is None:
        overlays = (
            env.overlay(autoescape=True, cache_size=_OVERLAY_CACHE_SIZE),
            env.overlay(autoescape=False, cache_size=_OVERLAY_CACHE_SIZE),
        )
        _EMAIL_OVERLAYS[env] = overlays
    return overlays


def render_email_parts(
    env: Environment, name: str, locale: str, context: dict[str, Any], region: str = ""
) -> tuple[str, str, str]:
    """templates/email/<name>/{subject.txt,body.txt,body.html} in ``locale``, dates as
    written in ``region`` (the reader's country): (subject on one line, text, html). Every
    value is HTML-escaped in the HTML part only."""
    html_env, text_env = _email_overlays(env)
    # The company's own footer texts in this language (branding.service.BrandedIdentity).
    texts_for = getattr(context.get("company"), "texts_for", None)
    context = {"brand_texts": texts_for(locale) if texts_for else None, **context}
    token = i18n.current_locale.set(locale)
    region_token = i18n.current_region.set(region)
    try:
        subject = text_env.get_template(f"email/{name}/subject.txt").render(context)
        text = text_env.get_template(f"email/{name}/body.txt").render(context)
        html = html_env.get_template(f"email/{name}/body.html").render(context)
    finally:
        i18n.current_region.reset(region_token)
        i18n.current_locale.reset(token)
    return " ".join(subject.split()), text, html
