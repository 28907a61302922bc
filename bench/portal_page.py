"""Load-test the debtor's portal home page against a bare Starlette baseline.

Run from the project root::

    .venv/bin/python bench/portal_page.py [--duration 10] [--connections 32] [--threads 2]
                                          [--backends sqlite,postgresql]

For each backend it creates a fresh database, migrates it, seeds one customer with
25 open invoices among a few thousand others, mints a portal link, serves the app
with uvicorn (one worker), opens the link for a session cookie, checks that ``/``
really shows the 25 invoices, and loads it with wrk. It then serves bench/bare_app.py
(the same template rendered from memory) the same way and loads it identically.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import http.client
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(PROJECT_ROOT))

import bare_app  # noqa: E402
from lock_stall import StallError, StallResult, run_stall  # noqa: E402
from sqlalchemy import create_engine, insert, make_url, select, text  # noqa: E402

from portal import clock, migrate  # noqa: E402
from portal.company.service import sync_company  # noqa: E402
from portal.customers.models import Contact, Customer, RiskSegment  # noqa: E402
from portal.db import make_engine, make_session_factory, transaction  # noqa: E402
from portal.invoices.models import Invoice, InvoiceStatus  # noqa: E402
from portal.links.service import issue_link  # noqa: E402
from portal.links.tokens import LinkSigner  # noqa: E402
from portal.payments.models import PaymentMethod  # noqa: E402
from portal.payments.service import record_payment  # noqa: E402
from portal.settings import Settings, load_settings  # noqa: E402

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SESSION_COOKIE = "relance_session"  # the name outside production (no __Host- prefix)
STARTUP_DEADLINE_SECONDS = 30.0
DEFAULT_APP_FACTORY = "portal.web.app:asgi"

GOAL_RATIO = 0.5
GOAL_P99_MS = 30.0
GOAL_RSS_MB = 150.0


class SetupError(RuntimeError):
    """The benchmark could not measure what it claims to: fail loudly."""


# --------------------------------------------------------------------------- results


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    socket_errors: str | None
    output: str


@dataclass
class BackendResult:
    backend: str
    app: WrkResult
    bare: WrkResult
    app_rss_mb: float
    app_page_bytes: int
    bare_page_bytes: int
    seed_seconds: float
    paced: WrkResult
    stall: StallResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.app.requests_per_second / self.bare.requests_per_second

    def goals(self) -> list[tuple[str, bool]]:
        return [
            (f"ratio app/bare >= {GOAL_RATIO}", self.ratio >= GOAL_RATIO),
            (f"app p99 < {GOAL_P99_MS:g} ms at a steady rate", self.paced.p99_ms < GOAL_P99_MS),
            (f"app RSS < {GOAL_RSS_MB:g} MB", self.app_rss_mb < GOAL_RSS_MB),
            *(self.stall.goals() if self.stall else []),
        ]


# --------------------------------------------------------------------------- databases


def postgres_base_url() -> tuple[str, bool]:
    """The server to create benchmark databases on, and whether it was configured."""
    configured = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
    url = make_url(configured or DEFAULT_POSTGRES_URL)
    if url.drivername == "postgresql":  # psycopg 3 is the driver installed, not psycopg2
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False), bool(configured)


def postgres_reachable(url: str) -> str | None:
    """None when a connection works, else the reason."""
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return None
    except Exception as error:  # any failure means unreachable
        return str(error).splitlines()[0]
    finally:
        engine.dispose()


@contextlib.contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """A new empty database; dropped (or its file removed) on exit."""
    if backend == "sqlite":
        path = directory / f"relance-bench-{uuid.uuid4().hex[:8]}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    base, _configured = postgres_base_url()
    name = f"relance_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(base).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            print(f"  dropped database {name}", flush=True)
    finally:
        admin.dispose()


# --------------------------------------------------------------------------- seeding


def _bulk_other_customers(db: Any, company_id: int, customers: int, per_customer: int) -> None:
    """Background rows so the tables and indexes are not trivially small."""
    now = clock.now()
    today = now.date()
    rows = [
        {
            "company_id": company_id,
            "reference": f"C-{n:06d}",
            "name": f"Client {n} SAS",
            "language": "en" if n % 3 == 0 else "fr",
            "timezone": "Europe/Paris",
            "risk_segment": (RiskSegment.LOW, RiskSegment.MEDIUM, RiskSegment.HIGH)[n % 3],
            "strategic": n % 17 == 0,
            "link_version": 1,
            "created_at": now,
        }
        for n in range(customers)
    ]
    ids = list(
        db.scalars(insert(Customer).returning(Customer.id, sort_by_parameter_order=True), rows)
    )
    db.execute(
        insert(Contact),
        [
            {
                "customer_id": cid,
                "name": f"Contact {n}",
                "email": f"ap{n}@client{n}.example",
                "phone": None,
                "is_primary": True,
                "receives_reminders": True,
            }
            for n, cid in enumerate(ids)
        ],
    )
    invoices = []
    for n, cid in enumerate(ids):
        for k in range(per_customer):
            due = today + dt.timedelta(days=(n * 7 + k * 23) % 150 - 100)
            amount = 1_000 + (n * 131 + k * 977) % 500_000
            paid = amount if k % 5 in (0, 1) else (amount // 3 if k % 5 == 2 and n % 2 else 0)
            invoices.append(
                {
                    "company_id": company_id,
                    "customer_id": cid,
                    "number": f"F-{n:06d}-{k:02d}",
                    "issue_date": due - dt.timedelta(days=30),
                    "due_date": due,
                    "currency": "EUR",
                    "amount_minor": amount,
                    "paid_minor": paid,
                    "status": InvoiceStatus.PAID if paid == amount else InvoiceStatus.OPEN,
                    "created_at": now,
                }
            )
    for start in range(0, len(invoices), 5_000):
        db.execute(insert(Invoice), invoices[start : start + 5_000])


def seed(url: str, settings: Settings, customers: int, per_customer: int) -> tuple[str, str]:
    """Migrate and seed the database at ``url``; returns the portal links of the measured
    customer and of another one (for the lock-stall phase)."""
    engine = make_engine(url)
    try:
        migrate.upgrade(url, engine=engine)
        with transaction(make_session_factory(engine)) as db:
            company = sync_company(db, settings.company)
            _bulk_other_customers(db, company.id, customers, per_customer)
            customer = Customer(
                company_id=company.id,
                reference=bare_app.CUSTOMER_REFERENCE,
                name=bare_app.CUSTOMER_NAME,
                language=bare_app.CUSTOMER_LANGUAGE,
                timezone=bare_app.CUSTOMER_TIMEZONE,
                risk_segment=RiskSegment.MEDIUM,
                strategic=False,
                link_version=1,
                created_at=clock.now(),
            )
            customer.contacts.append(
                Contact(
                    name="Marie Banc",
                    email="compta@banc.example",
                    is_primary=True,
                    receives_reminders=True,
                )
            )
            db.add(customer)
            db.flush()
            today = clock.today_in(customer.timezone)
            part_paid: list[tuple[Invoice, int]] = []
            for planned in bare_app.invoice_plan(today):
                invoice = Invoice(
                    company_id=company.id,
                    customer_id=customer.id,
                    number=planned.number,
                    issue_date=planned.issue_date,
                    due_date=planned.due_date,
                    currency=planned.currency,
                    amount_minor=planned.amount_minor,
                    paid_minor=0,
                    status=InvoiceStatus.OPEN,
                    created_at=clock.now(),
                )
                db.add(invoice)
                if planned.paid_minor:
                    part_paid.append((invoice, planned.paid_minor))
            # Settled and cancelled invoices of the same customer, which / must leave out.
            for k in range(12):
                due = today - dt.timedelta(days=200 - 9 * k)
                db.add(
                    Invoice(
                        company_id=company.id,
                        customer_id=customer.id,
                        number=f"FB-2025-{k + 1:04d}",
                        issue_date=due - dt.timedelta(days=30),
                        due_date=due,
                        currency="EUR",
                        amount_minor=20_000 + 1_000 * k,
                        paid_minor=0 if k == 11 else 20_000 + 1_000 * k,
                        status=InvoiceStatus.CANCELLED if k == 11 else InvoiceStatus.PAID,
                        created_at=clock.now(),
                    )
                )
            db.flush()
            for invoice, amount in part_paid:
                record_payment(
                    db,
                    customer,
                    amount_minor=amount,
                    currency=invoice.currency,
                    method=PaymentMethod.TRANSFER,
                    provider="bench",
                    provider_reference=f"bench-{invoice.number}",
                    invoice_ids=[invoice.id],
                )
            signer = LinkSigner(settings.secret_keys, settings.link_max_age_seconds)
            other = db.scalars(select(Customer).where(Customer.reference == "C-000001")).one()
            return (
                issue_link(db, signer, settings.base_url, customer, purpose="bench"),
                issue_link(db, signer, settings.base_url, other, purpose="bench"),
            )
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: get SIGTERM if this benchmark dies without cleaning up (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@contextlib.contextmanager
def serve(
    name: str, target: list[str], port: int, env: dict[str, str], log_dir: Path, extra: list[str]
) -> Iterator[Server]:
    """uvicorn serving ``target`` with one worker; stopped on exit."""
    log_path = log_dir / f"{name}-{port}.log"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        *target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
        *extra,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    server = Server(name, port, process, log_path)
    try:
        wait_healthy(server)
        yield server
    finally:
        server.stop()


def wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SetupError(
                f"{server.name} exited with code {server.process.returncode} "
                f"while starting:\n{server.log_tail()}"
            )
        try:
            status, _headers, body = http_get(server.port, "/healthz", timeout=2)
            if status == 200:
                return
            last = f"HTTP {status}: {body[:200]!r}"
        except OSError as error:
            last = str(error)
        time.sleep(0.1)
    raise SetupError(
        f"{server.name} not healthy after {STARTUP_DEADLINE_SECONDS:g} s "
        f"({last}):\n{server.log_tail()}"
    )


def http_get(
    port: int, path: str, cookie: str | None = None, timeout: float = 10
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One GET, redirects not followed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else {}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` and any children (uvicorn --workers 1 runs in one process)."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.is_file():
        pids += [int(p) for p in children.read_text().split()]
    total_kb = 0
    for each in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    if not total_kb:
        raise SetupError(f"could not read VmRSS of process {pid}")
    return total_kb / 1024


# --------------------------------------------------------------------------- checks


def open_link(port: int, link: str) -> str:
    """Open the signed link like a browser's first request; returns the session cookie."""
    parts = urlsplit(link)
    status, headers, body = http_get(port, parts.path)
    if status != 303 or headers.get("location") != "/":
        raise SetupError(f"opening the link gave HTTP {status} (expected 303 to /): {body[:300]!r}")
    jar: SimpleCookie = SimpleCookie()
    for value in headers.get_all("set-cookie") or []:
        jar.load(value)
    if SESSION_COOKIE not in jar:
        raise SetupError(
            f"opening the link set no {SESSION_COOKIE} cookie: {headers.get_all('set-cookie')}"
        )
    return jar[SESSION_COOKIE].value


