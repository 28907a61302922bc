"""Translations (Babel message catalogs) and the current request's locale."""

from __future__ import annotations

import datetime as dt
import gettext
from contextvars import ContextVar
from functools import cache, lru_cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.dates import format_time as babel_format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
SUPPORTED = ("fr", "en")

current_locale: ContextVar[str] = ContextVar("current_locale", default="fr")
# The reader's country (ISO 3166 alpha-2): with the language, how dates are written. A UK
# customer reading English sees 28/09/2026 (en_GB), an American 9/28/26; "" for none.
current_region: ContextVar[str] = ContextVar("current_region", default="")


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The catalog for ``locale``, compiled in memory from its .po file."""
    po_path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po_path.is_file():
        return gettext.NullTranslations()
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def gettext_(message: str, **variables: object) -> str:
    text = translations(current_locale.get()).gettext(message)
    return text % variables if variables else text


def pgettext_(context: str, message: str, **variables: object) -> str:
    """``message`` as said of a ``context`` (French labels agree with the noun's gender:
    a dispute is "refusée", a payment plan "refusé")."""
    text = translations(current_locale.get()).pgettext(context, message)
    return text % variables if variables else text


def ngettext_(singular: str, plural: str, n: int, **variables: object) -> str:
    text = translations(current_locale.get()).ngettext(singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


_ = gettext_


def N_(message: str) -> str:
    """Mark ``message`` for extraction, to be translated where it is shown (stored reasons)."""
    return message


def translate_in(locale: str, message: str, **variables: object) -> str:
    text = translations(locale).gettext(message)
    return text % variables if variables else text


def normalise(tag: str | None, supported: tuple[str, ...] = SUPPORTED) -> str | None:
    """``"fr-CA"`` -> ``"fr"`` when French is supported; None for anything unknown."""
    if not tag:
        return None
    base = tag.strip().replace("_", "-").split("-")[0].lower()
    return base if base in supported else None


def negotiate(accept_language: str | None, supported: tuple[str, ...]) -> str | None:
    """The best supported language of an Accept-Language header."""
    if not accept_language:
        return None
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if (language := normalise(tag, supported)) and quality > 0:
            weighted.append((-quality, position, language))
    return min(weighted)[2] if weighted else None


def regional(language: str, region: str | None = None) -> str:
    """The Babel locale of ``language`` as written in ``region`` (the current one by
    default): ``en`` + ``GB`` -> ``en_GB``; the language alone where Babel knows no such
    pair (French in the United States)."""
    country = (current_region.get() if region is None else region).strip().upper()
    if country and _known_locale(f"{language}_{country}"):
        return f"{language}_{country}"
    return language


@cache
def _known_locale(code: str) -> bool:
    try:
        Locale.parse(code)
    except (UnknownLocaleError, ValueError):
        return False
    return True


@lru_cache(maxsize=16384)
def format_date(value: dt.date, locale: str, form: str = "medium") -> str:
    # Cached like money: lists show the same few hundred dates again and again.
    return babel_format_date(value, format=form, locale=_parsed_locale(locale))


def format_moment(value: dt.datetime, locale: str, timezone: str, form: str = "short") -> str:
    return babel_format_datetime(
        value, format=form, tzinfo=ZoneInfo(timezone), locale=_parsed_locale(locale)
    )


def format_moment_plainly(value: dt.datetime, locale: str, timezone: str) -> str:
    """A moment no reader can misread: the month in words, the time to the minute
    ("1 Dec 2026, 14:30" in en_GB, "1 déc. 2026, 14:30" in French)."""
    moment = value.astimezone(ZoneInfo(timezone))
    parsed = _parsed_locale(locale)
    day = babel_format_date(moment.date(), format="medium", locale=parsed)
    return f"{day}, {babel_format_time(moment.time(), format='short', locale=parsed)}"


@cache
def _parsed_locale(code: str) -> Locale:
    return Locale.parse(code)


def language_name(code: str) -> str:
    try:
        name = Locale.parse(code).get_display_name(code)
    except (UnknownLocaleError, ValueError):
        return code
    return name.capitalize() if name else code
