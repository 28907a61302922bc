"""The reminder engine: scenarios, planning, the outbox, delivery and call tasks."""
