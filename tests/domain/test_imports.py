"""Imports over a real database: preview writes nothing, applying creates and updates through
the batch services, a second run changes nothing, duplicates are flagged, the timeline
says what changed."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portal import clock, i18n
from portal.company.models import Company
from portal.customers.models import Customer
from portal.imports import service
from portal.imports.export import ExportedInvoice, write_invoices_csv
from portal.imports.mapping import Kind
from portal.imports.models import ImportStatus
from portal.invoices.models import Invoice
from portal.settings import Settings
from portal.timeline.models import TimelineEvent
from tests.imports_helpers import confirm_and_apply, preview, run_import


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    token = i18n.current_locale.set("en")
    yield
    i18n.current_locale.reset(token)


HEADER = "Code client;Raison sociale;N° facture;Date facture;Date d'échéance;Montant TTC\r\n"


def csv_of(*lines: str) -> bytes:
    return (HEADER + "".join(line + "\r\n" for line in lines)).encode("cp1252")


def count(db: Session, model: type) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_preview_counts_and_writes_nothing(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    data = csv_of(
        "C-1;Café Éole;F-1;01/11/2026;01/12/2026;1 234,56",
        "C-1;Café Éole;F-2;02/11/2026;02/12/2026;10,00",
        "C-9;;F-3;02/11/2026;02/12/2026;10,00",
        "C-1;Café Éole;F-4;02/12/2026;02/11/2026;10,00",
    )
    record = preview(session_factory, settings, company.id, data)
    assert record.status is ImportStatus.READY
    assert record.kind == "invoices"
    assert record.counts == {"new": 2, "customers_new": 1, "rejected": 2}
    assert [(r["line"], r["message"]) for r in record.rejections] == [
        (4, "there is no customer %(reference)s: add a column with its name"),
        (5, "The due date cannot be before the issue date."),
    ]
    assert record.sample[1]["values"]["number"] == "F-1"
    assert (count(db, Customer), count(db, Invoice)) == (0, 0)
    path = service.stored_file(settings, record)
    assert path is not None
    assert path.read_bytes() == data


def test_applying_twice_changes_nothing_the_second_time(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    data = csv_of(
        "C-1;Café Éole;F-1;01/11/2026;01/12/2026;1 234,56",
        "C-2;Dupont;F-2;02/11/2026;02/12/2026;10,00",
    )
    first = run_import(session_factory, settings, company.id, data)
    assert first.status is ImportStatus.DONE
    assert first.counts == {"new": 2, "customers_new": 2}
    invoice = db.scalars(select(Invoice).where(Invoice.number == "F-1")).one()
    assert (invoice.amount_minor, invoice.due_date) == (123456, dt.date(2026, 12, 1))
    assert invoice.customer.name == "Café Éole"
    events = count(db, TimelineEvent)
    again = run_import(session_factory, settings, company.id, data)
    assert again.counts == {"unchanged": 2}
    assert count(db, TimelineEvent) == events


def test_a_changed_amount_or_due_date_updates_the_invoice_and_says_so(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    run_import(session_factory, settings, company.id, csv_of("C-1;A;F-1;01/11/2026;01/12/2026;10"))
    record = run_import(
        session_factory, settings, company.id, csv_of("C-1;A;F-1;01/11/2026;15/12/2026;12,50")
    )
    assert record.counts == {"changed": 1}
    invoice = db.scalars(select(Invoice).where(Invoice.number == "F-1")).one()
    db.refresh(invoice)
    assert (invoice.amount_minor, invoice.due_date) == (1250, dt.date(2026, 12, 15))
    event = db.scalars(select(TimelineEvent).where(TimelineEvent.action == "invoice.updated")).one()
    assert event.customer_id == invoice.customer_id
    assert event.details["changes"] == {
        "due_date": ["2026-12-01", "2026-12-15"],
        "amount_minor": [1000, 1250],
    }
    assert event.actor_id == "import"


def test_zero_or_negative_amounts_are_rejected_with_the_services_reason(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    data = csv_of("C-1;A;F-1;01/11/2026;01/12/2026;0", "C-1;A;F-2;01/11/2026;01/12/2026;-5,00")
    record = preview(session_factory, settings, company.id, data)
    assert record.counts == {"rejected": 2, "customers_new": 1}
    assert {r["message"] for r in record.rejections} == {"Enter an amount greater than zero."}


def test_contacts_and_payments_go_through_their_services(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    run_import(session_factory, settings, company.id, csv_of("C-1;A;F-1;01/11/2026;01/12/2026;100"))
    contacts = (
        "Code client;Nom;Email;Fonction\r\n"
        "C-1;Jeanne Martin;jeanne@a.example;Comptabilité\r\n"
        "C-9;Nobody;n@a.example;\r\n"
    ).encode()
    record = run_import(session_factory, settings, company.id, contacts, kind=Kind.CONTACTS)
    assert record.counts == {"new": 1, "rejected": 1}
    again = run_import(session_factory, settings, company.id, contacts, kind=Kind.CONTACTS)
    assert again.counts == {"unchanged": 1, "rejected": 1}
    today = clock.today_in("Europe/Paris").strftime("%d/%m/%Y")
    payments = (
        "N° règlement;N° facture;Montant;Date règlement;Mode de paiement\r\n"
        f"VIR-1;F-1;40,00;{today};Virement\r\n"
    ).encode()
    paid = run_import(session_factory, settings, company.id, payments, kind=Kind.PAYMENTS)
    assert paid.counts == {"new": 1}
    invoice = db.scalars(select(Invoice).where(Invoice.number == "F-1")).one()
    db.refresh(invoice)
    assert invoice.paid_minor == 4000
    twice = run_import(session_factory, settings, company.id, payments, kind=Kind.PAYMENTS)
    assert twice.counts == {"unchanged": 1}


def test_duplicates_are_flagged_not_merged(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    run_import(session_factory, settings, company.id, csv_of("C-1;A;F-1;01/11/2026;01/12/2026;10"))
    record = preview(
        session_factory,
        settings,
        company.id,
        csv_of(
            "C-1;A;F-9;01/11/2026;01/12/2026;10",  # same as F-1, stored
            "C-2;B;F-10;03/11/2026;01/12/2026;7",
            "C-2;B;F-11;03/11/2026;01/12/2026;7",  # same as F-10, in the file
            "C-2;B;F-10;03/11/2026;01/12/2026;8",  # F-10 twice
        ),
    )
    assert record.counts["new"] == 3
    assert record.counts["flagged"] == 2
    assert [(w["line"], w["values"]["other"]) for w in record.warnings] == [
        (2, "F-1"),
        (4, "line 3"),
    ]
    assert record.rejections[0]["line"] == 5
    assert record.rejections[0]["values"] == {"key": "F-10"}


def test_one_company_under_two_references_is_flagged(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    data = (
        b"Code client;Raison sociale;Email;SIREN\r\n"
        b"C-1;Dupont;compta@dupont.example;732829320\r\n"
        b"C-2;Dupont SA;other@dupont.example;732 829 320\r\n"
    )
    record = preview(session_factory, settings, company.id, data)
    assert record.kind == "customers"
    assert record.counts == {"new": 2, "flagged": 1}
    assert record.warnings[0]["values"]["other"] == "C-1"


def test_open_items_export_settles_what_it_no_longer_lists_when_asked(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    both = csv_of("C-1;A;F-1;01/11/2026;01/12/2026;10", "C-1;A;F-2;01/11/2026;01/12/2026;11")
    run_import(session_factory, settings, company.id, both)
    one = csv_of("C-1;A;F-1;01/11/2026;01/12/2026;10")
    assert "settled" not in preview(session_factory, settings, company.id, one).counts
    asked = preview(session_factory, settings, company.id, one, settle_missing=True)
    assert asked.counts == {"unchanged": 1, "settled": 1}


def test_unrecognised_columns_wait_for_a_mapping_that_is_kept(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    data = b"Ref;Client;Emise le;Payable le;Somme\nF-1;C-1;01/11/2026;01/12/2026;10\n"
    record = preview(session_factory, settings, company.id, data, kind=None)
    assert record.status is ImportStatus.NEEDS_MAPPING
    header = record.sample[0]["header"]
    columns = dict(enumerate(["number", "customer_reference", "issue_date", "due_date", "amount"]))
    with session_factory() as s, s.begin():
        service.save_mapping(
            s, s.get_one(type(record), record.id), Kind.INVOICES, header, columns, None
        )
    service.analyse(session_factory, settings, record.id)
    again = preview(session_factory, settings, company.id, data)
    assert again.status is ImportStatus.READY  # the next file of this shape is mapped
    assert again.counts == {"rejected": 1}  # C-1 is unknown and has no name column


def test_an_unreadable_file_fails_with_its_reason_and_writes_nothing(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    record = preview(session_factory, settings, company.id, HEADER.encode() + b'C-1;"unclosed')
    assert record.status is ImportStatus.FAILED
    assert record.error is not None
    assert record.error["values"] == {"line": 2}


def test_purge_removes_old_originals_and_keeps_the_history(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    db.commit()
    record = preview(session_factory, settings, company.id, csv_of())
    path = service.stored_file(settings, record)
    assert path is not None
    later = record.created_at + dt.timedelta(days=settings.import_retention_days + 1)
    with session_factory() as s, s.begin():
        assert service.purge(s, settings, record.created_at) == 0
        assert service.purge(s, settings, later) == 1
    assert not path.exists()
    with session_factory() as s:
        assert service.history(s, company.id)[0].stored_path is None


_refs = st.integers(min_value=1, max_value=30).map(lambda n: f"C-{n:03d}")
_invoices = st.lists(
    st.builds(
        lambda ref, name, n, issued, days, amount: ExportedInvoice(
            ref, f"{name} {ref}", f"F-{n:05d}", issued, issued + dt.timedelta(days=days), amount
        ),
        _refs,
        st.text(
            st.characters(codec="cp1252", exclude_categories=["Cc", "Cs", "Zs"]),
            min_size=1,
            max_size=20,
        )
        .map(str.strip)
        .filter(bool),
        st.integers(min_value=1, max_value=99_999),
        st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1)),
        st.integers(min_value=0, max_value=120),
        st.integers(min_value=1, max_value=10**11),
    ),
    max_size=25,
    unique_by=lambda each: each.number,
)


@hypothesis_settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(exported=_invoices, encoding=st.sampled_from(["cp1252", "utf-8", "utf-8-sig"]))
def test_export_then_import_gives_the_same_data_and_a_second_import_changes_nothing(
    session_factory: sessionmaker[Session],
    settings: Settings,
    company: Company,
    exported: list[ExportedInvoice],
    encoding: str,
) -> None:
    # One name per customer, as an accounting system has it.
    names: dict[str, str] = {}
    exported = [
        ExportedInvoice(
            e.customer_reference,
            names.setdefault(e.customer_reference, e.customer_name),
            e.number,
            e.issue_date,
            e.due_date,
            e.amount_minor,
        )
        for e in exported
    ]
    text = io.StringIO()
    write_invoices_csv(text, exported)
    data = text.getvalue().encode(encoding)
    with session_factory() as s, s.begin():
        s.execute(Invoice.__table__.delete())
        s.execute(TimelineEvent.__table__.delete().where(TimelineEvent.customer_id.is_not(None)))
        s.execute(Customer.__table__.delete())
    first = run_import(session_factory, settings, company.id, data)
    assert first.counts.get("new", 0) == len(exported)
    assert first.counts.get("rejected", 0) == 0
    with session_factory() as s:
        stored = s.execute(
            select(
                Customer.reference,
                Customer.name,
                Invoice.number,
                Invoice.issue_date,
                Invoice.due_date,
                Invoice.amount_minor,
            ).join(Invoice.customer)
        ).all()
    assert sorted(tuple(r) for r in stored) == sorted(
        (e.customer_reference, e.customer_name, e.number, e.issue_date, e.due_date, e.amount_minor)
        for e in exported
    )
    second = run_import(session_factory, settings, company.id, data)
    assert second.counts == ({"unchanged": len(exported)} if exported else {})


def test_e_invoices_import_with_their_pdf_and_customer_and_again_change_nothing(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    from tests.einvoice_samples import DATA, cii_xml, facturx_pdf

    db.commit()
    pdf = facturx_pdf(cii_xml())
    ubl = (DATA / "ubl-invoice.xml").read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("FA-2026-0042.pdf", pdf)
        archive.writestr("ubl-invoice.xml", ubl)
        archive.writestr("notes.txt", b"not an invoice")
    data = buffer.getvalue()
    shown = preview(session_factory, settings, company.id, data, filename="invoices.zip")
    assert shown.kind == "einvoices"
    assert shown.counts["new"] == 2
    assert shown.counts["rejected"] == 1
    assert count(db, Invoice) == 0
    done = confirm_and_apply(session_factory, settings, shown.id)
    assert done.counts["new"] == 2
    invoice = db.scalars(select(Invoice).where(Invoice.number == "FA-2026-0042")).one()
    assert invoice.pdf_path is not None
    assert (settings.documents_dir / invoice.pdf_path).read_bytes() == pdf
    ubl_invoice = db.scalars(select(Invoice).where(Invoice.number == "FA-2026-0117")).one()
    assert ubl_invoice.customer.siren == "552100554"
    assert ubl_invoice.customer.reference == "CLI-0042"
    again = run_import(session_factory, settings, company.id, data, filename="invoices.zip")
    assert again.counts == {"unchanged": 2, "rejected": 1}


def test_the_worker_applies_what_was_confirmed_and_left_queued(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    from portal.imports import jobs
    from portal.imports.models import Import

    db.commit()
    record = preview(
        session_factory, settings, company.id, csv_of("C-1;A;F-1;01/11/2026;01/12/2026;10")
    )
    with session_factory() as s, s.begin():
        service.confirm(s, s.get_one(Import, record.id), None)
    day = jobs.run_once(session_factory, settings)
    assert day == clock.now().date()
    with session_factory() as s:
        assert s.get_one(Import, record.id).status is ImportStatus.DONE
    assert count(db, Invoice) == 1
    assert not service.apply_import(session_factory, settings, record.id)  # taken once


def test_a_number_twice_in_a_long_file_is_rejected_when_applied_too(
    db: Session, session_factory: sessionmaker[Session], settings: Settings, company: Company
) -> None:
    from portal.imports import apply

    db.commit()
    lines = [f"C-1;A;F-{n};01/11/2026;01/12/2026;{n}" for n in range(1, apply.BATCH + 2)]
    lines.append("C-1;A;F-1;01/11/2026;01/12/2026;999")  # F-1 again, in a later batch
    done = run_import(session_factory, settings, company.id, csv_of(*lines))
    assert done.counts["new"] == apply.BATCH + 1
    assert done.counts["rejected"] == 1
    assert done.rejections[0]["values"] == {"key": "F-1"}
    invoice = db.scalars(select(Invoice).where(Invoice.number == "F-1")).one()
    assert invoice.amount_minor == 100
