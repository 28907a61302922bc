"""Stripe webhooks under load: events per second, exactly once, memory across the run.

Run from the project root::

    .venv/bin/python bench/webhooks.py [--events 3000] [--replays 0.2] [--senders 4]
                                       [--backends sqlite,postgresql]

For each backend it creates a fresh database, migrates it, seeds one customer, one open
invoice and one card payment request (with its PaymentIntent id) per event, serves the
app with uvicorn (``--workers``, default 2: one per core, as deployed), receipts sent by
``portal worker`` to a local SMTP sink, and has ``--senders``
threads deliver signed ``payment_intent.succeeded`` events, each for its own invoice,
plus a share of replays of events already sent (so some arrive concurrently with their
original). It prints events per second, then checks exactly once: payments recorded,
webhook events stored and receipts received all equal the distinct events, and every
invoice is paid once. The app's resident memory is sampled through the run.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import hmac
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiosmtpd.controller import Controller
from portal_page import (
    BENCH_DIR,
    PROJECT_ROOT,
    Server,
    SetupError,
    free_port,
    fresh_database,
    postgres_base_url,
    postgres_reachable,
    rss_mb,
    serve,
    server_env,
)
from sqlalchemy import func, insert, select, text

from portal import clock, migrate
from portal.company.service import sync_company
from portal.customers.models import Contact, Customer
from portal.db import make_engine, make_session_factory, transaction
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import (
    Payment,
    PaymentMethod,
    PaymentRequest,
    PaymentRequestStatus,
    WebhookEvent,
)
from portal.settings import load_settings

WEBHOOK_SECRET = "whsec_bench_0123456789abcdef"  # noqa: S105 - a bench-only secret
SECRET_KEY = "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105
GOAL_EVENTS_PER_SECOND = 300.0
GOAL_FLOOR_RATIO = 0.5  # app events/s over bench/webhook_floor.py's, same run
GOAL_RSS_GROWTH = 0.10  # "flat": under 10 % growth from the first sample to the last
AMOUNT_MINOR = 12_345
RECEIPT_DEADLINE_SECONDS = 60.0


class SmtpSink:
    """Counts messages; keeps nothing else."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
        return "250 OK"


@dataclass
class Floor:
    """bench/webhook_floor.py under the same load."""

    delivered: int
    seconds: float
    statuses: dict[int, int]
    stored_events: int
    settled: int
    distinct: int

    @property
    def events_per_second(self) -> float:
        return self.delivered / self.seconds

    @property
    def exactly_once(self) -> bool:
        return (
            self.stored_events == self.distinct
            and self.settled == self.distinct
            and set(self.statuses) == {200}
        )


@dataclass
class Result:
    backend: str
    distinct: int
    delivered: int
    seconds: float
    statuses: dict[int, int]
    payments: int
    stored_events: int
    paid_invoices: int
    over_allocated: int
    receipts: int
    rss_samples: list[float] = field(default_factory=list)
    app_cpu_seconds: float = 0.0
    floor: Floor | None = None

    @property
    def ratio(self) -> float | None:
        """Events per second of the app over the floor's, measured in the same run."""
        return self.events_per_second / self.floor.events_per_second if self.floor else None

    @property
    def cpu_ms_per_event(self) -> float:
        return 1000 * self.app_cpu_seconds / self.delivered

    @property
    def events_per_second(self) -> float:
        return self.delivered / self.seconds

    @property
    def exactly_once(self) -> bool:
        return (
            self.payments == self.distinct
            and self.stored_events == self.distinct
            and self.paid_invoices == self.distinct
            and self.over_allocated == 0
            and self.receipts == self.distinct
            and set(self.statuses) == {200}
        )

    @property
    def rss_growth(self) -> float:
        return (self.rss_samples[-1] - self.rss_samples[0]) / self.rss_samples[0]


