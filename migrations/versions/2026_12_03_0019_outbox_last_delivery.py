"""outbox: index of the last delivery

Revision ID: 0019_outbox_last_delivery
Revises: 0018_manual_reminders
Create Date: 2026-12-03 14:05:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019_outbox_last_delivery"
down_revision: str | None = "0018_manual_reminders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The back office's outbox and /healthz/outbox read the last delivery.
    op.create_index("ix_reminder_messages_sent_at", "reminder_messages", ["sent_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_reminder_messages_sent_at", table_name="reminder_messages")
