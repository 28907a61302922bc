"""Reminder holds: what pauses the reminders of an invoice (disputes, plans, promises)."""
