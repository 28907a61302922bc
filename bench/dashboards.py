"""Benchmark of the cockpit on PostgreSQL: the dashboard page, and each panel against the
same aggregate written by hand as one raw SQL query, measured side by side in one run.

    .venv/bin/python bench/dashboards.py          # 1,000,000 invoices, 200,000 customers
    .venv/bin/python bench/dashboards.py --invoices 100000 --rounds 3

A fresh database is migrated and filled set-based (``INSERT ... SELECT`` over
``generate_series``): customers, invoices over two years (about 60 % paid, through
payments and allocations), promises, plans with instalments, disputes, sent reminders;
then the nightly behaviour pass runs (timed), then the whole-company dashboard is computed
ahead once (``cockpit.snapshot.refresh``, what the worker does every few minutes; timed).
Each measurement is the median of ``--rounds`` runs, alternating: the panel as the page
gets it (from the snapshot), the panel computed live, and its raw query. Prints the
figures, then one line per panel with its ratio (served panel / raw query; live / raw
alongside) and the page time against its 1 s budget. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, make_url, text  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from portal import clock, migrate  # noqa: E402
from portal.cockpit import behaviour, dashboard, snapshot  # noqa: E402
from portal.cockpit.filters import Filters  # noqa: E402
from portal.cockpit.forecast import first_week  # noqa: E402
from portal.company.service import sync_company  # noqa: E402
from portal.db import make_engine, make_session_factory  # noqa: E402
from portal.settings import load_settings  # noqa: E402
from portal.users.models import Role  # noqa: E402
from portal.users.service import create_user  # noqa: E402
from portal.web.app import create_app  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSWORD = "bench-dashboard-password"  # noqa: S105 - a throwaway database

SEED = [
    # customers: segments and owners spread evenly
    """INSERT INTO customers (company_id, reference, name, language, timezone, risk_segment,
         risk_segment_pinned, strategic, link_version, owner_user_id, address_line1,
         address_line2, postcode, city, country, created_at)
       SELECT :company, 'C' || n, 'Client ' || n || ' SARL', 'fr', 'Europe/Paris',
         (ARRAY['low','medium','high'])[1 + n % 3], false, false, 1,
         CASE WHEN n % 4 = 0 THEN NULL ELSE :owner END, '', '', '', '', 'FR', now()
       FROM generate_series(1, :customers) AS n""",
    # invoices over two years; a tenth in USD; older ones mostly paid
    """INSERT INTO invoices (company_id, customer_id, number, issue_date, due_date, currency,
         amount_minor, paid_minor, status, created_at)
       SELECT :company, c.first + n % :customers, 'F' || n,
         :today - ((n::bigint * 7919 % 720)::int),
         :today - ((n::bigint * 7919 % 720)::int) + 30,
         CASE WHEN n % 10 = 0 THEN 'USD' ELSE 'EUR' END,
         1000 + (n::bigint * 37 % 500000),
         CASE WHEN (n::bigint * 7919 % 720)::int > 45 AND n % 10 < 6
              THEN 1000 + (n::bigint * 37 % 500000) ELSE 0 END,
         CASE WHEN (n::bigint * 7919 % 720)::int > 45 AND n % 10 < 6 THEN 'paid' ELSE 'open' END,
         now()
       FROM generate_series(1, :invoices) AS n,
            (SELECT min(id) AS first FROM customers) AS c""",
    # one payment per paid invoice, received around its due date (10 days early to 30 late)
    """INSERT INTO payments (customer_id, amount_minor, currency, method, status, provider,
         provider_reference, received_at, created_at, reversed_minor, receipt_pending)
       SELECT customer_id, amount_minor, currency, 'transfer', 'succeeded', 'bench',
         id::text, (due_date + (id % 40 - 10)::int)::timestamp AT TIME ZONE 'UTC', now(), 0, false
       FROM invoices WHERE status = 'paid'""",
    """INSERT INTO payment_allocations (payment_id, invoice_id, amount_minor)
       SELECT id, provider_reference::bigint, amount_minor
       FROM payments WHERE provider = 'bench'""",
    # promises (running and ended), plans, disputes on open invoices
    """INSERT INTO cases (company_id, customer_id, kind, status, currency, total_minor,
         reason, promised_date, accepted_at, resolution, created_at, updated_at)
       SELECT :company, customer_id,
         (ARRAY['promise','plan','dispute'])[1 + id % 3],
         CASE id % 3 WHEN 0 THEN (ARRAY['active','completed','broken'])[1 + id / 3 % 3]
                     WHEN 1 THEN 'active' ELSE 'open' END,
         currency, amount_minor,
         CASE WHEN id % 3 = 2
           THEN (ARRAY['not_received','wrong_amount','other'])[1 + id % 5 % 3] END,
         CASE WHEN id % 3 = 0 THEN :today + (id % 60 - 30)::int END,
         CASE WHEN id % 3 = 1 THEN now() - interval '40 days' END,
         CASE WHEN id % 3 = 0 AND id / 3 % 3 = 2 THEN 'broken' END,
         now() - (id % 50) * interval '1 day', now()
       FROM invoices WHERE status = 'open' AND id % 200 = 7""",
    """INSERT INTO case_invoices (case_id, invoice_id)
       SELECT c.id, i.id FROM cases c JOIN invoices i
         ON i.customer_id = c.customer_id AND i.amount_minor = c.total_minor
            AND i.status = 'open' AND i.id % 200 = 7""",
    """INSERT INTO instalments (case_id, seq, due_date, amount_minor)
       SELECT id, s, :today + (s - 2) * 30,
         total_minor / 3 + CASE WHEN s = 1 THEN total_minor % 3 ELSE 0 END
       FROM cases, generate_series(1, 3) AS s WHERE kind = 'plan'""",
    # sent reminders, each about one or two invoices
    """INSERT INTO reminder_messages (company_id, customer_id, scenario, step, cycle, channel,
         template, status, next_attempt_at, attempts, created_at, sent_at)
       SELECT :company, customer_id, 'standard',
         (ARRAY['first','second','formal'])[1 + id % 3], 'c' || id,
         (ARRAY['email','sms','letter'])[1 + id % 3], 'reminder', 'sent',
         (due_date + 5)::timestamp AT TIME ZONE 'UTC', 1, now(),
         (due_date + 5)::timestamp AT TIME ZONE 'UTC'
       FROM invoices WHERE id % 10 IN (1, 7) AND due_date + 5 < :today""",
    """INSERT INTO reminder_message_invoices (message_id, invoice_id, step, offset_days)
       SELECT m.id, m.cycle_invoice, m.step, 5 FROM (
         SELECT id, substr(cycle, 2)::bigint AS cycle_invoice, step FROM reminder_messages) AS m""",
]

# The same aggregates, written by hand as one query each.
RAW = {
    "aging": """
        SELECT currency, CASE WHEN due_date >= :today THEN 0 WHEN due_date >= :today - 30 THEN 1
                              WHEN due_date >= :today - 60 THEN 2
                              WHEN due_date >= :today - 90 THEN 3
                              ELSE 4 END AS bucket,
               sum(amount_minor - paid_minor), count(*)
        FROM invoices WHERE company_id = :company AND status = 'open' AND issue_date <= :today
          AND amount_minor > paid_minor
        GROUP BY 1, 2""",
    "dso": """
        SELECT 'sales', currency, issue_date - DATE '1970-01-01', sum(amount_minor)
        FROM invoices WHERE company_id = :company AND status <> 'cancelled'
          AND issue_date > :today - 763 AND issue_date <= :today
        GROUP BY 2, 3
        UNION ALL
        SELECT 'paid', i.currency,
               greatest(i.issue_date, (p.received_at AT TIME ZONE 'UTC')::date) - DATE '1970-01-01',
               sum(a.amount_minor)
        FROM payment_allocations a JOIN payments p ON p.id = a.payment_id
          JOIN invoices i ON i.id = a.invoice_id
        WHERE i.company_id = :company AND i.status <> 'cancelled' AND i.issue_date <= :today
          AND p.received_at >= :today - 395 AND p.received_at < :today + 1
        GROUP BY 2, 3
        UNION ALL
        SELECT 'due', currency, 0, sum(amount_minor - paid_minor) FROM invoices
        WHERE company_id = :company AND status = 'open' AND issue_date <= :today GROUP BY 2""",
    "commitments": """
        SELECT 'due', currency, '', count(*), sum(total_minor) FROM cases
        WHERE company_id = :company AND kind = 'promise' AND status = 'active'
          AND promised_date BETWEEN :week AND :week + 6
        GROUP BY currency
        UNION ALL
        SELECT 'ended', CASE WHEN status = 'completed' THEN 'kept' ELSE 'broken' END, '',
               count(*), 0
        FROM cases WHERE company_id = :company AND kind = 'promise'
          AND promised_date > :today - 90 AND promised_date <= :today
          AND (status IN ('completed', 'broken') OR resolution = 'broken')
        GROUP BY 2
        UNION ALL
        SELECT 'plan', CASE WHEN coalesce(d.due, 0) > coalesce(pd.paid, 0) THEN 'late'
                            ELSE 'on_track' END, '', count(*), 0
        FROM cases c
        LEFT JOIN (SELECT case_id, sum(amount_minor) AS due FROM instalments
                   WHERE due_date < :today GROUP BY case_id) d ON d.case_id = c.id
        LEFT JOIN (SELECT ci.case_id, sum(a.amount_minor) AS paid FROM case_invoices ci
                   JOIN cases c2 ON c2.id = ci.case_id
                   JOIN payment_allocations a ON a.invoice_id = ci.invoice_id
                   JOIN payments p ON p.id = a.payment_id
                   WHERE c2.kind = 'plan' AND c2.status = 'active'
                     AND p.received_at >= c2.accepted_at
                   GROUP BY ci.case_id) pd ON pd.case_id = c.id
        WHERE c.company_id = :company AND c.kind = 'plan' AND c.status = 'active'
        GROUP BY 2
        UNION ALL
        SELECT 'dispute', coalesce(reason, 'other'),
               CASE WHEN created_at > :today - 7 THEN '0_7'
                    WHEN created_at > :today - 30 THEN '8_30' ELSE 'over_30' END, count(*), 0
        FROM cases WHERE company_id = :company AND kind = 'dispute' AND status = 'open'
        GROUP BY 2, 3""",
    "forecast": """
        SELECT i.currency,
               least(greatest(i.due_date + coalesce(b.avg_days_late, 0) - :week, 0) / 7, 12),
               sum(i.amount_minor - i.paid_minor)
        FROM invoices i LEFT JOIN customer_behaviour b ON b.customer_id = i.customer_id
        WHERE i.company_id = :company AND i.status = 'open' AND i.amount_minor > i.paid_minor
          AND i.id NOT IN (SELECT ci.invoice_id FROM case_invoices ci
                           JOIN cases c ON c.id = ci.case_id
                           WHERE c.kind IN ('plan', 'promise') AND c.status = 'active')
        GROUP BY 1, 2
        UNION ALL
        SELECT c.currency, least(greatest(s.due_date - :week, 0) / 7, 12), sum(s.amount_minor)
        FROM instalments s JOIN cases c ON c.id = s.case_id
        WHERE c.company_id = :company AND c.kind = 'plan' AND c.status = 'active' GROUP BY 1, 2
        UNION ALL
        SELECT c.currency, least(greatest(c.promised_date - :week, 0) / 7, 12),
               sum(i.amount_minor - i.paid_minor)
        FROM cases c JOIN case_invoices ci ON ci.case_id = c.id
          JOIN invoices i ON i.id = ci.invoice_id
        WHERE c.company_id = :company AND c.kind = 'promise' AND c.status = 'active'
          AND i.status = 'open' GROUP BY 1, 2""",
    "effectiveness": """
        SELECT m.scenario, m.step, m.channel, count(*),
               count(*) FILTER (WHERE pd.day BETWEEN (m.sent_at AT TIME ZONE 'UTC')::date
                                       AND (m.sent_at AT TIME ZONE 'UTC')::date + 7)
        FROM reminder_messages m
        JOIN reminder_message_invoices mi ON mi.message_id = m.id
        LEFT JOIN (SELECT a.invoice_id, max((p.received_at AT TIME ZONE 'UTC')::date) AS day
                   FROM payment_allocations a JOIN payments p ON p.id = a.payment_id
                   JOIN invoices i ON i.id = a.invoice_id
                   WHERE i.status = 'paid' AND i.company_id = :company
                     AND a.invoice_id IN (SELECT invoice_id FROM reminder_message_invoices)
                   GROUP BY a.invoice_id) pd ON pd.invoice_id = mi.invoice_id
        WHERE m.company_id = :company AND m.status = 'sent' AND m.sent_at < :today - 7
        GROUP BY 1, 2, 3""",
}


def _median(rounds: int, run: Callable[[], Any]) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _database(pg_url: str) -> tuple[str, Callable[[], None]]:
    base = make_url(pg_url)
    name = f"relance_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=0, help="default: invoices / 5")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database", default=DEFAULT_PG)
    args = parser.parse_args()
    customers = args.customers or max(args.invoices // 5, 1)
    url, drop = _database(args.database)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            run(url, Path(workdir), args.invoices, customers, args.rounds)
    finally:
        drop()


def run(url: str, workdir: Path, invoices: int, customers: int, rounds: int) -> None:
    settings = load_settings(
        {
            "PORTAL_ENVIRONMENT": "development",
            "PORTAL_DATABASE_URL": url,
            "PORTAL_DOCUMENTS_DIR": str(workdir / "documents"),
        }
    )
    engine = make_engine(url)
    migrate.upgrade(url, engine=engine)
    factory = make_session_factory(engine)
    today = clock.today_in(settings.company.timezone)
    started = time.perf_counter()
    with factory() as session:
        company_id = sync_company(session, settings.company).id
        owner = create_user(session, "bench@relance.example", Role.CREDIT_MANAGER, PASSWORD)
        session.flush()
        values = {
            "company": company_id,
            "owner": owner.id,
            "customers": customers,
            "invoices": invoices,
            "today": today,
        }
        for statement in SEED:
            session.execute(text(statement), values)
        session.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE")
    took = time.perf_counter() - started
    print(f"seeded {invoices:,} invoices for {customers:,} customers in {took:.1f} s")
    with factory() as session:
        counts = session.execute(
            text(
                "SELECT (SELECT count(*) FROM payments), (SELECT count(*) FROM cases), "
                "(SELECT count(*) FROM reminder_message_invoices)"
            )
        ).one()
        print(f"payments {counts[0]:,}, cases {counts[1]:,}, reminded invoices {counts[2]:,}")
        started = time.perf_counter()
        changed = behaviour.recompute(session, company_id, today)
        session.commit()
        took = time.perf_counter() - started
        print(f"nightly behaviour pass: {took:.1f} s, {changed:,} segments changed")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE")

    with factory() as session:
        started = time.perf_counter()
        snapshot.refresh(session, company_id, today)
        session.commit()
        took = time.perf_counter() - started
        print(f"dashboard computed ahead (snapshot.refresh, the worker's step): {took:.1f} s")

    filters = Filters(company_id, today)
    week = first_week(today)
    raw_values = {"company": company_id, "today": today, "week": week}
    print(f"{'panel':<14} {'served s':>9} {'live s':>9} {'raw SQL s':>10}")
    ratios = {}
    with factory() as session:
        for name, panel in dashboard.PANELS.items():
            served_times, live_times, raw_times = [], [], []
            for _ in range(rounds):  # alternate, so all three see the same machine
                served_times.append(_median(1, lambda n=name: snapshot.panel(session, filters, n)))
                live_times.append(_median(1, lambda p=panel: p(session, filters)))
                raw_times.append(
                    _median(1, lambda q=RAW[name]: session.execute(text(q), raw_values).all())
                )
            ratios[name] = (
                statistics.median(served_times),
                statistics.median(live_times),
                statistics.median(raw_times),
            )
            print(
                f"{name:<14} {ratios[name][0]:>9.3f} {ratios[name][1]:>9.3f} "
                f"{ratios[name][2]:>10.3f}"
            )
    with factory() as session:  # the worker's next round, should the above have been slow
        snapshot.refresh_if_due(session, company_id, today)
        session.commit()

    app = create_app(settings, session_factory=factory)
    with TestClient(
        app, base_url=settings.base_url, headers={"Sec-Fetch-Site": "same-origin"}
    ) as client:
        client.app.state.login_failure_delay = 0  # type: ignore[attr-defined]
        response = client.post(
            "/admin/login",
            data={"email": "bench@relance.example", "password": PASSWORD},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text

        def page() -> None:
            answer = client.get("/admin")
            assert answer.status_code == 200, answer.status_code

        page()  # warm the templates
        page_seconds = _median(rounds, page)
    print(f"dashboard page (GET /admin, everything): {page_seconds:.3f} s (budget 1.000 s)")
    for name, (served_s, live_s, raw_s) in ratios.items():
        figures = f"served {served_s:.3f} s / raw SQL {raw_s:.3f} s; limit 2.00"
        print(f"ratio {name}: {served_s / raw_s:.2f} ({figures}; live / raw {live_s / raw_s:.2f})")
    print(f"ratio page/budget: {page_seconds / 1.0:.2f} (limit 1.00)")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average (1, 5, 15 min) at the end: {load}")
    engine.dispose()


if __name__ == "__main__":
    main()
