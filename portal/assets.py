"""Versioned URLs for the files under static/ (and the pinned htmx build).

A page links ``/static/css/portal.css?v=<hash>``: the hash of the file's content, so a
browser may keep it for a year (``web.static_files`` answers ``immutable`` only when the
hash in the URL is the file's) and a changed file gets a new URL at once.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from portal.settings import PROJECT_ROOT

STATIC_DIR = PROJECT_ROOT / "static"
VENDOR_DIR = PROJECT_ROOT / "node_modules" / "htmx.org" / "dist"
VENDOR_PREFIX = "vendor/"
HASH_LENGTH = 12


def static_path(name: str) -> Path:
    """The file behind ``/static/<name>``."""
    if name.startswith(VENDOR_PREFIX):
        return VENDOR_DIR / name.removeprefix(VENDOR_PREFIX)
    return STATIC_DIR / name


@cache
def content_hash(path: Path) -> str:
    """The first hex digits of the file's SHA-256; "" when it does not exist. Cached for the
    life of the process: static files change only with a new release."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return hashlib.sha256(data).hexdigest()[:HASH_LENGTH]


def static_url(name: str) -> str:
    """``/static/<name>?v=<content hash>``."""
    version = content_hash(static_path(name))
    return f"/static/{name}?v={version}" if version else f"/static/{name}"
