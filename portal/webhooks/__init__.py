"""Outgoing webhooks: endpoints, the durable outbox of events, signed delivery by the worker."""
