"""The Jinja2 environment shared by pages, emails and SMS."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from portal import i18n
from portal.money import format_money, format_plain
from portal.settings import PROJECT_ROOT

TEMPLATES_DIR = PROJECT_ROOT / "templates"


def _money(amount_minor: int, currency: str) -> str:
    return format_money(amount_minor, currency, i18n.current_locale.get())


def _date(value: dt.date | dt.datetime | None, form: str = "medium") -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.date()
    return i18n.format_date(value, i18n.current_locale.get(), form)


def _gettext(message: str, **variables: Any) -> str:
    return i18n.gettext_(message, **variables)


def _ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    return i18n.ngettext_(singular, plural, n, **variables)


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
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["money"] = _money
    env.filters["plain_amount"] = format_plain
    env.filters["date"] = _date
    env.globals["language_name"] = i18n.language_name
    return env
