"""Reading statements: CAMT.053 and CAMT.054 (versions 02 and 08, schema-checked),
CFONB 120, CSV with a saved mapping; duplicates and bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.bank import camt053, cfonb120, csv_format
from portal.bank.errors import StatementError
from portal.bank.models import BankLine, LineStatus
from portal.bank.schema import schema
from portal.company.models import Company
from tests.bank_helpers import ACCOUNT, Entry, camt, cfonb, csv_statement
from tests.bank_import import counts, import_
from tests.factories import make_customer, make_invoice

ENTRIES = [
    Entry(
        12_345,
        "E-1",
        name="Durand SA",
        iban="FR1420041010050500013M02606",
        remittance=("Facture F-1",),
        structured="RF18539007547034",
    ),
    Entry(5_000, "E-2", credit=False, remittance=("Loyer",)),
]


@pytest.mark.parametrize("message", ["053", "054"])
@pytest.mark.parametrize("version", ["001.02", "001.08"])
def test_camt_versions_02_and_08_are_read_after_the_schema_check(
    message: str, version: str
) -> None:
    data = camt(ENTRIES, message=message, version=version)
    parsed = camt053.camt.parse(data, message)
    first, second = parsed.lines
    assert parsed.account_iban == ACCOUNT
    assert parsed.format == f"camt.{message}"
    assert (first.amount_minor, first.credit, first.debtor_name) == (12_345, True, "Durand SA")
    assert first.structured_reference == "RF18539007547034"
    assert first.debtor_iban == "FR1420041010050500013M02606"
    assert (second.amount_minor, second.credit) == (5_000, False)


def test_the_schema_refuses_what_the_official_one_refuses() -> None:
    data = camt(ENTRIES).replace(b"<CdtDbtInd>CRDT", b"<CdtDbtInd>CREDIT")
    with pytest.raises(StatementError, match="schema"):
        camt053.parse(data)
    misplaced = camt(ENTRIES).replace(b"<Id>STMT-1</Id>", b"<Foo/><Id>STMT-1</Id>")
    with pytest.raises(StatementError, match="schema"):
        camt053.parse(misplaced)
    assert schema("053", "001.08").validate(
        __import__("lxml.etree").etree.fromstring(camt(ENTRIES, version="001.08"))
    )


def test_cfonb_120_movements_with_their_complements() -> None:
    lines = cfonb120.parse(cfonb(ENTRIES), ACCOUNT).lines
    assert [(x.amount_minor, x.credit) for x in lines] == [(12_345, True), (5_000, False)]
    assert lines[0].debtor_name == "Durand SA"
    assert "Facture F-1" in lines[0].remittance
    assert cfonb120.signed_amount("0000000012345}", 2) == -123450


def test_csv_with_known_headers_and_with_a_saved_mapping(db: Session, company: Company) -> None:
    lines = csv_format.parse(csv_statement(ENTRIES), ACCOUNT, "EUR", None).lines
    assert [(x.amount_minor, x.credit, x.entry_reference) for x in lines] == [
        (12_345, True, "E-1"),
        (5_000, False, "E-2"),
    ]
    odd = csv_statement(ENTRIES, header="Jour;Somme;Texte;Qui;Cpt;Num")
    with pytest.raises(StatementError, match="not mapped"):
        csv_format.parse(odd, ACCOUNT, "EUR", None)
    header = csv_format.header_of(odd)
    csv_format.save_mapping(
        db,
        company.id,
        header,
        {
            "Jour": "booked_on",
            "Somme": "amount",
            "Texte": "remittance",
            "Qui": "debtor_name",
            "Num": "reference",
        },
        None,
    )
    saved = csv_format.saved_mapping(db, company.id, header)
    assert csv_format.parse(odd, ACCOUNT, "EUR", saved).lines == [
        line.__class__(**{**line.__dict__, "debtor_iban": ""}) for line in lines
    ]


@pytest.mark.parametrize("fmt", ["camt053", "camt054", "cfonb", "csv"])
def test_the_same_statement_imported_twice_adds_nothing(
    db: Session, company: Company, fmt: str
) -> None:
    data = {
        "camt053": lambda: camt(ENTRIES, version="001.08"),
        "camt054": lambda: camt(ENTRIES, message="054"),
        "cfonb": lambda: cfonb(ENTRIES),
        "csv": lambda: csv_statement(ENTRIES),
    }[fmt]()
    first = import_(db, company, data)
    assert (first.new, first.review, first.debits) == (2, 1, 1)
    before = counts(db)
    again = import_(db, company, data)
    assert (again.statement_id, again.new) == (None, 0)
    assert counts(db) == before
    statuses = sorted(line.status for line in db.scalars(select(BankLine)))
    assert statuses == sorted([LineStatus.REVIEW, LineStatus.DEBIT])


def test_a_later_statement_overlapping_the_first_adds_only_its_new_lines(
    db: Session, company: Company
) -> None:
    import_(db, company, camt(ENTRIES))
    more = [*ENTRIES, Entry(700, "E-3", name="Nobody")]
    result = import_(db, company, camt(more, statement_id="STMT-2"))
    assert (result.total, result.new) == (3, 1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<Document><oops", "camt.053 or camt.054"),
        (camt(ENTRIES)[:-40], "well-formed"),
        (camt(ENTRIES, account="FR7630004000031234567890143"), "not the company's account"),
        (camt(ENTRIES, currency="USD"), "the account is in EUR"),
        (camt([Entry(100, "X", currency="GBP")]), "the account is in EUR"),
        (cfonb(ENTRIES, account="99999999999"), "not the company's account"),
        (cfonb(ENTRIES)[:200], "120 characters"),
        (b"", "empty"),
        (b"date;montant\n32/13/2026;12\n", "cannot be read"),
    ],
)
def test_bad_files_get_a_clear_message_and_change_nothing(
    db: Session, company: Company, data: bytes, message: str
) -> None:
    customer = make_customer(db, company)
    make_invoice(db, customer)
    before = counts(db)
    with pytest.raises(StatementError, match=message):
        import_(db, company, data)
    assert counts(db) == before
