"""The API and outgoing webhooks against their bare floors, side by side in one run.

1. Listing one customer's 100 invoices (``GET /api/v1/invoices?customer_id=…&limit=100``,
   key check, validation, pagination, pydantic serialisation) against bench/api_floor.py, a
   bare Starlette endpoint returning the same rows from the same database. Both served by
   uvicorn (one worker) and loaded by wrk in turn. Goal: ratio >= 0.5.
2. Delivering 10,000 webhooks to a local receiver (bench/api_receiver.py under uvicorn):
   the worker's loop (fan out, claim, sign with standardwebhooks, post over kept-alive
   connections, record every attempt) against a bare httpx loop posting the same bodies to
   the same receiver. Goal: ratio >= 0.5.

    .venv/bin/python bench/api.py                       # both backends
    .venv/bin/python bench/api.py --backends sqlite --duration 5 --webhooks 2000
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(PROJECT_ROOT))

import httpx2 as httpx  # noqa: E402
from portal_page import (  # noqa: E402
    SetupError,
    choose_backends,
    free_port,
    fresh_database,
    parse_wrk,
    serve,
    server_env,
)
from sqlalchemy import func, insert, select  # noqa: E402

from portal import clock, migrate  # noqa: E402
from portal.api import keys  # noqa: E402
from portal.company.service import sync_company  # noqa: E402
from portal.customers.models import Customer  # noqa: E402
from portal.db import make_engine, make_session_factory, transaction  # noqa: E402
from portal.invoices.models import Invoice, InvoiceStatus  # noqa: E402
from portal.settings import ApiSettings, load_settings  # noqa: E402
from portal.users.models import Role, User  # noqa: E402
from portal.users.service import create_user  # noqa: E402
from portal.webhooks import delivery, endpoints, events  # noqa: E402
from portal.webhooks.models import DeliveryStatus, OutgoingEvent, WebhookDelivery  # noqa: E402
from portal.webhooks.transport import Connections  # noqa: E402

SECRET = "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105 - a benchmark database, thrown away
GOAL = 0.5
LOOPBACK = ("127.0.0.0/8",)


def settings_env(url: str) -> dict[str, str]:
    return {
        "PORTAL_ENVIRONMENT": "development",
        "PORTAL_DATABASE_URL": url,
        "PORTAL_SECRET_KEYS": SECRET,
        "PORTAL_BASE_URL": "http://127.0.0.1",
        "PORTAL_API_RATE_PER_MINUTE": str(10**9),  # measure the work, not the limit
        "PORTAL_LOG_LEVEL": "warning",
    }


def seed(url: str, others: int) -> tuple[int, str]:
    """The measured customer with 100 invoices, ``others`` customers with 5 each, a key."""
    settings = load_settings(settings_env(url))
    engine = make_engine(url)
    migrate.upgrade(url, engine=engine)
    factory = make_session_factory(engine)
    now = clock.now()
    today = now.date()
    with transaction(factory) as db:
        company = sync_company(db, settings.company)
        admin = create_user(db, "bench@relance.example", Role.ADMIN, "x" * 20)
        secret = keys.create_key(db, company.id, name="bench", scope="write", user_id=admin.id)
        customers = [
            {
                "company_id": company.id,
                "reference": f"B-{n:05d}",
                "name": f"Customer {n}",
                "created_at": now,
            }
            for n in range(others + 1)
        ]
        db.execute(insert(Customer), customers)
        ids = list(db.scalars(select(Customer.id).order_by(Customer.id)))
        measured = ids[0]
        rows = []
        for customer_id in ids:
            count = 100 if customer_id == measured else 5
            for k in range(count):
                rows.append(
                    {
                        "company_id": company.id,
                        "customer_id": customer_id,
                        "number": f"F-{customer_id}-{k:03d}",
                        "issue_date": today,
                        "due_date": today,
                        "currency": "EUR",
                        "amount_minor": 10_000 + k,
                        "paid_minor": 0,
                        "status": InvoiceStatus.OPEN,
                        "created_at": now,
                    }
                )
        db.execute(insert(Invoice), rows)
        token = secret.secret
    engine.dispose()
    return measured, token


def run_wrk(port: int, path: str, headers: list[str], duration: float, args: Any) -> Any:
    command = [
        args.wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration:g}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    for header in headers:
        command += ["-H", header]
    command.append(f"http://127.0.0.1:{port}{path}")
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    if done.returncode != 0:
        raise SetupError(f"wrk failed: {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def count_rows(port: int, path: str, headers: dict[str, str]) -> int:
    answer = httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=10)
    if answer.status_code != 200:
        raise SetupError(f"{path} answered {answer.status_code}: {answer.text[:300]}")
    return len(answer.json()["data"])


def listing(backend: str, url: str, args: Any, workdir: Path) -> float:
    started = time.monotonic()
    customer_id, token = seed(url, args.customers)
    print(f"  seeded in {time.monotonic() - started:.1f} s", flush=True)
    env = server_env(settings_env(url))
    api_path = f"/api/v1/invoices?customer_id={customer_id}&limit=100"
    floor_path = f"/invoices?customer_id={customer_id}"
    auth = f"Bearer {token}"
    results = {}
    with serve("app", ["portal.web.app:asgi"], free_port(), env, workdir, []) as app:
        assert count_rows(app.port, api_path, {"Authorization": auth}) == 100
        run_wrk(app.port, api_path, [f"Authorization: {auth}"], args.warmup, args)
        results["app"] = run_wrk(
            app.port, api_path, [f"Authorization: {auth}"], args.duration, args
        )
    with serve(
        "floor", ["--app-dir", str(BENCH_DIR), "api_floor:asgi"], free_port(), env, workdir, []
    ) as floor:
        assert count_rows(floor.port, floor_path, {}) == 100
        run_wrk(floor.port, floor_path, [], args.warmup, args)
        results["floor"] = run_wrk(floor.port, floor_path, [], args.duration, args)
    for name, result in results.items():
        print(
            f"  {name:<5} {result.requests_per_second:9.1f} req/s  p50 {result.p50_ms:6.2f} ms"
            f"  p99 {result.p99_ms:6.2f} ms  ({result.requests} requests)",
            flush=True,
        )
    ratio = results["app"].requests_per_second / results["floor"].requests_per_second
    print(
        f"  {backend}: list 100 invoices ratio (API / bare floor req/s): {ratio:.2f}"
        f"  (goal >= {GOAL})",
        flush=True,
    )
    return ratio


def outbox(url: str, receiver_url: str, count: int) -> None:
    """An endpoint on the receiver and ``count`` events waiting in the outbox."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with transaction(factory) as db:
        company_id = db.scalar(select(Customer.company_id).limit(1))
        customer_id = db.scalar(select(func.min(Customer.id)))
        user_id = db.scalar(select(User.id).limit(1))  # the bench's admin
        endpoints.create_endpoint(
            db,
            company_id,
            url=receiver_url,
            events=["payment.succeeded"],
            description="bench",
            user_id=user_id,
            allowed=LOOPBACK,
        )
        assert company_id is not None
        assert customer_id is not None
        assert user_id is not None
        for start in range(0, count, 2000):
            rows = [
                events.event_row(
                    company_id,
                    "payment.succeeded",
                    customer_id=customer_id,
                    subject_type="payment",
                    subject_id=n,
                    data={
                        "amount_minor": 10_000 + n,
                        "currency": "EUR",
                        "method": "transfer",
                        "reference": f"VIR-{n}",
                    },
                )
                for n in range(start, min(start + 2000, count))
            ]
            events.store(db, rows)
    engine.dispose()


