"""What credit managers see: read-only queries for the back office (no Starlette here)."""