def seed(url: str, company_settings: Any, count: int) -> list[tuple[str, int]]:
    """One customer, invoice and card request per event; returns (intent id, request id)."""
    engine = make_engine(url)
    try:
        migrate.upgrade(url, engine=engine)
        now = clock.now()
        today = now.date()
        with transaction(make_session_factory(engine)) as db:
            company_id = sync_company(db, company_settings).id
            db.flush()
            first_customer = (db.scalar(select(func.max(Customer.id))) or 0) + 1
            db.execute(
                insert(Customer),
                [
                    {
                        "id": first_customer + n,
                        "company_id": company_id,
                        "reference": f"W-{n:07d}",
                        "name": f"Webhook customer {n}",
                        "language": "fr" if n % 2 else "en",
                        "timezone": "Europe/Paris",
                        "risk_segment": "medium",
                        "strategic": False,
                        "link_version": 1,
                        "created_at": now,
                    }
                    for n in range(count)
                ],
            )
            db.execute(
                insert(Contact),
                [
                    {
                        "customer_id": first_customer + n,
                        "name": f"Contact {n}",
                        "email": f"w{n}@debtor.example",
                        "is_primary": True,
                        "receives_reminders": True,
                    }
                    for n in range(count)
                ],
            )
            first_invoice = (db.scalar(select(func.max(Invoice.id))) or 0) + 1
            db.execute(
                insert(Invoice),
                [
                    {
                        "id": first_invoice + n,
                        "company_id": company_id,
                        "customer_id": first_customer + n,
                        "number": f"W-{n:07d}",
                        "issue_date": today - dt.timedelta(days=40),
                        "due_date": today - dt.timedelta(days=10),
                        "currency": "EUR",
                        "amount_minor": AMOUNT_MINOR,
                        "paid_minor": 0,
                        "status": InvoiceStatus.OPEN,
                        "created_at": now,
                    }
                    for n in range(count)
                ],
            )
            first_request = (db.scalar(select(func.max(PaymentRequest.id))) or 0) + 1
            db.execute(
                insert(PaymentRequest),
                [
                    {
                        "id": first_request + n,
                        "customer_id": first_customer + n,
                        "currency": "EUR",
                        "amount_minor": AMOUNT_MINOR,
                        "method": PaymentMethod.CARD,
                        "status": PaymentRequestStatus.OPEN,
                        "invoice_ids": [first_invoice + n],
                        "created_at": now,
                        "provider_reference": f"pi_bench_{n:07d}",
                        "client_secret": f"pi_bench_{n:07d}_secret",
                        "attempt": 1,
                    }
                    for n in range(count)
                ],
            )
        # Fresh tables have no statistics until autovacuum's next pass (a minute away): give
        # the planner what a live database has.
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
        return [(f"pi_bench_{n:07d}", first_request + n) for n in range(count)]
    finally:
        engine.dispose()


def event_body(intent_id: str, request_id: int, n: int) -> bytes:
    return json.dumps(
        {
            "id": f"evt_bench_{n:07d}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "livemode": False,
            "data": {
                "object": {
                    "id": intent_id,
                    "object": "payment_intent",
                    "amount": AMOUNT_MINOR,
                    "amount_received": AMOUNT_MINOR,
                    "currency": "eur",
                    "status": "succeeded",
                    "metadata": {"payment_request": str(request_id)},
                }
            },
        }
    ).encode()


