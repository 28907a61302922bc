"""Reading import files: encodings, delimiters, XLSX and its zip guard, damaged files,
header recognition, typed rows."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from portal.imports import mapping, readers
from portal.imports.errors import ImportFileError
from portal.imports.mapping import Kind
from portal.imports.rows import InvoiceRow, Rejection, RowError, parse_date, parse_money, row_reader

FRENCH_CSV = (
    "Code client;Raison sociale;N° facture;Date facture;Date d'échéance;Montant TTC\r\n"
    "C-1;Café Éole;F-001;01/11/2026;01/12/2026;1 234,56\r\n"
    'C-2;"Dupont; fils";F-002;2026-11-02;2026-12-02;99,90\r\n'
)


def table_of(path: Path, max_rows: int = 1000) -> tuple[readers.Table, list[tuple[int, list]]]:
    with readers.open_table(path, max_rows) as table:
        return table, list(table.rows)


def write(tmp_path: Path, data: bytes, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("cp1252", b""), ("utf-16", b"")],
)
def test_french_csv_in_every_usual_encoding(tmp_path: Path, encoding: str, prefix: bytes) -> None:
    path = write(tmp_path, prefix + FRENCH_CSV.encode(encoding))
    table, rows = table_of(path)
    assert table.delimiter == ";"
    assert table.header[2] == "N° facture"
    assert rows == [
        (2, ["C-1", "Café Éole", "F-001", "01/11/2026", "01/12/2026", "1 234,56"]),
        (3, ["C-2", "Dupont; fils", "F-002", "2026-11-02", "2026-12-02", "99,90"]),
    ]


def test_comma_separated_english_export(tmp_path: Path) -> None:
    path = write(tmp_path, b"Invoice number,Customer code,Due date\nA-1,C-1,2026-12-01\n\n")
    table, rows = table_of(path)
    assert table.delimiter == ","
    assert rows == [(2, ["A-1", "C-1", "2026-12-01"])]


def test_an_encoding_that_changes_mid_file_is_refused_with_its_line(tmp_path: Path) -> None:
    data = FRENCH_CSV.encode() + "C-3;Société;F-3;01/11/2026;01/12/2026;1\r\n".encode("cp1252")
    path = write(tmp_path, data)
    with pytest.raises(ImportFileError) as caught:
        table_of(path)
    assert caught.value.values == {"encoding": "UTF-8", "line": 4}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\x00\x01\x02binary\x00" * 10, "This file is not a CSV or XLSX spreadsheet."),
        (b"PK\x03\x04truncated", "This XLSX file is damaged or truncated."),
        (b"%PDF-1.7\n", "This file is an e-invoice (PDF or XML): import it as invoices."),
        (b"\x81\x8d\x8f\x90\x9d;x\n", "The file is neither UTF-8 nor Windows-1252 text"),
    ],
)
def test_files_that_are_not_tables_are_refused_clearly(
    tmp_path: Path, data: bytes, message: str
) -> None:
    with pytest.raises(ImportFileError) as caught:
        table_of(write(tmp_path, data))
    assert caught.value.message.startswith(message)


def test_a_truncated_csv_stops_with_the_line_it_broke_at(tmp_path: Path) -> None:
    path = write(tmp_path, FRENCH_CSV.encode() + b'C-3;"Dupont et\n')
    with pytest.raises(ImportFileError) as caught:
        table_of(path)
    assert caught.value.values == {"line": 4}


def test_too_many_rows_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError) as caught:
        table_of(write(tmp_path, FRENCH_CSV.encode()), max_rows=1)
    assert caught.value.values == {"count": 1}


def test_xlsx_cells_keep_their_types(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["N° facture", "Code client", "Date d'échéance", "Montant TTC"])
    sheet.append(["F-1", 1001, dt.date(2026, 12, 31), 1234.5])
    path = tmp_path / "export.xlsx"
    book.save(path)
    table, rows = table_of(path)
    assert table.format == "xlsx"
    line, cells = rows[0]
    assert line == 2
    assert cells[0] == "F-1"
    assert parse_date(cells[2]) == dt.date(2026, 12, 31)
    assert parse_money(cells[3], "EUR") == 123450


def test_an_xlsx_zip_bomb_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (readers.XLSX_MAX_UNCOMPRESSED + 1))
    assert path.stat().st_size < 1024 * 1024
    with pytest.raises(ImportFileError) as caught:
        table_of(path)
    assert "inflates to more than" in caught.value.message


def test_an_xlsx_whose_header_lies_about_its_size_is_still_stopped(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.xml", b"\0" * 4096)
    data = bytearray(buffer.getvalue())
    # Declare 16 bytes in the central directory: the copy inflated is stopped, not trusted.
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (16).to_bytes(4, "little")
    path = write(tmp_path, bytes(data), "liar.xlsx")
    with pytest.raises(ImportFileError) as caught:
        readers.check_zip(path, max_uncompressed=1024)
    assert caught.value.message == "This XLSX file is damaged or truncated."


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("N° facture", "number"),
        ("Numéro de facture", "number"),
        ("Invoice number", "number"),
        ("Invoice No.", "number"),
        ("Date d'échéance", "due_date"),
        ("DATE ECHEANCE", "due_date"),
        ("Due date", "due_date"),
        ("Montant TTC", "amount"),
        ("Montant TTC (€)", "amount"),
        ("Code client", "customer_reference"),
        ("Customer code", "customer_reference"),
        ("Date facture", "issue_date"),
        ("Reste dû", "outstanding"),
    ],
)
def test_french_and_english_headers_are_recognised(header: str, field: str) -> None:
    assert mapping.recognise(Kind.INVOICES, [header]) == {0: field}


def test_the_kind_is_guessed_from_the_headers() -> None:
    header = FRENCH_CSV.splitlines()[0].split(";")
    assert mapping.guess_kind(header) is Kind.INVOICES
    assert mapping.guess_kind(["Code client", "Raison sociale", "SIREN"]) is Kind.CUSTOMERS
    assert mapping.signature(["N° facture"]) == mapping.signature(["n facture "])


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("1 234,56", 123456),
        ("1.234,56", 123456),
        ("1,234.56", 123456),
        ("99", 9900),
        ("12,5 €", 1250),
        ("-10,00", -1000),
        ("(10,00)", -1000),
        ("\u202f1\u202f000,00", 100000),
    ],
)
def test_amounts_as_accounting_software_writes_them(text: str, minor: int) -> None:
    assert parse_money(text, "EUR") == minor


# "1,234": a decimal comma with three decimals is too precise for euros.
@pytest.mark.parametrize("text", ["", "abc", "1,2,3", "1,234", "--"])
def test_unreadable_amounts_are_row_errors(text: str) -> None:
    with pytest.raises(RowError):
        parse_money(text, "EUR")


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("31/12/2026", dt.date(2026, 12, 31)),
        ("2026-12-31", dt.date(2026, 12, 31)),
        ("1/2/26", dt.date(2026, 2, 1)),
        ("31.12.2026", dt.date(2026, 12, 31)),
    ],
)
def test_dates(text: str, day: dt.date) -> None:
    assert parse_date(text) == day


def test_rows_are_typed_or_rejected_with_a_reason() -> None:
    header = ["N° facture", "Code client", "Date facture", "Date d'échéance", "Montant TTC"]
    read = row_reader(Kind.INVOICES, mapping.recognise(Kind.INVOICES, header), 5, "EUR")
    good = read(2, ["F-1", "C-1", "01/11/2026", "01/12/2026", "10,00"])
    assert isinstance(good, InvoiceRow)
    assert (good.amount_minor, good.due_date) == (1000, dt.date(2026, 12, 1))
    reasons = {
        "%(field)s is missing": ["", "C-1", "01/11/2026", "01/12/2026", "1"],
        "%(value)s is not a date (dd/mm/yyyy)": ["F-4", "C-1", "31/02/2026", "01/12/2026", "1"],
        "this line has %(count)d columns where the first line has %(expected)d": ["F-5"],
    }
    for reason, cells in reasons.items():
        rejected = read(7, cells)
        assert isinstance(rejected, Rejection)
        assert (rejected.line, rejected.message) == (7, reason)
