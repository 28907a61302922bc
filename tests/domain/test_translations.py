"""The message catalogs: French is complete and keeps every placeholder intact."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from portal.i18n import DOMAIN, LOCALE_DIR, translate_in, translations
from portal.messages import extract, missing_translations

PLACEHOLDER = re.compile(r"%\((\w+)\)[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")


def _catalog(language: str) -> Catalog:
    path: Path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        return read_po(handle, locale=language)


def _forms(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _placeholders(text: str) -> set[str]:
    return {match.group(0) for match in PLACEHOLDER.finditer(text)}


def _label(message: Message) -> str:
    return _forms(message.id)[0]


def test_every_extracted_string_is_translated_in_french() -> None:
    assert missing_translations() == {}


def test_french_catalog_header() -> None:
    catalog = _catalog("fr")
    assert str(catalog.locale) == "fr"
    assert catalog.plural_forms == "nplurals=2; plural=(n > 1);"
    assert not catalog.fuzzy


@pytest.mark.parametrize("language", ["fr", "en"])
def test_translations_keep_the_placeholders_of_their_msgid(language: str) -> None:
    catalog = _catalog(language)
    problems: list[str] = []
    for source in extract():
        if not source.id:
            continue
        translated = catalog.get(source.id, source.context)
        if translated is None:
            continue
        expected = set().union(*(_placeholders(text) for text in _forms(source.id)))
        for form in _forms(translated.string):
            if form and _placeholders(form) != expected:
                problems.append(f"{_label(source)!r}: {form!r}")
    assert problems == []


def test_plural_entries_have_both_french_forms() -> None:
    for message in _catalog("fr"):
        if message.pluralizable:
            assert len(_forms(message.string)) == 2, _label(message)
            assert all(_forms(message.string)), _label(message)


def test_translate_in_french_and_english() -> None:
    assert translate_in("fr", "Total due") == "Total dû"
    assert translate_in("en", "Total due") == "Total due"
    assert translate_in("fr", "Invoice %(number)s", number="F-2026-001") == "Facture F-2026-001"


def test_french_plural_rule_treats_zero_and_one_as_singular() -> None:
    french = translations("fr")
    assert french.ngettext("%(num)d day", "%(num)d days", 0) % {"num": 0} == "0 jour"
    assert french.ngettext("%(num)d day", "%(num)d days", 1) % {"num": 1} == "1 jour"
    assert french.ngettext("%(num)d day", "%(num)d days", 2) % {"num": 2} == "2 jours"
