"""Browser tests: the real app served by uvicorn in a subprocess, driven by Chromium.

One server per database backend (SQLite always, PostgreSQL when
PORTAL_TEST_DATABASE_URL is set), seeded by ``portal demo --no-serve``; one
Chromium for the whole session; a new browser context (fresh cookies) per test.
Each server sends its emails to its own loopback SMTP sink so tests can read them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.browser.helpers import LINK_MAX_AGE_DAYS
from tests.conftest import IN_CI, TEST_SECRET, backends, fresh_database_url
from tests.mail_sink import Inbox, free_port, smtp_server
from tests.stripe_server import LocalStripe, localstripe_server

ROOT = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE_SECONDS = 30.0
CLI_TIMEOUT_SECONDS = 120.0
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
DEFAULT_TIMEOUT_MS = 10_000


# --- the served application ----------------------------------------------------------------


def _tail(path: Path, limit: int = 6000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no server output)"
    return text if len(text) <= limit else "…" + text[-limit:]


@dataclass
class LiveServer:
    backend: str
    url: str
    workdir: Path
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes]
    inbox: Inbox
    demo_links: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str) -> str:
        """Run ``portal <args>`` against this server's database; its stdout."""
        command = [sys.executable, "-m", "portal.cli", *args]
        result = subprocess.run(
            command,
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )
        assert result.returncode == 0, (
            f"portal {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        return result.stdout

    def mint_link(self, reference: str, days: int | None = None) -> str:
        """A fresh signed URL from ``portal link REF [--days N]``."""
        args = ["link", reference] + (["--days", str(days)] if days is not None else [])
        url = self.cli(*args).strip().splitlines()[-1]
        assert url.startswith(f"{self.url}/l/"), url
        return url

    def revoke_links(self, reference: str) -> None:
        """``portal revoke-links REF``."""
        self.cli("revoke-links", reference)

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def output(self) -> str:
        return _tail(self.log_path)


STRIPE_WEBHOOK_SECRET = "whsec_browser_tests"


@pytest.fixture(scope="session")
def localstripe() -> Iterator[LocalStripe]:
    """A fake Stripe on loopback: the live server takes card payments through it."""
    with localstripe_server() as server:
        yield server


def _server_env(
    database_url: str, port: int, documents: Path, smtp_port: int, stripe_base: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(
        PORTAL_DATABASE_URL=database_url,
        PORTAL_ENVIRONMENT="development",
        # What `portal demo` switches on when it serves: the outbox viewer (login required).
        PORTAL_DEV_OUTBOX="true",
        PORTAL_SECRET_KEYS=TEST_SECRET,
        PORTAL_BASE_URL=f"http://127.0.0.1:{port}",
        PORTAL_DOCUMENTS_DIR=str(documents),
        PORTAL_LINK_MAX_AGE_DAYS=str(LINK_MAX_AGE_DAYS),
        PORTAL_SMTP_HOST="127.0.0.1",
        PORTAL_SMTP_PORT=str(smtp_port),
        PORTAL_SMTP_SECURITY="none",
        PORTAL_STRIPE_SECRET_KEY="sk_test_12345",
        PORTAL_STRIPE_PUBLISHABLE_KEY="pk_test_12345",
        PORTAL_STRIPE_WEBHOOK_SECRET=STRIPE_WEBHOOK_SECRET,
        PORTAL_STRIPE_API_BASE=stripe_base,
        PORTAL_STRIPE_JS_URL=f"{stripe_base}/js.stripe.com/v3/",
        PORTAL_STRIPE_AUTOMATIC_PAYMENT_METHODS="false",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        PYTHONUNBUFFERED="1",
    )
    return env


def _wait_until_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"uvicorn exited with {server.process.returncode} before answering /healthz\n"
                f"{server.output()}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
                last_error = f"status {response.status}"
        except urllib.error.HTTPError as error:
            last_error = f"status {error.code}"
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            last_error = repr(error)
        time.sleep(0.05)
    pytest.fail(
        f"{server.url}/healthz did not answer 200 within {STARTUP_DEADLINE_SECONDS}s "
        f"({last_error})\n{server.output()}"
    )


DEMO_LINE = re.compile(r"^\s+(C-\d+)\s.*\s(http://\S+/l/\S+)\s*$", re.MULTILINE)


@pytest.fixture(scope="session", params=backends())
def live_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    localstripe: LocalStripe,
) -> Iterator[LiveServer]:
    """``portal demo --no-serve`` then uvicorn, on a fresh database of the backend, with
    its own SMTP sink (the other backend's emails never land in it)."""
    backend: str = request.param
    workdir = tmp_path_factory.mktemp(f"live-{backend}")
    documents = workdir / "documents"
    documents.mkdir()
    database_url, drop = fresh_database_url(backend, workdir)
    port = free_port()
    log_path = workdir / "server.log"
    sink = ExitStack()
    try:
        inbox, smtp_port = sink.enter_context(smtp_server())
        env = _server_env(database_url, port, documents, smtp_port, localstripe.api_base)
        demo = subprocess.run(
            [sys.executable, "-m", "portal.cli", "demo", "--no-serve", "--port", str(port)],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )
        assert demo.returncode == 0, (
            f"portal demo --no-serve exited {demo.returncode}\n"
            f"stdout:\n{demo.stdout}\nstderr:\n{demo.stderr}"
        )
        demo_links = dict(DEMO_LINE.findall(demo.stdout))
        assert set(demo_links) == {"C-1001", "C-1003", "C-1005"}, demo.stdout

        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    "portal.web.app:asgi",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "info",
                ],
                env=env,
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = LiveServer(
            backend, f"http://127.0.0.1:{port}", workdir, env, log_path, process, inbox, demo_links
        )
        hook = f"live-{port}"
        try:
            _wait_until_healthy(server)
            localstripe.configure_webhook(
                f"{server.url}/webhooks/stripe", STRIPE_WEBHOOK_SECRET, name=hook
            )
            yield server
        finally:
            localstripe.disable_webhook(hook)
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    finally:
        sink.close()
        drop()


# --- links ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def revoked_link(live_server: LiveServer) -> str:
    """A link of C-1010 issued before every link of C-1010 was revoked."""
    url = live_server.mint_link("C-1010")
    live_server.revoke_links("C-1010")
    return url


# --- the browser -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        message = "Chromium is not installed (looked for `chromium` on PATH)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


NewContext = Callable[..., BrowserContext]


@pytest.fixture
def new_context(browser: Browser, live_server: LiveServer) -> Iterator[NewContext]:
    """Make browser contexts (own cookies) on the live server; closed after the test.

    The server's output during the test must hold no traceback.
    """
    contexts: list[BrowserContext] = []
    log_offset = live_server.log_size()

    def make(**options: Any) -> BrowserContext:
        options.setdefault("locale", "en-GB")
        context = browser.new_context(base_url=live_server.url, **options)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
    logged = live_server.log_since(log_offset)
    assert "Traceback" not in logged, f"the server logged an error:\n{logged}"


@pytest.fixture
def context(new_context: NewContext) -> BrowserContext:
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture(scope="session")
def axe() -> Axe:
    return Axe()
