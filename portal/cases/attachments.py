"""Attachment files: type read from the content, stored outside the web root by a random name."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

# Content types accepted, told by their first bytes (never by the name the browser sends).
SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
)
STORAGE_NAME = re.compile(r"^[A-Za-z0-9_-]{20,64}\.(pdf|png|jpg)$")
FILENAME_MAX = 200


class AttachmentRejected(ValueError):
    """A file that cannot be attached; ``key`` says why."""

    TOO_LARGE = "too_large"
    TOO_MANY = "too_many"
    WRONG_TYPE = "wrong_type"
    EMPTY = "empty"

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class IncomingFile:
    """A file as received: the name the browser gave and its bytes."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class CheckedFile:
    filename: str
    data: bytes
    content_type: str
    extension: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def sniff(data: bytes) -> tuple[str, str] | None:
    """(content type, extension) from the magic bytes, or None for anything else."""
    for magic, content_type, extension in SIGNATURES:
        if data.startswith(magic):
            return content_type, extension
    return None


def clean_filename(name: str, extension: str) -> str:
    """A display name without paths or control characters, ending in the real extension."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '"<>|:*?')
    stem = base.rsplit(".", 1)[0].strip() or "attachment"
    return f"{stem[: FILENAME_MAX - len(extension)]}{extension}"


def check_files(files: list[IncomingFile], max_bytes: int, max_count: int) -> list[CheckedFile]:
    """Every file checked before anything is stored: one bad file refuses them all."""
    files = [f for f in files if f.data or f.filename]
    if len(files) > max_count:
        raise AttachmentRejected(AttachmentRejected.TOO_MANY)
    checked = []
    for incoming in files:
        if not incoming.data:
            raise AttachmentRejected(AttachmentRejected.EMPTY)
        if len(incoming.data) > max_bytes:
            raise AttachmentRejected(AttachmentRejected.TOO_LARGE)
        kind = sniff(incoming.data)
        if kind is None:
            raise AttachmentRejected(AttachmentRejected.WRONG_TYPE)
        content_type, extension = kind
        checked.append(
            CheckedFile(
                clean_filename(incoming.filename, extension), incoming.data, content_type, extension
            )
        )
    return checked


def store(directory: Path, checked: CheckedFile) -> str:
    """Write the file under a random name (never the debtor's) and return that name."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_urlsafe(24)}{checked.extension}"
    path = directory / name
    # O_EXCL: never overwrite; 0600: readable by the application only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(checked.data)
    return name


def stored_path(directory: Path, storage_name: str) -> Path | None:
    """The file's path if the name is one we made and the file is there; None otherwise."""
    if not STORAGE_NAME.match(storage_name):
        return None
    path = (directory / storage_name).resolve()
    if path.parent != directory.resolve() or not path.is_file():
        return None
    return path
