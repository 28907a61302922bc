"""The cockpit: customers' payment behaviour, and segments a credit manager pinned

Revision ID: 0015_cockpit
Revises: 0014_api_webhooks
Create Date: 2026-12-03 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_cockpit"
down_revision: str | None = "0014_api_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_behaviour",
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("paid_invoices", sa.Integer(), nullable=False),
        sa.Column("late_invoices", sa.Integer(), nullable=False),
        sa.Column("avg_days_late", sa.Integer(), nullable=False),
        sa.Column("broken_promises", sa.Integer(), nullable=False),
        sa.Column("disputes", sa.Integer(), nullable=False),
        sa.Column("suggested_segment", sa.String(length=8), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_customer_behaviour_company_id_companies"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_behaviour_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_behaviour")),
    )
    op.create_index(
        "ix_customer_behaviour_company", "customer_behaviour", ["company_id"], unique=False
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "risk_segment_pinned", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("risk_segment_pinned")
    op.drop_index("ix_customer_behaviour_company", table_name="customer_behaviour")
    op.drop_table("customer_behaviour")