ROW_LINK = re.compile(rb'<a href="/invoices/\d+">([^<]+)</a>')


def check_page(
    name: str, port: int, cookie: str | None, expected: list[str], absent: list[str]
) -> int:
    """The page must be the customer's home with exactly the expected invoices; returns its size."""
    status, headers, body = http_get(port, "/", cookie)
    if status != 200:
        raise SetupError(f"{name}: GET / gave HTTP {status}: {body[:500]!r}")
    if not headers.get("content-type", "").startswith("text/html"):
        raise SetupError(f"{name}: GET / is not HTML: {headers.get('content-type')}")
    numbers = [m.decode() for m in ROW_LINK.findall(body)]
    if sorted(numbers) != sorted(expected):
        raise SetupError(
            f"{name}: GET / lists {len(numbers)} invoices, expected {len(expected)}"
            f" ({numbers[:5]}...); page starts {body[:300]!r}"
        )
    shown = [n for n in absent if n.encode() in body]
    if shown:
        raise SetupError(f"{name}: GET / shows invoices it must not: {shown}")
    if bare_app.CUSTOMER_NAME.replace("'", "&#39;").encode() not in body:
        raise SetupError(f"{name}: GET / does not greet {bare_app.CUSTOMER_NAME!r}")
    return len(body)


