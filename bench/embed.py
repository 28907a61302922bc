"""The widget's budget: embed.js compressed, the requests a host page makes, and the
"Pay an invoice" answers' timing with and without the padding.

Run from the project root::

    .venv/bin/python bench/embed.py [--lookups 20] [--floor 0.5]

1. embed.js: raw and gzip -9 sizes against the 3 KB budget (issue 12).
2. A host page on another site (``http://localhost:PORT``) pastes the snippet; Chromium
   loads it and every request is recorded, per frame: the host page, embed.js, then the
   framed page and what that page loads itself. embed.js must start nothing but the
   frame (no configuration fetch, no second script).
3. Lookups against the served app (SQLite, one customer, one invoice): a hit, a miss on
   a known invoice number and a miss on an unknown number, each ``--lookups`` times from
   distinct clients (``X-Forwarded-For``, so the per-client throttle stays out of the
   way), first with the padding off, then with it on (``--floor`` seconds). Medians and
   the ratio between the slowest and the fastest kind are printed side by side.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import http.server
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(PROJECT_ROOT))

import uvicorn  # noqa: E402
from starlette.applications import Starlette  # noqa: E402

from portal import clock, migrate  # noqa: E402
from portal.company.service import sync_company  # noqa: E402
from portal.customers.models import Customer  # noqa: E402
from portal.db import make_engine, make_session_factory, transaction  # noqa: E402
from portal.embed.origins import add_origin  # noqa: E402
from portal.invoices.models import Invoice, InvoiceStatus  # noqa: E402
from portal.settings import load_settings  # noqa: E402
from portal.web.app import create_app  # noqa: E402

EMBED_JS = PROJECT_ROOT / "static" / "embed.js"
BUDGET_BYTES = 3 * 1024
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sizes() -> None:
    raw = EMBED_JS.read_bytes()
    packed = gzip.compress(raw, compresslevel=9)
    print(f"embed.js: {len(raw)} bytes, {len(packed)} bytes gzip -9 (budget {BUDGET_BYTES})")
    print(f"embed.js gzip / budget ratio: {len(packed) / BUDGET_BYTES:.2f}")


@contextmanager
def served(app: Starlette, port: int) -> Iterator[None]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the portal did not start")
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def host_page(portal: str) -> Iterator[str]:
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Host</title></head>'
        f'<body><div data-relance-pay><a href="{portal}/">Pay an invoice</a></div>'
        f'<script src="{portal}/embed.js" async></script></body></html>'
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()


def requests(portal: str, host: str) -> None:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        print("requests: skipped (no chromium on PATH)")
        return
    seen: list[tuple[str, str]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on(
            "request",
            lambda r: seen.append(("host" if r.frame == page.main_frame else "frame", r.url)),
        )
        page.goto(host)
        frame = page.frame_locator("iframe")
        frame.get_by_role("heading", level=1).wait_for()
        page.wait_for_load_state("networkidle")
        browser.close()
    host_requests = [url for where, url in seen if where == "host"]
    frame_requests = [url for where, url in seen if where == "frame"]
    beyond = [u for u in host_requests if u.rstrip("/") != host and not u.endswith("/embed.js")]
    framed_page = [u for u in frame_requests if "/embed?" in u]
    print(f"host page requests: {len(host_requests)} (the page and embed.js)")
    print(f"requests embed.js starts besides the frame: {len(beyond)} {beyond or ''}")
    print(
        f"framed page: {len(framed_page)} document + {len(frame_requests) - len(framed_page)}"
        " of its own (stylesheets, logo, scripts)"
    )


def seed(database_url: str, origin: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(database_url, engine=engine)
    settings = load_settings({"PORTAL_DATABASE_URL": database_url})
    with transaction(make_session_factory(engine)) as db:
        company = sync_company(db, settings.company)
        db.flush()
        add_origin(db, company.id, origin, user_id=None, allow_http=True)
        customer = Customer(
            company_id=company.id, reference="B-1", name="Bench", language="en",
            timezone="Europe/Paris", link_version=1, created_at=clock.now(), postcode="75002",
        )  # fmt: skip
        db.add(customer)
        db.flush()
        today = clock.now().date()
        db.add(
            Invoice(
                company_id=company.id,
                customer_id=customer.id,
                number="B-100",
                issue_date=today,
                due_date=today,
                currency="EUR",
                amount_minor=12_345,
                paid_minor=0,
                status=InvoiceStatus.OPEN,
                created_at=clock.now(),
            )
        )
    engine.dispose()


def timings(portal_port: int, app: Starlette, count: int, floor: float) -> None:
    kinds = {
        "hit": {"invoice_number": "B-100", "amount": "123.45"},
        "miss, known number": {"invoice_number": "B-100", "amount": "1.00"},
        "miss, unknown number": {"invoice_number": "NOPE-1", "amount": "123.45"},
    }
    client_n = 0
    for label, padding in (("padding off", 0.0), (f"padding {floor:g} s", floor)):
        app.state.lookup_answer_seconds = padding
        medians = {}
        for kind, form in kinds.items():
            durations = []
            for _ in range(count):
                client_n += 1
                connection = http.client.HTTPConnection("127.0.0.1", portal_port, timeout=30)
                body = urlencode(form)
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Sec-Fetch-Site": "same-origin",
                    "X-Forwarded-For": _client_address(client_n),
                }
                started = time.perf_counter()
                connection.request("POST", "/lookup", body, headers)
                response = connection.getresponse()
                response.read()
                durations.append(time.perf_counter() - started)
                connection.close()
                # The known number's throttle is per invoice: forget it between attempts.
                if kind != "hit":
                    _forget_invoice_key(app)
            medians[kind] = statistics.median(durations)
        line = ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in medians.items())
        print(f"lookup medians ({label}): {line}")
        print(
            f"lookup slowest/fastest ratio ({label}): "
            f"{max(medians.values()) / min(medians.values()):.3f}"
        )


def _client_address(n: int) -> str:
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def _forget_invoice_key(app: Starlette) -> None:
    from sqlalchemy import delete

    from portal.users.models import LoginThrottle

    with app.state.session_factory() as db, db.begin():
        db.execute(delete(LoginThrottle).where(LoginThrottle.scope == "lookup_invoice"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lookups", type=int, default=20)
    parser.add_argument("--floor", type=float, default=0.5)
    args = parser.parse_args()
    sizes()
    port = _free_port()
    portal = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as workdir, host_page(portal) as host:
        database_url = f"sqlite:///{workdir}/bench.db"
        seed(database_url, host)
        settings = load_settings(
            {
                "PORTAL_DATABASE_URL": database_url,
                "PORTAL_BASE_URL": portal,
                "PORTAL_ENVIRONMENT": "development",
                "PORTAL_DOCUMENTS_DIR": f"{workdir}/documents",
                "PORTAL_MAIL_SPOOL_DIR": f"{workdir}/mail",
            }
        )
        app = create_app(settings)
        with served(app, port):
            requests(portal, host)
            timings(port, app, args.lookups, args.floor)


if __name__ == "__main__":
    main()
