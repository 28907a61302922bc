"""Invoice imports as the set-based path (PostgreSQL, ``portal.imports.bulk``) and the batch
path (SQLite) do them: the same rejections with their line numbers, a re-import that
writes nothing at all, open items settled, duplicates flagged when applied; and the SQL
that reads plain cells agrees with the Python parser on every cell it accepts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from portal import i18n
from portal.company.models import Company
from portal.customers.models import Customer
from portal.imports import bulk, decisions, fingerprints, plain, staging
from portal.imports.mapping import Kind
from portal.imports.readers import Table
from portal.imports.rows import InvoiceRow, row_reader
from portal.invoices.editing import InvoiceFields, update_invoice
from portal.invoices.models import Invoice, InvoiceStatus
from portal.settings import Settings
from portal.timeline.models import Actor, TimelineEvent
from tests.imports_helpers import preview, run_import

HEADER = "Code client;Raison sociale;N° facture;Date facture;Date d'échéance;Montant TTC\r\n"


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    token = i18n.current_locale.set("en")
    yield
    i18n.current_locale.reset(token)


def csv_of(*lines: str, header: str = HEADER) -> bytes:
    return (header + "".join(line + "\r\n" for line in lines)).encode("utf-8")


def count(db: Session, model: type) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_rows_are_rejected_with_their_line_and_reason_plain_or_not(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    data = csv_of(
        "C-1;Café Éole;F-1;01/11/2026;01/12/2026;1 234,56",  # 2: grouped thousands: read
        "C-1;Café Éole;F-2;31/02/2026;01/12/2026;10,00",  # 3: no such day
        "C-1;Café Éole;F-3;2026-11-02;2/12/2026;12.5",  # 4: other shapes: read in Python
        "C-9;;F-4;02/11/2026;02/12/2026;10,00",  # 5: unknown customer, no name
        ";;;;;",  # 6: an empty line, skipped
        "C-1;Café Éole;F-1;01/11/2026;01/12/2026;99,00",  # 7: F-1 again
        "C-1;Café Éole;F-5;01/11/2026;01/12/2026",  # 8: a column short
        "C-1; Café Éole ;F-6;03/11/2026;01/11/2026;5,00",  # 9: due before issued
        "C-1;Café Éole;  ;03/11/2026;01/12/2026;5,00",  # 10: no number
    )
    record = run_import(session_factory, settings, company.id, data)
    assert record.counts == {"new": 2, "customers_new": 1, "rejected": 6}
    rejections = sorted(record.rejections, key=lambda r: r["line"])
    assert [(r["line"], r["message"], r["values"]) for r in rejections] == [
        (3, "%(value)s is not a date (dd/mm/yyyy)", {"value": "31/02/2026"}),
        (5, "there is no customer %(reference)s: add a column with its name", {"reference": "C-9"}),
        (7, "%(key)s appears more than once in the file; only its first line is imported",
         {"key": "F-1"}),
        (8, "this line has %(count)d columns where the first line has %(expected)d",
         {"count": 5, "expected": 6}),
        (9, "The due date cannot be before the issue date.", {}),
        (10, "%(field)s is missing", {"field": "Invoice number"}),
    ]  # fmt: skip
    stored = dict(db.execute(select(Invoice.number, Invoice.amount_minor)).all())
    assert stored == {"F-1": 123456, "F-3": 1250}
    f3 = db.scalars(select(Invoice).where(Invoice.number == "F-3")).one()
    assert (f3.issue_date, f3.due_date) == (dt.date(2026, 11, 2), dt.date(2026, 12, 2))


def test_a_value_over_several_lines_keeps_the_line_numbers_of_the_file(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    data = csv_of(
        'C-1;"Café\nÉole";F-1;01/11/2026;01/12/2026;10,00',  # lines 2 and 3
        "C-1;Café;F-2;01/11/2026;01/12/2026;zero",  # line 4
    )
    record = preview(session_factory, settings, company.id, data)
    assert record.counts == {"new": 1, "customers_new": 1, "rejected": 1}
    assert [r["line"] for r in record.rejections] == [4]


def test_a_second_import_of_the_same_file_writes_nothing_at_all(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    data = csv_of(
        *(f"C-{n % 7};Client {n % 7};F-{n};01/11/2026;01/12/2026;{n},50" for n in range(1, 60))
    )
    first = run_import(session_factory, settings, company.id, data)
    assert first.counts == {"new": 59, "customers_new": 7}

    def state() -> tuple[object, ...]:
        with session_factory() as s:
            return (
                s.execute(select(Invoice.id, Invoice.updated_at, Invoice.amount_minor)).all(),
                s.execute(select(Customer.id, Customer.updated_at, Customer.name)).all(),
                s.scalar(select(func.count()).select_from(TimelineEvent)),
                s.scalar(select(func.max(TimelineEvent.id))),
            )

    before = state()
    again = run_import(session_factory, settings, company.id, data)
    assert again.counts == {"unchanged": 59}
    assert state() == before


def test_a_re_import_puts_back_what_was_changed_in_relance_since_and_says_so(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    rows = [f"C-{n % 3};Client {n % 3};F-{n};01/11/2026;01/12/2026;{n}0,00" for n in range(1, 9)]
    data = csv_of(*rows)
    run_import(session_factory, settings, company.id, data)
    postgresql = db.get_bind().dialect.name == "postgresql"
    with session_factory() as s, s.begin():
        f2 = s.scalars(select(Invoice).where(Invoice.number == "F-2")).one()
        fields = InvoiceFields("F-2", f2.customer_id, f2.issue_date, f2.due_date, "EUR", 99_00)
        update_invoice(s, f2, fields, Actor.USER, "7")  # the back office's form
        moved = s.scalars(select(Customer).where(Customer.reference == "C-0")).one()
        moved.reference = "C-0-old"  # F-3 and F-6 are C-0's: the file's C-0 is now unknown
    with session_factory() as s:
        kept = dict(s.execute(select(Invoice.number, Invoice.import_digest)).all())
    if postgresql:  # the fingerprints the set-based path keeps, cleared by the changes
        assert {n for n, digest in kept.items() if digest is None} == {"F-2", "F-3", "F-6"}

    again = run_import(session_factory, settings, company.id, data)
    # F-2 put back; F-3 and F-6 go to the new customer C-0 the file names
    assert again.counts == {"changed": 3, "unchanged": 5, "customers_new": 1}
    with session_factory() as s:
        f2 = s.scalars(select(Invoice).where(Invoice.number == "F-2")).one()
        assert f2.amount_minor == 20_00
        edits = s.scalars(
            select(TimelineEvent)
            .where(
                TimelineEvent.action == "invoice.updated", TimelineEvent.subject_id == str(f2.id)
            )
            .order_by(TimelineEvent.id)
        ).all()
        owners = s.scalars(
            select(Customer.reference)
            .join(Invoice, Invoice.customer_id == Customer.id)
            .where(Invoice.number.in_(("F-3", "F-6")))
        ).all()
        stamped = s.scalar(select(func.count()).where(Invoice.import_digest.is_not(None)))
    assert [(e.actor, e.details["changes"]) for e in edits] == [
        (Actor.USER, {"amount_minor": [20_00, 99_00]}),
        (Actor.SYSTEM, {"amount_minor": [99_00, 20_00]}),  # the import, saying so
    ]
    assert owners == ["C-0", "C-0"]
    assert stamped == (8 if postgresql else 0)

    assert run_import(session_factory, settings, company.id, data).counts == {"unchanged": 8}


def test_a_number_twice_is_rejected_when_its_first_line_is_already_known(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    rows = ["C-1;A;F-1;01/11/2026;01/12/2026;10,00", "C-1;A;F-2;01/11/2026;01/12/2026;20,00"]
    run_import(session_factory, settings, company.id, csv_of(*rows))
    for twice in (rows[0], "C-1;A;F-1;01/11/2026;01/12/2026;11,00"):
        record = run_import(session_factory, settings, company.id, csv_of(*rows, twice))
        assert record.counts == {"unchanged": 2, "rejected": 1}
        assert [(r["line"], r["values"]) for r in record.rejections] == [(4, {"key": "F-1"})]
    assert db.scalars(select(Invoice.amount_minor).where(Invoice.number == "F-1")).one() == 10_00


def test_changed_amounts_are_updated_and_the_rest_left_alone(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    rows = [f"C-1;A;F-{n};01/11/2026;01/12/2026;{n}0,00" for n in range(1, 6)]
    run_import(session_factory, settings, company.id, csv_of(*rows))
    rows[2] = "C-1;A;F-3;01/11/2026;20/12/2026;31,00"
    record = run_import(session_factory, settings, company.id, csv_of(*rows))
    assert record.counts == {"changed": 1, "unchanged": 4}
    updated = db.scalars(
        select(TimelineEvent).where(TimelineEvent.action == "invoice.updated")
    ).one()
    assert updated.details["changes"] == {
        "due_date": ["2026-12-01", "2026-12-20"],
        "amount_minor": [3000, 3100],
    }
    with session_factory() as s:
        touched = s.scalars(select(Invoice.number).where(Invoice.updated_at.is_not(None))).all()
    assert touched == ["F-3"]


def test_open_items_no_longer_listed_are_settled_once(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    both = csv_of("C-1;A;F-1;01/11/2026;01/12/2026;10", "C-1;A;F-2;01/11/2026;01/12/2026;11")
    run_import(session_factory, settings, company.id, both)
    one = csv_of("C-1;A;F-1;01/11/2026;01/12/2026;10")
    done = run_import(session_factory, settings, company.id, one, settle_missing=True)
    assert done.counts == {"unchanged": 1, "settled": 1}
    with session_factory() as s:
        statuses = dict(s.execute(select(Invoice.number, Invoice.status)).all())
        settled = s.scalar(
            select(func.count())
            .select_from(TimelineEvent)
            .where(TimelineEvent.action == "invoice.settled_elsewhere")
        )
    assert statuses == {"F-1": InvoiceStatus.OPEN, "F-2": InvoiceStatus.PAID}
    assert settled == 1
    again = run_import(session_factory, settings, company.id, one, settle_missing=True)
    assert again.counts == {"unchanged": 1}
    with session_factory() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(TimelineEvent)
                .where(TimelineEvent.action == "invoice.settled_elsewhere")
            )
            == 1
        )


def test_duplicates_are_flagged_when_applied_and_all_imported(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    run_import(session_factory, settings, company.id, csv_of("C-1;A;F-1;01/11/2026;01/12/2026;10"))
    record = run_import(
        session_factory,
        settings,
        company.id,
        csv_of(
            "C-1;A;F-9;01/11/2026;01/12/2026;10",  # same as F-1, stored
            "C-2;B;F-10;03/11/2026;01/12/2026;7",
            "C-2;B;F-11;03/11/2026;01/12/2026;7",  # same as F-10, in the file
        ),
    )
    assert record.counts == {"new": 3, "flagged": 2, "customers_new": 1}
    assert [(w["line"], w["values"]) for w in record.warnings] == [
        (2, {"number": "F-9", "other": "F-1"}),
        (4, {"number": "F-11", "other": "line 3"}),
    ]
    assert count(db, Invoice) == 4


def test_new_customers_with_an_email_get_their_contact_and_bad_ones_reject_their_rows(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    header = "Code client;Raison sociale;Email;N° facture;Date facture;Date d'échéance;Montant\r\n"
    data = csv_of(
        "C-1;Dupont  SA;compta@dupont.example;F-1;01/11/2026;01/12/2026;10",
        "C-2;Martin;not an email;F-2;01/11/2026;01/12/2026;10",
        "C-2;Martin;not an email either;F-3;01/11/2026;01/12/2026;10",
        header=header,
    )
    record = run_import(session_factory, settings, company.id, data)
    assert record.counts["new"] == 1
    assert record.counts["customers_new"] == 1
    assert [r["line"] for r in record.rejections] == [3, 4]
    customer = db.scalars(select(Customer).where(Customer.reference == "C-1")).one()
    assert customer.name == "Dupont SA"
    assert [contact.email for contact in customer.contacts] == ["compta@dupont.example"]


# --- the SQL reading plain cells agrees with rows.invoice_row --------------------------------

_spaces = st.sampled_from(["", " ", "\xa0", "\t", "\u202f"])
_texts = st.builds(
    lambda before, word, after: before + word + after,
    _spaces,
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=8),
    _spaces,
)
_dates = st.one_of(
    st.dates(dt.date(1960, 1, 1), dt.date(2110, 1, 1)).flatmap(
        lambda d: st.sampled_from(
            [d.strftime("%d/%m/%Y"), d.isoformat(), d.strftime("%d/%m/%y"), f"{d:%d/%m/%Y} "]
        )
    ),
    st.sampled_from(["31/02/2026", "00/01/2026", "29/02/2028", "29/02/2100", "2026-13-01", ""]),
    _texts,
)
_amounts = st.one_of(
    st.integers(-(10**12), 10**12).flatmap(
        lambda n: st.sampled_from(
            [
                f"{n / 100:.2f}".replace(".", ","),
                f"{n / 100:.2f}",
                f"{n // 100}",
                f"{n / 100:,.2f}".replace(",", " ").replace(".", ","),
                f"{n / 100:.1f}",
                f"{n / 100:.3f}",
            ]
        )
    ),
    st.sampled_from(["", "12,5 €", "(12,00)", "1.234,56", "-", "0,00", "1 23,00"]),
    _texts,
)
_currencies = st.sampled_from(["", "EUR", "eur", "JPY", "XYZ", " USD", "€"])
FIELDS = ("customer_reference", "customer_name", "number", "issue_date", "due_date", "amount")


@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(_texts, _texts, _texts, _dates, _dates, _amounts, _currencies, _amounts),
        min_size=1,
        max_size=30,
    )
)
def test_plain_cells_read_in_sql_are_read_as_python_reads_them(
    db: Session, rows: list[tuple[str, ...]]
) -> None:
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("the set-based path is PostgreSQL's")
    columns = dict(enumerate((*FIELDS, "currency", "outstanding")))
    read = row_reader(Kind.INVOICES, columns, len(columns), "EUR")
    savepoint = db.begin_nested()
    try:
        raw = bulk._raw(db)
        db.execute(text(f"DROP TABLE IF EXISTS {', '.join(bulk.TEMPORARY)}"))
        staging.create(raw, len(columns))
        with (
            raw.cursor() as cursor,
            cursor.copy(
                f"COPY {staging.CELLS} (line, {', '.join(staging.column(i) for i in columns)}) "
                "FROM STDIN"
            ) as copy,
        ):
            for line, cells in enumerate(rows, start=2):
                copy.write_row((line, *(cell.replace("\x00", "") for cell in cells)))
        db.execute(text(plain.DAYS))
        params = decisions.currency_params("EUR")
        params["digest_salt"] = fingerprints.salt(columns, "EUR")
        db.execute(text(decisions.typed_table(columns)), params)
        names = ", ".join(bulk.TYPED_COLUMNS)
        typed = db.execute(
            text(f"SELECT {names} FROM import_invoices WHERE plain ORDER BY line")  # noqa: S608
        ).all()
        for found in typed:
            line = found[0]
            python = read(line, [cell.replace("\x00", "") for cell in rows[line - 2]])
            assert isinstance(python, InvoiceRow), (rows[line - 2], python)
            assert tuple(getattr(python, name) for name in bulk.TYPED_COLUMNS) == tuple(found)
    finally:
        savepoint.rollback()


def test_staging_falls_back_to_the_reader_for_a_file_postgresql_reads_otherwise(
    db: Session,
) -> None:
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("the set-based path is PostgreSQL's")
    table = Table("csv", ["a", "b"], iter([(2, ["x", "y"]), (4, ["z", "w"])]), "utf-16", ";")
    savepoint = db.begin_nested()
    try:
        raw = bulk._raw(db)
        db.execute(text(f"DROP TABLE IF EXISTS {staging.CELLS}"))
        loaded = staging.load(raw, table, [0, 1], 10, lambda rows, sent: None, print)
        lines = db.execute(text(f"SELECT line, c0 FROM {staging.CELLS} ORDER BY line")).all()  # noqa: S608
    finally:
        savepoint.rollback()
    assert loaded == 2
    assert [tuple(each) for each in lines] == [(2, "x"), (4, "z")]
