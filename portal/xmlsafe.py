"""The one way untrusted XML is parsed (e-invoices, SVG logos): lxml without DTDs,
entities, network access, comments or processing instructions."""

from __future__ import annotations

from typing import Any

from lxml import etree


def hardened_parser() -> Any:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
