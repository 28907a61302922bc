"""The widget on the company's website: allowed host sites, embedded sessions, the
"Pay an invoice" switch; the company's look (brandings, branding_texts)

Revision ID: 0013_embed
Revises: 0012_login_throttle
Create Date: 2026-12-03 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_embed"
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

    op.create_table(
        "brandings",
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("primary_colour", sa.String(length=7), nullable=False),
        sa.Column("accent_colour", sa.String(length=7), nullable=False),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("logo_type", sa.String(length=20), nullable=False),
        sa.Column("sender_name", sa.String(length=100), nullable=False),
        sa.Column("sender_email", sa.String(length=254), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_brandings_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["users.id"], name=op.f("fk_brandings_updated_by_users")
        ),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_brandings")),
    )
    op.create_table(
        "branding_texts",
        sa.Column(
            "company_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("welcome", sa.Text(), nullable=False),
        sa.Column("footer", sa.Text(), nullable=False),
        sa.Column("legal", sa.Text(), nullable=False),
        sa.Column("support", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_branding_texts_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("company_id", "language", name=op.f("pk_branding_texts")),
    )


def downgrade() -> None:
    op.drop_table("branding_texts")
    op.drop_table("brandings")
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.drop_column("lookup_enabled")
    with op.batch_alter_table("debtor_sessions", schema=None) as batch_op:
        batch_op.drop_column("embed_origin")
    op.drop_table("embed_origins")