# --------------------------------------------------------------------------- wrk

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
TIME = re.compile(r"^([\d.]+)(us|ms|s|m|h)$")


def _ms(value: str) -> float:
    match = TIME.match(value)
    if not match:
        raise SetupError(f"unreadable wrk time {value!r}")
    return float(match.group(1)) * UNIT_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"^\s+(\d+) requests in", output, re.M)
    if not (rps and p50 and p99 and total):
        raise SetupError(f"could not read wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        raise SetupError(f"wrk got {non_2xx.group(1)} error responses:\n{output}")
    errors = re.search(r"Socket errors:\s+(.*)", output)
    return WrkResult(
        float(rps.group(1)),
        _ms(p50.group(1)),
        _ms(p99.group(1)),
        int(total.group(1)),
        errors.group(1).strip() if errors else None,
        output,
    )


PACING_SCRIPT = """
-- Each connection waits between requests, so the load is a steady rate, not a flood.
-- Pauses are exponentially distributed (Poisson arrivals, as from independent debtors):
-- equal pauses would keep the connections in lock-step and send bursts of 32 at once.
local pause = tonumber(os.getenv("RELANCE_BENCH_PAUSE_MS"))
function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end
function delay()
  return math.floor(-pause * math.log(1 - math.random()))
end
"""


def run_wrk(
    port: int,
    cookie: str | None,
    duration: float,
    args: argparse.Namespace,
    rate: float | None = None,
) -> WrkResult:
    env = dict(os.environ)
    command = [
        args.wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration:g}s",
        "--latency",
        "--timeout",
        "5s",
        f"http://127.0.0.1:{port}/",
    ]
    if cookie:
        command[-1:-1] = ["-H", f"Cookie: {SESSION_COOKIE}={cookie}"]
    if rate is not None:
        script = Path(tempfile.gettempdir()) / "relance-bench-pacing.lua"
        script.write_text(PACING_SCRIPT)
        command[-1:-1] = ["-s", str(script)]
        env["RELANCE_BENCH_PAUSE_MS"] = str(int(args.connections * 1000 / rate))
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 60, check=False, env=env
    )
    if done.returncode != 0:
        raise SetupError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = parse_wrk(done.stdout)
    if result.requests == 0:
        raise SetupError(f"wrk completed no request:\n{done.stdout}")
    return result


