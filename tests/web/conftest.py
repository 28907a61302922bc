"""Fixtures shared by web tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import backends
from tests.payments_live import PaymentWorld, payment_world


@pytest.fixture(scope="module", params=backends())
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PaymentWorld]:
    """The app served for real next to localstripe and an SMTP sink, once per test module
    and backend (card payments, webhooks)."""
    with payment_world(request.param, tmp_path_factory.mktemp("payments")) as payment_world_:
        yield payment_world_


# The API's fixtures (an admin, keys of both scopes, a client that sends the write key).
from tests.web.api_helpers import api, api_admin, read_key, write_key  # noqa: E402, F401
