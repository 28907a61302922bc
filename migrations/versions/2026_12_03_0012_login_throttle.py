"""Login throttling and account locks by email; digests of debtor messages per case

Revision ID: 0012_login_throttle
Revises: 0009
Create Date: 2026-12-03 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_login_throttle"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("staff_notified_message_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("staff_notified_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("staff_notified_at")
        batch_op.drop_column("staff_notified_message_id")