def measure(
    server: Server, cookie: str | None, check: Callable[[], int], args: argparse.Namespace
) -> tuple[WrkResult, int]:
    """Check, load, check again (the session must survive the load)."""
    size = check()
    result = run_wrk(server.port, cookie, args.duration, args)
    check()
    if server.process.poll() is not None:
        raise SetupError(f"{server.name} died under load:\n{server.log_tail()}")
    print(
        f"  {server.name:<5} {result.requests_per_second:9.1f} req/s  "
        f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
        f"({result.requests} requests, page {size} bytes"
        f"{', socket errors: ' + result.socket_errors if result.socket_errors else ''})",
        flush=True,
    )
    return result, size


def measure_side_by_side(
    app: Server,
    bare: Server,
    cookie: str,
    check_app: Callable[[], int],
    check_bare: Callable[[], int],
    args: argparse.Namespace,
) -> tuple[WrkResult, int, WrkResult, int]:
    """Both servers warmed up, then ``args.rounds`` alternating runs of each (app, bare,
    app, bare...); each side's median run by throughput is kept. Alternating makes the ratio
    hold when the machine's load drifts during the benchmark: a busy stretch slows both."""
    if args.warmup > 0:
        run_wrk(app.port, cookie, args.warmup, args)
        run_wrk(bare.port, None, args.warmup, args)
    app_runs: list[tuple[WrkResult, int]] = []
    bare_runs: list[tuple[WrkResult, int]] = []
    for _ in range(args.rounds):
        app_runs.append(measure(app, cookie, check_app, args))
        bare_runs.append(measure(bare, None, check_bare, args))
    app_result, app_size = _median(app_runs)
    bare_result, bare_size = _median(bare_runs)
    if args.rounds > 1:
        print(
            f"  median of {args.rounds} rounds: app {app_result.requests_per_second:.1f} req/s, "
            f"bare {bare_result.requests_per_second:.1f} req/s",
            flush=True,
        )
    return app_result, app_size, bare_result, bare_size


