"""The shared rate counter: processes take requests from it in batches, never more than
the limit all together, and start again each minute."""

from __future__ import annotations

from sqlalchemy.orm import Session

from portal.api import keys
from portal.company.models import Company
from portal.users.models import Role
from portal.users.service import create_user
from portal.web.api.ratelimit import RateLimiter

START = 6_000_000.0  # the start of a minute


def test_processes_together_never_pass_the_limit(db: Session, company: Company) -> None:
    admin = create_user(db, "admin@relance.example", Role.ADMIN, "x" * 20)
    db.flush()
    secret = keys.create_key(db, company.id, name="ERP", scope="write", user_id=admin.id)
    key_id = keys.authenticate(db, secret.secret).key_id  # type: ignore[union-attr]
    now = [START + 10]
    processes = [RateLimiter(600, clock=lambda: now[0]) for _ in range(3)]
    assert processes[0].batch == 6
    waits = [processes[n % 3].wait(db, key_id) for n in range(700)]
    allowed = waits.count(0)
    # Each process may hold back at most one batch it took and did not use.
    assert 600 - 3 * 6 <= allowed <= 600
    assert set(waits[allowed + 20 :]) == {50}  # the rest of the minute
    now[0] = START + 60  # the next minute: the count starts again
    assert [p.wait(db, key_id) for p in processes] == [0, 0, 0]
