"""`portal bank import FILE`, in-process against a migrated SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal import migrate
from portal.bank.models import BankLine
from portal.cli import build_parser, main
from portal.company.service import sync_company
from portal.db import make_engine, make_session_factory
from portal.invoices.models import Invoice, InvoiceStatus
from portal.settings import load_settings
from tests.bank_helpers import Entry, camt
from tests.conftest import TEST_SECRET
from tests.factories import make_customer, make_invoice


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    for name, value in {
        "PORTAL_DATABASE_URL": url,
        "PORTAL_ENVIRONMENT": "development",
        "PORTAL_SECRET_KEYS": TEST_SECRET,
        "PORTAL_BASE_URL": "http://portal.test",
        "PORTAL_DOCUMENTS_DIR": str(tmp_path / "documents"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    migrate.upgrade(url)
    return url


def test_bank_import_records_matches_and_a_second_run_adds_nothing(
    cli_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(cli_db)
    factory = make_session_factory(engine)
    with factory() as db:
        company = sync_company(db, load_settings().company)
        customer = make_customer(db, company)
        invoice_id = make_invoice(db, customer, amount_minor=1_500, number="CLI-1").id
        db.commit()
    statement = tmp_path / "releve.xml"
    statement.write_bytes(camt([Entry(1_500, "K1", remittance=("CLI-1",)), Entry(42, "K2")]))
    assert main(["bank", "import", str(statement), "--dry-run"]) == 0
    assert "would import 2 new lines of 2: 1 recorded as payments" in capsys.readouterr().out
    assert main(["bank", "import", str(statement)]) == 0
    assert (
        "imported 2 new lines of 2: 1 recorded as payments, 1 to match" in capsys.readouterr().out
    )
    assert main(["bank", "import", str(statement)]) == 0
    assert "imported 0 new lines of 2" in capsys.readouterr().out
    wrong = tmp_path / "other.xml"
    wrong.write_bytes(camt([Entry(1, "Z")], account="FR7630004000031234567890143"))
    assert main(["bank", "import", str(wrong)]) == 1
    assert "refused, nothing imported" in capsys.readouterr().out
    with factory() as db:
        assert db.scalar(select(func.count()).select_from(BankLine)) == 2
        assert db.get(Invoice, invoice_id).status is InvoiceStatus.PAID  # type: ignore[union-attr]
    engine.dispose()


def test_bank_import_has_help_and_refuses_what_is_not_a_file(cli_db: str) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bank", "import", "--help"])
    with pytest.raises(SystemExit) as refused:
        main(["bank", "import", "missing.xml"])
    assert "is not a file" in str(refused.value.code)
