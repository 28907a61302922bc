"""payment requests

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 11:02:51.441097
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column(
            "method",
            sa.Enum(
                "card",
                "transfer",
                "direct_debit",
                "other",
                name="paymentmethod",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "declared",
                "confirmed",
                "expired",
                name="paymentrequeststatus",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("invoice_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("declared_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("declared_paid_on", sa.Date(), nullable=True),
        sa.Column("grace_until", sa.Date(), nullable=True),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_payment_requests_amount_positive")),
        sa.CheckConstraint(
            "declared_amount_minor IS NULL OR declared_amount_minor > 0",
            name=op.f("ck_payment_requests_declared_amount_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_payment_requests_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_requests")),
    )
    with op.batch_alter_table("payment_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payment_requests_customer_status", ["customer_id", "status"], unique=False
        )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("transfer_pending_until", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("transfer_pending_until")
    with op.batch_alter_table("payment_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_requests_customer_status")

    op.drop_table("payment_requests")