def _median(runs: list[tuple[WrkResult, int]]) -> tuple[WrkResult, int]:
    ordered = sorted(runs, key=lambda run: run[0].requests_per_second)
    return ordered[len(ordered) // 2]


# --------------------------------------------------------------------------- one backend


def server_env(settings_env: dict[str, str]) -> dict[str, str]:
    """The inherited environment without stray PORTAL_* settings, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(settings_env)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> BackendResult:
    print(f"\n== {backend} ==", flush=True)
    app_port, bare_port = free_port(), free_port()
    while bare_port == app_port:
        bare_port = free_port()
    with fresh_database(backend, workdir) as url:
        settings_env = {
            "PORTAL_DATABASE_URL": url,
            "PORTAL_ENVIRONMENT": "development",
            "PORTAL_SECRET_KEYS": secrets.token_urlsafe(36),  # 48 characters
            "PORTAL_BASE_URL": f"http://127.0.0.1:{app_port}",
            "PORTAL_DOCUMENTS_DIR": str(workdir / "documents"),
            # The limit stays in the path (its cost is measured) but out of the way: when a
            # wrk run ends, the requests it left in flight overlap the next run's; and a
            # saturated closed loop of 32 connections answers slowly by design, which must
            # not make the worker refuse (bench/overload.py measures refusing).
            "PORTAL_MAX_REQUESTS_IN_FLIGHT": str(4 * args.connections),
            "PORTAL_SLOW_ANSWER_MS": "60000",
        }
        settings = load_settings(settings_env)
        started = time.perf_counter()
        link, other_link = seed(url, settings, args.customers, args.invoices_per_customer)
        seed_seconds = time.perf_counter() - started
        print(
            f"  seeded {args.customers} customers x {args.invoices_per_customer} invoices "
            f"+ the measured customer in {seed_seconds:.1f} s",
            flush=True,
        )

        today = clock.today_in(bare_app.CUSTOMER_TIMEZONE)
        expected = [p.number for p in bare_app.invoice_plan(today)]
        absent = [f"FB-2025-{k + 1:04d}" for k in range(12)]
        env = server_env(settings_env)

        extra = shlex.split(args.uvicorn_args)
        bare_target = ["--app-dir", str(BENCH_DIR), "bare_app:asgi"]
        with (
            serve("app", [args.app_factory], app_port, env, workdir, extra) as app,
            serve("bare", bare_target, bare_port, env, workdir, extra) as bare,
        ):
            cookie = open_link(app_port, link)
            app_result, app_size, bare_result, bare_size = measure_side_by_side(
                app,
                bare,
                cookie,
                lambda: check_page("app", app_port, cookie, expected, absent),
                lambda: check_page("bare", bare_port, None, expected, absent),
                args,
            )
            paced_rate = app_result.requests_per_second * args.paced_fraction
            paced = run_wrk(app_port, cookie, args.duration, args, rate=paced_rate)
            print(
                f"  app at a steady {paced.requests_per_second:.0f} req/s over "
                f"{args.connections} connections: p50 {paced.p50_ms:.2f} ms  "
                f"p99 {paced.p99_ms:.2f} ms",
                flush=True,
            )
            app_rss = rss_mb(app.process.pid)
            print(f"  app RSS after the load: {app_rss:.1f} MB", flush=True)
            stall = None
            if args.lock_seconds > 0:
                try:
                    stall = run_stall(
                        url, app_port, cookie, open_link(app_port, other_link), args.lock_seconds
                    )
                except StallError as error:
                    raise SetupError(f"lock-stall phase: {error}") from error
                print(f"  {stall.summary()}", flush=True)

    return BackendResult(
        backend, app_result, bare_result, app_rss, app_size, bare_size, seed_seconds, paced, stall
    )


# --------------------------------------------------------------------------- report


def print_report(
    results: list[BackendResult], args: argparse.Namespace, skipped: list[str]
) -> None:
    print(
        f"\nPortal home page, 25 open invoices: wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration:g}s, uvicorn 1 worker, {os.cpu_count()} CPUs shared with wrk"
    )
    if args.app_factory != DEFAULT_APP_FACTORY or args.uvicorn_args:
        print(f"app factory {args.app_factory}, extra uvicorn options {args.uvicorn_args!r}")
    print()
    header = (
        "backend",
        "app req/s",
        "bare req/s",
        "app/bare",
        "app p50",
        "app p99",
        "bare p50",
        "bare p99",
        "steady req/s",
        "steady p50",
        "steady p99",
        "app RSS",
    )
    rows = [
        (
            r.backend,
            f"{r.app.requests_per_second:.1f}",
            f"{r.bare.requests_per_second:.1f}",
            f"{r.ratio:.2f}",
            f"{r.app.p50_ms:.2f} ms",
            f"{r.app.p99_ms:.2f} ms",
            f"{r.bare.p50_ms:.2f} ms",
            f"{r.bare.p99_ms:.2f} ms",
            f"{r.paced.requests_per_second:.1f}",
            f"{r.paced.p50_ms:.2f} ms",
            f"{r.paced.p99_ms:.2f} ms",
            f"{r.app_rss_mb:.1f} MB",
        )
        for r in results
    ]
    max_bare = max(r.bare.requests_per_second for r in results)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    line = "  ".join(
        h.ljust(w) if i == 0 else h.rjust(w)
        for i, (h, w) in enumerate(zip(header, widths, strict=True))
    )
    print(line)
    print("-" * len(line))
    for row in rows:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    print("\nGoals:")
    for r in results:
        verdicts = "   ".join(f"{name}: {'PASS' if ok else 'FAIL'}" for name, ok in r.goals())
        print(f"  {r.backend:<10} {verdicts}")
    for name in skipped:
        print(f"  {name:<10} skipped")
    for r in results:
        if r.stall:
            print(f"\nLock stall, {r.backend}: {r.stall.summary()}")
    # wrk keeps every connection busy (closed loop), so by Little's law the mean latency is
    # connections / throughput: a latency goal at N connections is a throughput goal too.
    needed = args.connections / (GOAL_P99_MS / 1000)
    print(
        f"\nNote: wrk is closed-loop, so mean latency ~= connections / req/s. A p99 under "
        f"{GOAL_P99_MS:g} ms at {args.connections} connections needs more than {needed:.0f} req/s "
        f"from the worker; the bare template alone manages {max_bare:.0f}. The latency goal is "
        f"therefore read at a steady rate of {args.paced_fraction:.0%} of the app's saturated "
        f"throughput, over the same {args.connections} connections (the 'steady' columns)."
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds of load (default 10)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating app/bare runs; the median of each is compared (default 3)",
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument(
        "--paced-fraction",
        type=float,
        default=0.5,
        help="steady-rate phase: this share of the app's saturated req/s (default 0.5)",
    )
    parser.add_argument(
        "--backends",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (default both; PostgreSQL only "
        "when reachable or PORTAL_TEST_DATABASE_URL is set)",
    )
    parser.add_argument(
        "--warmup", type=float, default=3, help="seconds of warm-up load (default 3)"
    )
    parser.add_argument(
        "--customers", type=int, default=2000, help="background customers (default 2000)"
    )
    parser.add_argument(
        "--invoices-per-customer",
        type=int,
        default=5,
        help="invoices per background customer (default 5)",
    )
    parser.add_argument(
        "--lock-seconds",
        type=float,
        default=5,
        help="lock-stall phase: how long a lock holds one page view (default 5; 0 skips it)",
    )
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="path of wrk")
    parser.add_argument(
        "--app-factory",
        default=DEFAULT_APP_FACTORY,
        help="uvicorn factory of the app under test, to try a variant "
        "(importable via PYTHONPATH; default portal.web.app:asgi)",
    )
    parser.add_argument(
        "--uvicorn-args",
        default="",
        help="extra uvicorn options for both servers, e.g. '--loop asyncio'",
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.connections < 1 or args.threads < 1:
        parser.error("--duration, --connections and --threads must be positive")
    if args.connections < args.threads:
        parser.error("wrk needs at least as many connections as threads")
    return args


def choose_backends(requested: str) -> tuple[list[str], list[str]]:
    backends, skipped = [], []
    for name in [b.strip().lower() for b in requested.split(",") if b.strip()]:
        if name in ("postgres", "postgresql", "pg"):
            url, configured = postgres_base_url()
            reason = postgres_reachable(url)
            if reason is None:
                backends.append("postgresql")
            elif configured:
                raise SetupError(f"PORTAL_TEST_DATABASE_URL is set but unreachable: {reason}")
            else:
                print(f"PostgreSQL not reachable at {make_url(url)!r}, skipped: {reason}")
                skipped.append("postgresql")
        elif name == "sqlite":
            backends.append("sqlite")
        else:
            raise SetupError(f"unknown backend {name!r} (sqlite, postgresql)")
    if not backends:
        raise SetupError("no backend to measure")
    return list(dict.fromkeys(backends)), skipped


def _terminate(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which(args.wrk) is None:
        print(f"setup failed: wrk not found ({args.wrk})", file=sys.stderr)
        return 2
    # Ctrl+C, kill and a closed terminal all unwind through the cleanups (even when the
    # shell started this in the background with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    results: list[BackendResult] = []
    try:
        backends, skipped = choose_backends(args.backends)
        with tempfile.TemporaryDirectory(prefix="relance-bench-") as tmp:
            for backend in backends:
                results.append(run_backend(backend, args, Path(tmp)))
    except SetupError as error:
        print(f"\nsetup failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped and databases dropped", file=sys.stderr)
        return 130
    print_report(results, args, skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
