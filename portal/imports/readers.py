"""Reading import files as rows of cells, streamed: CSV as accounting software writes it
(``;`` or ``,``, UTF-8 with or without BOM, Windows-1252) and XLSX (python-calamine, after
checking the zip's entries so a zip bomb is refused before anything is inflated).

Every problem with the file as a whole raises ``ImportFileError`` with a message for the
person who uploaded it; nothing here raises anything else for a bad file.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import os
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from portal.i18n import N_
from portal.imports.errors import ImportFileError

# A cell as a reader gives it: CSV cells are text, XLSX cells may be typed.
Cell = str | int | float | bool | dt.date | dt.datetime | dt.time | dt.timedelta | None

SNIFF_BYTES = 64 * 1024
DELIMITERS = (";", ",", "\t", "|")
XLSX_MAX_ENTRIES = 1_000
# What an XLSX may inflate to, all entries together: calamine holds a sheet in memory.
XLSX_MAX_UNCOMPRESSED = 128 * 1024 * 1024
CSV_FIELD_LIMIT = 64 * 1024
CHUNK = 1024 * 1024


@dataclass
class Table:
    """The rows of a file, read once, in order: ``rows`` yields (line number, cells)."""

    format: str  # "csv" or "xlsx"
    header: list[str]
    rows: Iterator[tuple[int, list[Cell]]]
    encoding: str | None = None
    delimiter: str | None = None
    # Bytes of the file read so far (CSV), for a progress bar before the row count is known.
    position: Callable[[], int] | None = None
    path: Path | None = None  # the file itself (CSV), for a database to read it directly
    max_rows: int | None = None  # the most rows ``rows`` yields before refusing the file


def file_format(head: bytes) -> str:
    """What a file is from its first bytes: "xlsx", "pdf", "xml" or "csv" (text)."""
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"%PDF"):
        return "pdf"
    stripped = head.removeprefix(codecs.BOM_UTF8).lstrip()
    if stripped.startswith(b"<?xml") or stripped.startswith(b"<"):
        return "xml"
    return "csv"


@contextmanager
def open_table(path: Path, max_rows: int) -> Iterator[Table]:
    """The rows of the CSV or XLSX file at ``path``; ImportFileError if it cannot be read."""
    with path.open("rb") as raw:
        head = raw.read(SNIFF_BYTES)
        if not head:
            raise ImportFileError(N_("The file is empty."))
        kind = file_format(head)
        if kind == "xlsx":
            yield _xlsx_table(path, max_rows)
            return
        if kind != "csv":
            raise ImportFileError(
                N_("This file is an e-invoice (PDF or XML): import it as invoices.")
            )
        raw.seek(0)
        table = _csv_table(raw, head, max_rows)
        table.path, table.max_rows = path, max_rows
        yield table


# --- CSV --------------------------------------------------------------------------------------


def sniff_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head:
        raise ImportFileError(N_("This file is not a CSV or XLSX spreadsheet."))
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=False)
    except UnicodeDecodeError as error:
        before = head[: error.start]
        if any(byte >= 0x80 for byte in before):  # UTF-8 accents first, then something else
            raise ImportFileError(
                N_(
                    "The file stops being valid %(encoding)s text at line %(line)d: "
                    "save it again as CSV UTF-8."
                ),
                encoding="UTF-8",
                line=before.count(b"\n") + 1,
            ) from None
    else:
        return "utf-8"
    try:
        head.decode("cp1252")
    except UnicodeDecodeError:
        raise ImportFileError(
            N_("The file is neither UTF-8 nor Windows-1252 text: save it again as CSV UTF-8.")
        ) from None
    return "cp1252"


def sniff_delimiter(first_line: str) -> str:
    counts = {delimiter: first_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # ties go to the first: ";" then ","
    return best if counts[best] else ";"


class _CountingText:
    """Text lines from a byte stream, with the line number of a decoding error."""

    def __init__(self, raw: IO[bytes], encoding: str) -> None:
        self._lines = io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")
        self.encoding_name = encoding
        self.line = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        try:
            line = self._lines.readline()
        except UnicodeDecodeError:
            raise ImportFileError(
                N_(
                    "The file stops being valid %(encoding)s text at line %(line)d: "
                    "save it again as CSV UTF-8."
                ),
                encoding="UTF-8" if self.encoding_name.startswith("utf") else "Windows-1252",
                line=self.line + 1,
            ) from None
        if not line:
            raise StopIteration
        self.line += 1
        return line


def _csv_table(raw: IO[bytes], head: bytes, max_rows: int) -> Table:
    encoding = sniff_encoding(head)
    text = _CountingText(raw, encoding)
    first = next(text, "")
    delimiter = sniff_delimiter(first)
    reader = csv.reader(_chain(first, text), delimiter=delimiter, strict=True)
    csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        header = next(reader, None)
    except csv.Error:
        header = None
    if not header or not any(cell.strip() for cell in header):
        raise ImportFileError(N_("The first line of the file should name its columns."))
    return Table(
        "csv",
        [cell.strip() for cell in header],
        _csv_rows(reader, text, max_rows),
        encoding=encoding,
        delimiter=delimiter,
        position=_position(raw),
    )


def _position(raw: IO[bytes]) -> Callable[[], int]:
    """Bytes read so far; the whole size once the reader is done (and the file closed)."""
    end = os.fstat(raw.fileno()).st_size
    return lambda: end if raw.closed else raw.tell()


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _csv_rows(
    reader: Iterator[list[str]], text: _CountingText, max_rows: int
) -> Iterator[tuple[int, list[Cell]]]:
    count = 0
    while True:
        start = text.line + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            raise ImportFileError(
                N_(
                    "The file cannot be read as CSV from line %(line)d: a quoted value is "
                    "not closed or is too long; the file may be truncated."
                ),
                line=start,
            ) from None
        if not any(cells):
            continue  # blank lines, often at the end of an export
        count += 1
        if count > max_rows:
            raise ImportFileError(
                N_("The file has more than %(count)d rows: split it into smaller files."),
                count=max_rows,
            )
        yield start, list(cells)


# --- XLSX -------------------------------------------------------------------------------------


def check_zip(path: Path, max_uncompressed: int = XLSX_MAX_UNCOMPRESSED) -> None:
    """Refuse a damaged zip, or one that would inflate past ``max_uncompressed``: the
    declared sizes are checked first, then each entry is inflated in chunks and counted
    (a lying header cannot make it inflate more than it declared)."""
    too_big = ImportFileError(
        N_("This XLSX file inflates to more than %(size)d MB: export it as CSV instead."),
        size=max_uncompressed // (1024 * 1024),
    )
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            if len(entries) > XLSX_MAX_ENTRIES:
                raise ImportFileError(N_("This XLSX file has too many parts to be a spreadsheet."))
            if sum(entry.file_size for entry in entries) > max_uncompressed:
                raise too_big
            total = 0
            for entry in entries:
                with archive.open(entry) as member:
                    while chunk := member.read(CHUNK):
                        total += len(chunk)
                        if total > max_uncompressed:
                            raise too_big
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError):
        raise ImportFileError(N_("This XLSX file is damaged or truncated.")) from None


def _xlsx_table(path: Path, max_rows: int) -> Table:
    from python_calamine import CalamineError, CalamineWorkbook

    check_zip(path)
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        sheet = workbook.get_sheet_by_index(0)
        rows = iter(sheet.iter_rows())
        header = next(rows, None)
    except (CalamineError, OSError, ValueError):
        raise ImportFileError(N_("This XLSX file is damaged or truncated.")) from None
    except Exception as error:  # calamine's own exception classes are not all exported
        if type(error).__module__.startswith("python_calamine"):
            raise ImportFileError(N_("This XLSX file is damaged or truncated.")) from None
        raise
    if not header or not any(str(cell).strip() for cell in header):
        raise ImportFileError(N_("The first line of the file should name its columns."))
    return Table("xlsx", [_header_text(cell) for cell in header], _xlsx_rows(rows, max_rows))


def _header_text(cell: Cell) -> str:
    return "" if cell is None else str(cell).strip()


def _xlsx_rows(rows: Iterator[list[Any]], max_rows: int) -> Iterator[tuple[int, list[Cell]]]:
    count = 0
    for line, cells in enumerate(rows, start=2):
        if not any(cell not in ("", None) for cell in cells):
            continue
        count += 1
        if count > max_rows:
            raise ImportFileError(
                N_("The file has more than %(count)d rows: split it into smaller files."),
                count=max_rows,
            )
        yield line, list(cells)
