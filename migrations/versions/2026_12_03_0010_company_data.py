"""Company data: identifiers and postal address of customers, contact roles and channels,
credit notes, and the payment methods of money received outside the portal

Revision ID: 0010_company_data
Revises: 0009
Create Date: 2026-12-03 07:25:36.147962
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_company_data"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OLD_METHODS = ("card", "transfer", "direct_debit", "other")
NEW_METHODS = ("card", "transfer", "direct_debit", "cheque", "offset", "credit_note", "other")
OLD_REVERSALS = ("refund", "chargeback")
NEW_REVERSALS = ("refund", "chargeback", "cancellation")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _replace_check(table: str, name: str, column: str, values: Sequence[str]) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
        batch_op.create_check_constraint(op.f(f"ck_{table}_{name}"), _in(column, values))


def upgrade() -> None:
    op.create_table(
        "credit_notes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("company_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "issued",
                "cancelled",
                name="creditnotestatus",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("applies_to", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("payment_id", BigId, nullable=True),
        sa.Column("pdf_path", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_credit_notes_amount_positive")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_credit_notes_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_credit_notes_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_credit_notes_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_notes")),
        sa.UniqueConstraint("company_id", "number", name=op.f("uq_credit_notes_company_id_number")),
    )
    with op.batch_alter_table("credit_notes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credit_notes_customer_id"), ["customer_id"], unique=False
        )

    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "role",
                sa.Enum(
                    "billing",
                    "accounting",
                    "management",
                    "purchasing",
                    "other",
                    name="contactrole",
                    native_enum=False,
                    create_constraint=True,
                    length=16,
                ),
                nullable=False,
                server_default="billing",
            )
        )
        for channel in ("email", "sms", "calls", "letters"):
            batch_op.add_column(
                sa.Column(
                    f"accepts_{channel}", sa.Boolean(), nullable=False, server_default=sa.true()
                )
            )

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("siren", sa.String(length=9), nullable=True))
        batch_op.add_column(sa.Column("siret", sa.String(length=14), nullable=True))
        batch_op.add_column(sa.Column("vat_number", sa.String(length=20), nullable=True))
        for name, length in (
            ("address_line1", 200),
            ("address_line2", 200),
            ("postcode", 16),
            ("city", 100),
        ):
            batch_op.add_column(
                sa.Column(name, sa.String(length=length), nullable=False, server_default="")
            )
        batch_op.add_column(
            sa.Column("country", sa.String(length=2), nullable=False, server_default="FR")
        )
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_customers_company_siren", ["company_id", "siren"], unique=False)
        batch_op.create_index(
            "ix_customers_company_vat_number", ["company_id", "vat_number"], unique=False
        )

    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))

    _replace_check("payments", "paymentmethod", "method", NEW_METHODS)
    _replace_check("payment_requests", "paymentmethod", "method", NEW_METHODS)
    _replace_check("payment_reversals", "reversalkind", "kind", NEW_REVERSALS)


def downgrade() -> None:
    _replace_check("payment_reversals", "reversalkind", "kind", OLD_REVERSALS)
    _replace_check("payment_requests", "paymentmethod", "method", OLD_METHODS)
    _replace_check("payments", "paymentmethod", "method", OLD_METHODS)

    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("updated_at")

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_company_vat_number")
        batch_op.drop_index("ix_customers_company_siren")
        for name in (
            "updated_at",
            "country",
            "city",
            "postcode",
            "address_line2",
            "address_line1",
            "vat_number",
            "siret",
            "siren",
        ):
            batch_op.drop_column(name)

    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_contacts_contactrole"), type_="check")
        for name in ("accepts_letters", "accepts_calls", "accepts_sms", "accepts_email", "role"):
            batch_op.drop_column(name)

    with op.batch_alter_table("credit_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credit_notes_customer_id"))

    op.drop_table("credit_notes")