def webhooks(backend: str, url: str, args: Any, workdir: Path) -> float:
    env = server_env(settings_env(url))
    with serve(
        "receiver",
        ["--app-dir", str(BENCH_DIR), "api_receiver:asgi"],
        free_port(),
        env,
        workdir,
        [],
    ) as receiver:
        target = f"http://127.0.0.1:{receiver.port}/hooks"
        outbox(url, target, args.webhooks)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        api = ApiSettings(webhook_allowed_networks=LOOPBACK)
        connections = Connections(10)
        started = time.monotonic()
        attempted = 0
        while done := delivery.deliver_due(factory, api, connections, limit=500):
            attempted += done
        relance = time.monotonic() - started
        connections.close()
        with factory() as db:
            succeeded = db.scalar(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.status == DeliveryStatus.SUCCEEDED)
            )
            bodies = [b.encode() for b in db.scalars(select(OutgoingEvent.body))]
        engine.dispose()
        if succeeded != args.webhooks:
            raise SetupError(f"{succeeded} of {args.webhooks} webhooks delivered")
        started = time.monotonic()
        with httpx.Client() as client:
            for body in bodies:
                answer = client.post(
                    target, content=body, headers={"Content-Type": "application/json"}
                )
                if answer.status_code != 204:
                    raise SetupError(f"the receiver answered {answer.status_code}")
        floor = time.monotonic() - started
    print(
        f"  relance {args.webhooks / relance:9.1f} webhooks/s ({relance:.2f} s, "
        f"{attempted} attempts, each signed and recorded)",
        flush=True,
    )
    print(
        f"  floor   {len(bodies) / floor:9.1f} webhooks/s ({floor:.2f} s, bare httpx loop)",
        flush=True,
    )
    ratio = floor / relance
    print(
        f"  {backend}: webhook delivery ratio (Relance / bare httpx throughput): {ratio:.2f}"
        f"  (goal >= {GOAL})",
        flush=True,
    )
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--customers", type=int, default=1000, help="other customers")
    parser.add_argument("--webhooks", type=int, default=10_000)
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    args = parser.parse_args(argv)
    backends, _skipped = choose_backends(args.backends)  # says what it skips
    summary: list[tuple[str, str, float]] = []
    with tempfile.TemporaryDirectory(prefix="relance-bench-api-") as tmp:
        workdir = Path(tmp)
        for backend in backends:
            print(f"\n== {backend}: listing ==", flush=True)
            with fresh_database(backend, workdir) as url:
                summary.append((backend, "list 100 invoices", listing(backend, url, args, workdir)))
                print(f"\n== {backend}: webhooks ==", flush=True)
                summary.append(
                    (
                        backend,
                        f"deliver {args.webhooks} webhooks",
                        webhooks(backend, url, args, workdir),
                    )
                )
    print("\nSummary")
    ok = True
    for backend, what, ratio in summary:
        met = ratio >= GOAL
        ok = ok and met
        print(
            f"  {backend:<10} {what:<24} ratio {ratio:.2f}  goal >= {GOAL}: "
            f"{'met' if met else 'NOT met'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
