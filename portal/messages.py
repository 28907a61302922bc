"""Message catalog workflow: extract translatable strings and update the .po files.

    python -m portal.messages extract   # writes portal/locale/messages.pot
    python -m portal.messages update    # merges it into each language's messages.po
    python -m portal.messages check     # exit 1 if a language lacks a translation

Translators edit ``portal/locale/<lang>/LC_MESSAGES/messages.po``; the app reads
the .po files directly, so there is no compile step.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from portal.i18n import DOMAIN, LOCALE_DIR, SUPPORTED
from portal.settings import PROJECT_ROOT

SOURCE_LANGUAGE = "en"
KEYWORDS = {
    "_": None,
    "gettext": None,
    "gettext_": None,
    "ngettext": (1, 2),
    "ngettext_": (1, 2),
    "translate_in": (2,),
    "N_": None,
    "pgettext": ((1, "c"), 2),
    "pgettext_": ((1, "c"), 2),
}
POT_PATH = LOCALE_DIR / f"{DOMAIN}.pot"


def _extract(
    directory: str, method_map: list[tuple[str, str]], options: dict[str, dict[str, str]]
) -> Iterable[tuple[str, int, str | tuple[str, ...], list[str], str | None]]:
    return extract_from_dir(
        PROJECT_ROOT / directory,
        method_map=method_map,
        options_map=options,
        keywords=KEYWORDS,
        comment_tags=("Translators:",),
        strip_comment_tags=True,
    )


def extract() -> Catalog:
    catalog = Catalog(project="Relance", domain=DOMAIN, charset="utf-8")
    jinja_options = {
        "extensions": "jinja2.ext.i18n",
        "trim_blocks": "true",
        "lstrip_blocks": "true",
    }
    sources = [
        ("portal", [("**.py", "python")], {}),
        (
            "templates",
            [("**.html", "jinja2.ext:babel_extract"), ("**.txt", "jinja2.ext:babel_extract")],
            {"**.html": jinja_options, "**.txt": jinja_options},
        ),
    ]
    for directory, method_map, options in sources:
        for filename, lineno, message, comments, context in _extract(
            directory, method_map, options
        ):
            catalog.add(
                message,
                None,
                [(f"{directory}/{filename}", lineno)],
                auto_comments=comments,
                context=context,
            )
    return catalog


def write_template(catalog: Catalog) -> None:
    with POT_PATH.open("wb") as handle:
        write_po(handle, catalog, width=100, omit_header=False, sort_output=True)


def update(template: Catalog) -> None:
    for language in SUPPORTED:
        po_path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        po_path.parent.mkdir(parents=True, exist_ok=True)
        if po_path.is_file():
            with po_path.open("rb") as handle:
                catalog = read_po(handle, locale=language)
        else:
            catalog = Catalog(locale=language, domain=DOMAIN, project="Relance", charset="utf-8")
        catalog.update(template, no_fuzzy_matching=True)
        with po_path.open("wb") as handle:
            write_po(handle, catalog, width=100, sort_output=True, ignore_obsolete=True)


def missing_translations() -> dict[str, list[str]]:
    """Message ids that a non-source language does not translate (or marks fuzzy)."""
    template = extract()
    missing: dict[str, list[str]] = {}
    for language in SUPPORTED:
        if language == SOURCE_LANGUAGE:
            continue
        po_path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        for message in template:
            if not message.id:
                continue
            translated = catalog.get(message.id, message.context)
            strings = translated.string if translated is not None else None
            values = strings if isinstance(strings, tuple | list) else (strings,)
            if translated is None or translated.fuzzy or not all(values):
                key = message.id if isinstance(message.id, str) else message.id[0]
                missing.setdefault(language, []).append(key)
    return missing


def main(argv: list[str]) -> int:
    action = argv[0] if argv else "check"
    if action == "extract":
        write_template(extract())
    elif action == "update":
        template = extract()
        write_template(template)
        update(template)
    elif action == "check":
        missing = missing_translations()
        for language, ids in missing.items():
            print(f"{language}: {len(ids)} untranslated")
            for message_id in ids:
                print(f"  {message_id!r}")
        return 1 if missing else 0
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
