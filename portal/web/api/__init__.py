"""The HTTP side of the API under /api/v1 (see docs/api.md)."""