def signature(body: bytes) -> str:
    stamp = int(time.time())
    digest = hmac.new(
        WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return f"t={stamp},v1={digest}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its children (Linux /proc): the
    uvicorn worker processes when there are several."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.is_file():
        pids += [int(p) for p in children.read_text().split()]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for each in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def deliver(port: int, bodies: list[bytes], statuses: dict[int, int], lock: threading.Lock) -> None:
    """One sender: a keep-alive connection posting its share of the events in order."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    mine: dict[int, int] = {}
    try:
        for body in bodies:
            connection.request(
                "POST",
                "/webhooks/stripe",
                body=body,
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Stripe-Signature": signature(body),
                },
            )
            response = connection.getresponse()
            response.read()
            mine[response.status] = mine.get(response.status, 0) + 1
    finally:
        connection.close()
    with lock:
        for status, count in mine.items():
            statuses[status] = statuses.get(status, 0) + count


@contextlib.contextmanager
def receipts_worker(env: dict[str, str], workdir: Path) -> Any:
    """``portal worker --no-plan`` in its own process (it sends the owed receipts), polling
    often, until the block ends."""
    log = (workdir / "worker.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "worker", "--no-plan"],
        env={**env, "PORTAL_REMINDER_POLL_SECONDS": "0.2"},
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a loaded machine: do not let it outlive the run
            process.kill()
            process.wait(timeout=10)
        log.close()


def stream_order(first: int, total: int, replays: float) -> list[int]:
    """Event numbers first..total-1 in order, plus replays of a share of them, each a few
    places after its original, so many race with it from another sender."""
    rng = random.Random(7)
    measured = list(range(first, total))
    again = [rng.choice(measured) for _ in range(int(len(measured) * replays))]
    order = list(measured)
    for replay in again:
        order.insert(min(len(order), order.index(replay) + rng.randint(0, 8)), replay)
    return order


def load(
    server: Server, warmup: list[bytes], stream: list[bytes], senders: int
) -> tuple[float, dict[int, int], float, list[float]]:
    """Warm up, then deliver ``stream`` over ``senders`` connections; returns the seconds it
    took, the answers by status, the server's CPU seconds and its memory samples (MB)."""
    port = server.port
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deliver(port, warmup, statuses, lock)
    statuses.clear()
    shares = [stream[i::senders] for i in range(senders)]
    samples = [rss_mb(server.process.pid)]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            samples.append(rss_mb(server.process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    threads = [
        threading.Thread(target=deliver, args=(port, share, statuses, lock)) for share in shares
    ]
    sampler.start()
    cpu_before = cpu_seconds(server.process.pid)
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    cpu = cpu_seconds(server.process.pid) - cpu_before
    stop.set()
    sampler.join()
    samples.append(rss_mb(server.process.pid))
    return seconds, statuses, cpu, samples


def run_floor(
    backend: str,
    env: dict[str, str],
    args: argparse.Namespace,
    workdir: Path,
    total: int,
    stream_numbers: tuple[list[int], list[int]],
) -> Floor:
    """The same events, senders and workers against bench/webhook_floor.py, on a database
    seeded the same way."""
    with fresh_database(backend, workdir) as url:
        floor_env = {**env, "PORTAL_DATABASE_URL": url}
        pairs = seed(url, load_settings(floor_env).company, total)
        bodies = [event_body(pi, rid, n) for n, (pi, rid) in enumerate(pairs)]
        warmup_numbers, stream_order = stream_numbers
        warmup = [bodies[n] for n in warmup_numbers]
        stream = [bodies[n] for n in stream_order]
        port = free_port()
        floor_env["PORTAL_BASE_URL"] = f"http://127.0.0.1:{port}"
        extra = ["--workers", str(args.workers)] if args.workers != 1 else []
        target = ["--app-dir", str(BENCH_DIR), "webhook_floor:asgi"]
        with serve("floor", target, port, server_env(floor_env), workdir, extra) as server:
            seconds, statuses, _cpu, _samples = load(server, warmup, stream, args.senders)
        engine = make_engine(url)
        try:
            with engine.connect() as connection:
                stored = connection.scalar(select(func.count()).select_from(WebhookEvent))
                settled = connection.scalar(
                    select(func.count())
                    .select_from(PaymentRequest)
                    .where(PaymentRequest.status == PaymentRequestStatus.CONFIRMED)
                )
        finally:
            engine.dispose()
    distinct = len(set(stream_order))
    result = Floor(
        len(stream),
        seconds,
        statuses,
        stored_events=int(stored or 0) - len(warmup),
        settled=int(settled or 0) - len(warmup),
        distinct=distinct,
    )
    print(
        f"  floor: {result.events_per_second:.0f} events/s ({result.delivered} in "
        f"{seconds:.2f} s), stored {result.stored_events}, settled {result.settled}, "
        f"exactly once: {'yes' if result.exactly_once else 'NO'}",
        flush=True,
    )
    return result


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> Result:
    print(f"\n== {backend} ==", flush=True)
    sink = SmtpSink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        with fresh_database(backend, workdir) as url:
            port = free_port()
            env = {
                "PORTAL_ENVIRONMENT": "development",
                "PORTAL_DATABASE_URL": url,
                "PORTAL_SECRET_KEYS": SECRET_KEY,
                "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
                "PORTAL_STRIPE_SECRET_KEY": "sk_test_bench",
                "PORTAL_STRIPE_PUBLISHABLE_KEY": "pk_test_bench",
                "PORTAL_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                # Never called while applying webhooks; a closed port proves it.
                "PORTAL_STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}",
                "PORTAL_SMTP_HOST": "127.0.0.1",
                "PORTAL_SMTP_PORT": str(smtp_port),
                "PORTAL_SMTP_SECURITY": "none",
                "PORTAL_LOG_LEVEL": "warning",
            }
            settings = load_settings(env)
            total = args.events + args.warmup
            started = time.perf_counter()
            pairs = seed(url, settings.company, total)
            print(
                f"  seeded {total} customers, invoices and card requests "
                f"in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            bodies = [event_body(pi, rid, n) for n, (pi, rid) in enumerate(pairs)]
            warmup_numbers = list(range(args.warmup))
            order = stream_order(args.warmup, total, args.replays)
            warmup = [bodies[n] for n in warmup_numbers]
            measured = bodies[args.warmup :]
            stream = [bodies[n] for n in order]
            extra = ["--workers", str(args.workers)] if args.workers != 1 else []
            with serve(
                "app", ["portal.web.app:asgi"], port, server_env(env), workdir, extra
            ) as server:
                seconds, statuses, app_cpu, samples = load(server, warmup, stream, args.senders)
            # Receipts are the worker's job, in its own process, after the load.
            with receipts_worker(server_env(env), workdir):
                deadline = time.monotonic() + RECEIPT_DEADLINE_SECONDS
                while sink.count < total and time.monotonic() < deadline:
                    time.sleep(0.1)
            engine = make_engine(url)
            try:
                with engine.connect() as connection:
                    payments = connection.scalar(select(func.count()).select_from(Payment))
                    stored = connection.scalar(select(func.count()).select_from(WebhookEvent))
                    paid = connection.scalar(
                        select(func.count())
                        .select_from(Invoice)
                        .where(Invoice.status == InvoiceStatus.PAID)
                    )
                    over = connection.scalar(
                        select(func.count())
                        .select_from(Invoice)
                        .where(Invoice.paid_minor > Invoice.amount_minor)
                    )
            finally:
                engine.dispose()
            floor = (
                run_floor(backend, env, args, workdir, total, (warmup_numbers, order))
                if args.floor
                else None
            )
            return Result(
                backend,
                distinct=len(measured),
                delivered=len(stream),
                seconds=seconds,
                statuses=statuses,
                payments=int(payments or 0) - len(warmup),
                stored_events=int(stored or 0) - len(warmup),
                paid_invoices=int(paid or 0) - len(warmup),
                over_allocated=int(over or 0),
                receipts=sink.count - len(warmup),
                rss_samples=samples,
                app_cpu_seconds=app_cpu,
                floor=floor,
            )
    finally:
        controller.stop()


def print_report(results: list[Result], skipped: list[str], args: argparse.Namespace) -> bool:
    print("\n== results ==")
    print(
        f"{args.events} distinct payment_intent.succeeded events + {args.replays:.0%} replays, "
        f"{args.senders} concurrent senders, {args.workers} uvicorn worker(s), "
        "receipts by SMTP from the worker\n"
    )
    header = (
        f"{'backend':<11} {'delivered':>9} {'seconds':>8} {'events/s':>9} {'payments':>9} "
        f"{'stored':>7} {'receipts':>8} {'app CPU ms/event':>17} {'RSS MB first→last (max)':>26} "
        f"{'exactly once':>13}"
    )
    print(header)
    ok = True
    for r in results:
        rss = f"{r.rss_samples[0]:.0f}→{r.rss_samples[-1]:.0f} ({max(r.rss_samples):.0f})"
        print(
            f"{r.backend:<11} {r.delivered:>9} {r.seconds:>8.2f} {r.events_per_second:>9.0f} "
            f"{r.payments:>9} {r.stored_events:>7} {r.receipts:>8} {r.cpu_ms_per_event:>17.2f} "
            f"{rss:>26} "
            f"{'yes' if r.exactly_once else 'NO':>13}"
        )
        if not r.exactly_once:
            ok = False
            print(
                f"  statuses: {r.statuses}, paid invoices {r.paid_invoices}, "
                f"over-allocated {r.over_allocated}"
            )
    print()
    for r in results:
        growth = r.rss_growth
        flat = growth <= GOAL_RSS_GROWTH
        line = (
            f"{r.backend}: memory {'flat' if flat else 'GROWING'} ({growth:+.1%} over the run, "
            f"goal at most {GOAL_RSS_GROWTH:+.0%})"
        )
        if r.backend == "postgresql":
            speed = r.events_per_second >= GOAL_EVENTS_PER_SECOND
            line += (
                f"; {r.events_per_second:.0f} events/s, goal {GOAL_EVENTS_PER_SECOND:.0f}: "
                f"{'PASS' if speed else 'FAIL'}"
            )
            ok = ok and speed
        ok = ok and flat
        print(line)
        if r.floor is not None and r.ratio is not None:
            good = r.ratio >= GOAL_FLOOR_RATIO and r.exactly_once and r.floor.exactly_once
            print(
                f"{r.backend}: ratio app/floor {r.ratio:.2f} ({r.events_per_second:.0f} vs "
                f"{r.floor.events_per_second:.0f} events/s, same run), goal at least "
                f"{GOAL_FLOOR_RATIO}, exactly once: {'PASS' if good else 'FAIL'}"
            )
            ok = ok and good
    for note in skipped:
        print(note)
    return ok


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000, help="distinct events measured")
    parser.add_argument("--warmup", type=int, default=200, help="events sent before measuring")
    parser.add_argument("--replays", type=float, default=0.2, help="share of replayed events")
    parser.add_argument("--senders", type=int, default=4, help="concurrent senders")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="uvicorn worker processes (2: one per core, as the Docker image runs)",
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the floor (bench/webhook_floor.py under the same load)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    skipped: list[str] = []
    if "postgresql" in backends:
        base, configured = postgres_base_url()
        reason = postgres_reachable(base)
        if reason is not None:
            if configured:
                print(f"PostgreSQL unreachable at {base}: {reason}", file=sys.stderr)
                return 2
            backends.remove("postgresql")
            skipped.append(f"postgresql: skipped, no server at {base} ({reason})")
    results = []
    with tempfile.TemporaryDirectory(prefix="relance-bench-") as tmp:
        try:
            for backend in backends:
                results.append(run_backend(backend, args, Path(tmp)))
        except SetupError as error:
            print(f"setup failed: {error}", file=sys.stderr)
            return 2
    return 0 if print_report(results, skipped, args) else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
