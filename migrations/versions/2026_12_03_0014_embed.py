"""The widget on the company's website: allowed host sites, embedded sessions, the
"Pay an invoice" switch

Revision ID: 0014_embed
Revises: 0012_login_throttle
Create Date: 2026-12-03 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_embed"
down_revision: str | None = "0012_login_throttle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "embed_origins",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_embed_origins_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_embed_origins_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embed_origins")),
        sa.UniqueConstraint(
            "company_id", "origin", name=op.f("uq_embed_origins_company_id_origin")
        ),
    )
    with op.batch_alter_table("debtor_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("embed_origin", sa.String(length=200), nullable=True))
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lookup_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.drop_column("lookup_enabled")
    with op.batch_alter_table("debtor_sessions", schema=None) as batch_op:
        batch_op.drop_column("embed_origin")
    op.drop_table("embed_origins")
