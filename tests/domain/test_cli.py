"""The `portal` command line, run in-process against a migrated SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal import migrate
from portal.cli import build_parser, main
from portal.customers.models import Customer
from portal.db import make_engine, make_session_factory
from portal.demo.sample import SAMPLE_FILE, sample_bytes
from portal.invoices.models import Invoice
from portal.links.tokens import LinkSigner
from portal.payments.models import Payment
from portal.settings import load_settings
from tests.conftest import TEST_SECRET


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    for name, value in {
        "PORTAL_DATABASE_URL": url,
        "PORTAL_ENVIRONMENT": "development",
        "PORTAL_SECRET_KEYS": TEST_SECRET,
        "PORTAL_BASE_URL": "http://portal.test",
        "PORTAL_DOCUMENTS_DIR": str(tmp_path / "documents"),
        "PORTAL_MAIL_SPOOL_DIR": str(tmp_path / "mail"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stray .env
    migrate.upgrade(url)
    return url


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["db"],
        ["db", "upgrade"],
        ["db", "check"],
        ["demo"],
        ["serve"],
        ["link"],
        ["revoke-links"],
        ["cases"],
        ["cases", "check"],
        ["import"],
        ["purge-imports"],
        ["prune-api"],
    ],
)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as shown:
        build_parser().parse_args([*command, "--help"])
    assert shown.value.code == 0
    assert "usage: portal" in capsys.readouterr().out


def test_prune_api_says_what_it_removed(cli_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prune-api"]) == 0
    assert "0 stored API answers older than 24 hours" in capsys.readouterr().out


def test_demo_seeds_idempotently_and_prints_links(
    cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--no-serve"]) == 0
    assert main(["demo", "--no-serve"]) == 0
    output = capsys.readouterr().out
    assert output.count("http://portal.test/l/") >= 6
    engine = make_engine(cli_env)
    with make_session_factory(engine)() as db:
        assert db.scalar(select(func.count()).select_from(Customer)) == 16
        assert db.scalar(select(func.count()).select_from(Invoice)) == 55
        languages = set(db.scalars(select(Customer.language)))
        zones = set(db.scalars(select(Customer.timezone)))
        payments = db.scalar(select(func.count()).select_from(Payment))
        with_pdf = db.scalar(select(func.count()).where(Invoice.pdf_path.is_not(None)))
    engine.dispose()
    assert languages == {"fr", "en"}
    assert len(zones) >= 5
    assert payments == 19  # one per invoice paid in full or in part, none twice
    assert with_pdf == 6


def test_the_demo_switches_the_outbox_viewer_on(
    cli_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PORTAL_DEV_OUTBOX", raising=False)  # restored after the test
    assert not load_settings().dev_outbox
    assert main(["demo", "--no-serve"]) == 0
    assert load_settings().dev_outbox


def test_link_prints_a_short_signed_url(cli_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["demo", "--no-serve"])
    capsys.readouterr()
    assert main(["link", "C-1002", "--invoice", "F2026-0202", "--days", "3"]) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("http://portal.test/l/")
    assert len(url.removeprefix("http://portal.test")) <= 60
    claims = LinkSigner([TEST_SECRET], 45 * 86400).verify(url.rsplit("/", 1)[1])
    assert claims.lifetime_days == 3
    assert claims.scope_id is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["link", "NOPE"], "no customer with reference 'NOPE'"),
        (["link", "C-1001", "--invoice", "F2026-0202"], "no such invoice"),
        (["link", "C-1001", "--days", "0"], "--days must be between 1 and 366"),
        (["revoke-links", "NOPE"], "no customer"),
    ],
)
def test_mistakes_get_a_clear_message(cli_env: str, args: list[str], message: str) -> None:
    main(["demo", "--no-serve"])
    with pytest.raises(SystemExit) as refused:
        main(args)
    assert message in str(refused.value.code)


@pytest.mark.parametrize(
    "args",
    [
        ["link", "C-1001"],
        ["revoke-links", "C-1001"],
        ["reminders", "run"],
        ["worker", "--once"],
        ["cases", "check"],
        ["serve"],
    ],
)
def test_commands_refuse_a_database_that_is_not_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setenv("PORTAL_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("PORTAL_SECRET_KEYS", TEST_SECRET)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as refused:
        main(args)
    assert str(refused.value.code) == (
        "database not ready: it has no tables yet: run `portal db upgrade` first"
    )


def test_commands_refuse_a_database_behind_the_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    monkeypatch.setenv("PORTAL_DATABASE_URL", url)
    monkeypatch.setenv("PORTAL_SECRET_KEYS", TEST_SECRET)
    monkeypatch.chdir(tmp_path)
    migrate.upgrade(url, "0008")
    with pytest.raises(SystemExit) as refused:
        main(["link", "C-1001"])
    message = str(refused.value.code)
    assert "at revision 0008" in message
    assert "run `portal db upgrade`" in message
    migrate.upgrade(url)
    assert migrate.revision_problem(url) is None


def test_revoke_links_bumps_the_link_version(
    cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["demo", "--no-serve"])
    assert main(["revoke-links", "C-1001"]) == 0
    assert "revoked" in capsys.readouterr().out
    engine = make_engine(cli_env)
    with make_session_factory(engine)() as db:
        version = db.scalar(select(Customer.link_version).where(Customer.reference == "C-1001"))
    engine.dispose()
    assert version == 2


def test_production_refuses_the_demo_and_default_secrets(
    cli_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_ENVIRONMENT", "production")
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.test")
    monkeypatch.delenv("PORTAL_SECRET_KEYS")
    with pytest.raises(SystemExit) as refused:
        main(["link", "C-1001"])
    assert "PORTAL_SECRET_KEYS" in str(refused.value.code)


def test_db_check_passes_on_a_migrated_database(
    cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "check"]) == 0
    assert "matches" in capsys.readouterr().out


def test_cases_check_breaks_a_missed_promise_once_and_tells_its_manager(
    cli_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import datetime as dt

    from portal.cases import service as cases
    from portal.cases.models import Case, CaseStatus
    from portal.company.service import sync_company
    from portal.settings import CaseSettings, load_settings
    from portal.users.models import Role, User

    engine = make_engine(cli_env)
    factory = make_session_factory(engine)
    today = dt.datetime.now(dt.UTC).date()
    with factory() as db, db.begin():
        company = sync_company(db, load_settings().company)
        from tests.factories import make_customer, make_invoice

        manager = User(
            email="cm@relance.example",
            password_hash="x",
            role=Role.CREDIT_MANAGER,
            is_active=True,
            failed_logins=0,
            session_version=1,
            created_at=dt.datetime.now(dt.UTC),
        )
        db.add(manager)
        customer = make_customer(db, company)
        invoice = make_invoice(db, customer)
        case = cases.promise_to_pay(
            db,
            customer,
            None,
            [invoice.id],
            promised_date=today,
            today=today,
            policy=CaseSettings(),
            agreement=cases.AgreementInfo(None, None),
        )
        case_id = case.id
    later = (today + dt.timedelta(days=CaseSettings().promise_grace_days + 1)).isoformat()
    assert main(["cases", "check", "--date", today.isoformat()]) == 0
    assert "0 completed, 0 broken" in capsys.readouterr().out
    assert main(["cases", "check", "--date", later]) == 0
    assert "0 completed, 1 broken" in capsys.readouterr().out
    assert main(["cases", "check", "--date", later]) == 0
    assert "0 completed, 0 broken" in capsys.readouterr().out
    with factory() as db:
        assert db.get(Case, case_id).status is CaseStatus.BROKEN  # type: ignore[union-attr]
    [mail] = list((tmp_path / "mail").glob("*.eml"))
    assert "cm@relance.example" in mail.read_text()
    with pytest.raises(SystemExit):
        main(["cases", "check", "--date", "tomorrow"])
    engine.dispose()


def test_the_shipped_sample_export_is_the_generated_one() -> None:
    assert SAMPLE_FILE.read_bytes() == sample_bytes()


def test_the_demo_shows_how_to_import_its_sample_and_the_import_converges(
    cli_env: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORTAL_IMPORTS_DIR", str(tmp_path / "imports"))
    main(["demo", "--no-serve"])
    banner = capsys.readouterr().out
    assert "portal import " in banner
    assert "sample-export.csv" in banner
    assert main(["import", str(SAMPLE_FILE), "--dry-run"]) == 0
    preview = capsys.readouterr().out
    assert "20 rows; 4 customers new, 1 flagged, 19 new, 1 rejected" in preview
    assert "line 20: rejected: The due date cannot be before the issue date." in preview
    assert "flagged for review" in preview
    assert main(["import", str(SAMPLE_FILE)]) == 0
    assert main(["import", str(SAMPLE_FILE)]) == 0
    assert "20 rows; 1 rejected, 19 unchanged" in capsys.readouterr().out
    engine = make_engine(cli_env)
    with make_session_factory(engine)() as db:
        assert db.scalar(select(func.count()).select_from(Customer)) == 20
        assert (
            db.scalar(select(func.count()).select_from(Invoice)) == 74
        )  # the seed's fifty-five and the sample's nineteen
    engine.dispose()


def test_import_refuses_what_is_not_a_file(cli_env: str) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["import", "missing.csv"])
    assert "is not a file" in str(refused.value.code)
