"""import fingerprints on invoices, cleared by PostgreSQL when an invoice changes

Revision ID: 0022_import_fingerprints
Revises: 0021_dashboard_snapshots
Create Date: 2026-12-03 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_import_fingerprints"
down_revision: str | None = "0021_dashboard_snapshots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns a re-import compares (or that decide how a line is read): a change to any of
# them, by any path, makes the invoice's fingerprint stale.
COMPARED = "company_id, customer_id, number, issue_date, due_date, currency, amount_minor, status"


def _row(prefix: str) -> str:
    return "(" + ", ".join(f"{prefix}.{name.strip()}" for name in COMPARED.split(",")) + ")"


def upgrade() -> None:
    op.add_column("invoices", sa.Column("import_digest", sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's imports never read the fingerprint
    op.execute(
        """
        CREATE FUNCTION invoices_import_digest_stale() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.import_digest IS NOT DISTINCT FROM OLD.import_digest THEN
            NEW.import_digest := NULL;
          END IF;
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER invoices_import_digest_stale
        BEFORE UPDATE OF {COMPARED} ON invoices FOR EACH ROW
        WHEN (OLD.import_digest IS NOT NULL AND {_row("OLD")} IS DISTINCT FROM {_row("NEW")})
        EXECUTE FUNCTION invoices_import_digest_stale()
        """
    )
    op.execute(
        """
        CREATE FUNCTION customers_import_digest_stale() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE invoices SET import_digest = NULL
          WHERE customer_id = NEW.id AND import_digest IS NOT NULL;
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER customers_import_digest_stale
        AFTER UPDATE OF reference ON customers FOR EACH ROW
        WHEN (OLD.reference IS DISTINCT FROM NEW.reference)
        EXECUTE FUNCTION customers_import_digest_stale()
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER customers_import_digest_stale ON customers")
        op.execute("DROP FUNCTION customers_import_digest_stale()")
        op.execute("DROP TRIGGER invoices_import_digest_stale ON invoices")
        op.execute("DROP FUNCTION invoices_import_digest_stale()")
    op.drop_column("invoices", "import_digest")
