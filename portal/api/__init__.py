"""The integrators' API: keys, idempotency, request schemas (HTTP lives in portal/web/api/)."""
