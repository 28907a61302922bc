"""manual reminders, call outcomes, contact preferences, the company's reminder policy

Revision ID: 0018_manual_reminders
Revises: 0017_reminder_editor
Create Date: 2026-12-03 13:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_manual_reminders"
down_revision: str | None = "0017_reminder_editor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reminder_policies",
        sa.Column("id", ID, nullable=False),
        sa.Column("company_id", ID, nullable=False),
        sa.Column("monthly_cap", sa.Integer(), nullable=True),
        sa.Column("quiet_periods", sa.String(length=500), nullable=True),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("frozen_reason", sa.String(length=500), nullable=False),
        sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("frozen_by_user_id", ID, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_reminder_policies_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["frozen_by_user_id"],
            ["users.id"],
            name=op.f("fk_reminder_policies_frozen_by_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminder_policies")),
        sa.UniqueConstraint("company_id", name=op.f("uq_reminder_policies_company_id")),
    )
    with op.batch_alter_table("reminder_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("requested_by_user_id", ID, nullable=True))
        batch_op.add_column(sa.Column("edited_subject", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("edited_text", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_reminder_messages_requested_by_user_id_users"),
            "users",
            ["requested_by_user_id"],
            ["id"],
        )
    with op.batch_alter_table("reminder_tasks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.Enum(
                    "step",
                    "follow_up",
                    "post_letter",
                    name="taskkind",
                    native_enum=False,
                    length=16,
                    create_constraint=True,
                ),
                nullable=False,
                server_default="step",
            )
        )
        batch_op.add_column(sa.Column("due_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("tracking_number", sa.String(length=64), nullable=True))
        batch_op.alter_column("message_id", existing_type=ID, nullable=True)
    with op.batch_alter_table("reminder_tasks", schema=None) as batch_op:
        batch_op.alter_column("kind", server_default=None)
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email_bounced_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("email_bounced_at")
    with op.batch_alter_table("reminder_tasks", schema=None) as batch_op:
        batch_op.alter_column("message_id", existing_type=ID, nullable=False)
        batch_op.drop_column("tracking_number")
        batch_op.drop_column("due_on")
        batch_op.drop_constraint(batch_op.f("ck_reminder_tasks_taskkind"), type_="check")
        batch_op.drop_column("kind")
    with op.batch_alter_table("reminder_messages", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_reminder_messages_requested_by_user_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("edited_text")
        batch_op.drop_column("edited_subject")
        batch_op.drop_column("requested_by_user_id")
    op.drop_table("reminder_policies")
