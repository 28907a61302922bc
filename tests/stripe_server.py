"""A real localstripe (a stateful fake of the Stripe API) on loopback, started by tests.

    with localstripe_server() as server:
        client = stripe_client(server)
        intent = client.v1.payment_intents.create(
            params={"amount": 1250, "currency": "eur", "payment_method": "pm_card_visa"}
        )
        client.v1.payment_intents.confirm(intent.id)

localstripe runs as a subprocess (this file, executed with ``python -P``) serving
localstripe's own aiohttp app on a socket that the parent binds to 127.0.0.1 on a free
port and hands over, so there is no port race and nothing listens beyond loopback
(``python -m localstripe`` binds ``::``, every interface). Its on-disk persistence is
switched off: stock localstripe pickles its whole store to the fixed path
/tmp/localstripe.pickle after every write, which concurrent servers (parallel runs,
other users on the machine) would share and fight over.

Also here: ``webhook_receiver()``, a tiny HTTP endpoint on loopback that records what
localstripe delivers, so tests can verify signatures with the real SDK.
See docs/stripe-testing.md for what localstripe does and does not emulate.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import stripe

TEST_API_KEY = "sk_test_12345"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
OUTPUT_TAIL = 4000

# Loopback only: never route these requests through an HTTP(S)_PROXY from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LocalStripeError(RuntimeError):
    """localstripe failed to start, crashed, or refused a harness request."""


class LocalStripe:
    """A running localstripe subprocess; ``api_base`` is its http://127.0.0.1:PORT."""

    def __init__(self, process: subprocess.Popen[bytes], api_base: str, log: IO[bytes]) -> None:
        self.process = process
        self.api_base = api_base
        self._log = log

    # -- harness-only endpoints (not part of the Stripe API) -------------------------

    def configure_webhook(
        self, url: str, secret: str, *, events: list[str] | None = None, name: str = "default"
    ) -> None:
        """Register (or replace) webhook ``name``: localstripe POSTs every event, or only
        the ``events`` types, to ``url`` signed with ``secret`` (Stripe-Signature, v1)."""
        body: dict[str, Any] = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = list(events)
        self.request("POST", f"/_config/webhooks/{name}", body)

    def disable_webhook(self, name: str = "default") -> None:
        """localstripe cannot delete a webhook; re-register it with an empty event filter.

        Do this before the receiving endpoint goes away, so later events are not sent to
        a port that another process may have taken in the meantime."""
        self.request(
            "POST",
            f"/_config/webhooks/{name}",
            {"url": "http://127.0.0.1:9/", "secret": "disabled", "events": []},
        )

    def authenticate(self, payment_intent: str, client_secret: str, *, success: bool) -> Any:
        """Complete (or fail) the 3-D Secure challenge of a ``requires_action`` PaymentIntent,
        as localstripe's fake Stripe.js would do in a browser."""
        return self.request(
            "POST",
            f"/v1/payment_intents/{payment_intent}/_authenticate",
            {"client_secret": client_secret, "success": success},
        )

    def flush(self) -> None:
        """Forget every object (webhook registrations are kept)."""
        self.request("DELETE", "/_config/data")

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """A raw JSON request with the test key; the decoded JSON answer, if any."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.api_base + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {TEST_API_KEY}",
                "Content-Type": "application/json",
            },
        )
        try:
            with _opener.open(request, timeout=10) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise LocalStripeError(
                f"{method} {path} answered {error.code}: {detail}\n{self._describe()}"
            ) from error
        except OSError as error:
            raise LocalStripeError(
                f"{method} {path} failed: {error}\n{self._describe()}"
            ) from error
        return json.loads(text) if text.strip() else None

    # -- lifecycle -----------------------------------------------------------------------

    def output(self) -> str:
        """What localstripe printed so far (access log, webhook deliveries, tracebacks)."""
        # pread: the child writes through a shared file offset that must not move.
        fd = self._log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def _describe(self) -> str:
        state = (
            "running"
            if self.process.poll() is None
            else f"exited with status {self.process.returncode}"
        )
        tail = self.output()[-OUTPUT_TAIL:]
        return f"localstripe at {self.api_base} ({state}); its output:\n{tail}"

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            request = urllib.request.Request(
                self.api_base + "/v1/customers",
                headers={"Authorization": f"Bearer {TEST_API_KEY}"},
            )
            try:
                with _opener.open(request, timeout=max(0.1, deadline - time.monotonic())):
                    return
            except (OSError, ValueError) as error:
                last_error = error
            time.sleep(0.05)  # poll interval between attempts, not a wait for readiness
        raise LocalStripeError(
            f"localstripe did not answer within {timeout:.0f} s (last error: {last_error})\n"
            + self._describe()
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()


@contextmanager
def localstripe_server(timeout: float = START_TIMEOUT) -> Iterator[LocalStripe]:
    """Start localstripe on a free loopback port, wait until it answers, stop it afterwards.

    Start-up failures and crashes raise LocalStripeError with localstripe's output; an
    exception from the body gets that output attached as a note."""
    with tempfile.TemporaryFile() as log:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(128)
            port = listener.getsockname()[1]
            command = [sys.executable, "-P", os.path.abspath(__file__)]
            process = subprocess.Popen(
                [*command, "--serve-fd", str(listener.fileno())],
                pass_fds=(listener.fileno(),),
                stdin=subprocess.PIPE,  # closed when we go away: the server then exits too
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        # Our copy of the listening socket is closed; the child serves on its own.
        server = LocalStripe(process, f"http://127.0.0.1:{port}", log)
        try:
            server._wait_until_ready(timeout)
            try:
                yield server
            except BaseException as error:
                error.add_note(server._describe())
                raise
            if process.poll() is not None:
                raise LocalStripeError("localstripe exited during the test\n" + server._describe())
        finally:
            server.stop()


def stripe_client(server: LocalStripe | str, api_key: str = TEST_API_KEY) -> stripe.StripeClient:
    """The official SDK's client pointed at localstripe.

    ``base_addresses`` overrides where the SDK sends requests; a requests session that
    ignores proxy settings from the environment keeps them on loopback; no network
    retries, because localstripe honours no idempotency key and a retried POST would
    create a second object (and localstripe's "Not implemented" 500s would be retried)."""
    import requests
    import stripe

    api_base = server if isinstance(server, str) else server.api_base
    session = requests.Session()
    session.trust_env = False
    client = stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base, "connect": api_base, "files": api_base},
        http_client=stripe.RequestsClient(session=session, timeout=10),
        max_network_retries=0,
    )
    weakref.finalize(client, session.close)
    return client


# -- webhook receiver ---------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One POST received by the webhook receiver, body kept byte for byte."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def signature(self) -> str | None:
        return self.headers.get("stripe-signature")

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self, url: str) -> None:
        self.url = url
        self.deliveries: list[Delivery] = []
        self._changed = threading.Condition()

    def _record(self, delivery: Delivery) -> None:
        with self._changed:
            self.deliveries.append(delivery)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[Delivery], bool], timeout: float = 10.0) -> Delivery:
        """The first delivery matching ``predicate``, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for delivery in self.deliveries:
                    if predicate(delivery):
                        return delivery
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    received = [_describe_delivery(d) for d in self.deliveries]
                    raise AssertionError(
                        f"no matching webhook delivery within {timeout} s; received: {received}"
                    )
                self._changed.wait(remaining)

    def wait_for_event(self, event_type: str, object_id: str, timeout: float = 10.0) -> Delivery:
        """The delivery of the ``event_type`` event about the object ``object_id``."""

        def matches(delivery: Delivery) -> bool:
            try:
                event = delivery.json()
                return bool(
                    event.get("type") == event_type
                    and event.get("data", {}).get("object", {}).get("id") == object_id
                )
            except (ValueError, AttributeError):
                return False

        return self.wait_for(matches, timeout)


def _describe_delivery(delivery: Delivery) -> str:
    try:
        event = delivery.json()
        return f"{event.get('type')} {event.get('data', {}).get('object', {}).get('id')}"
    except (ValueError, AttributeError):
        return f"{len(delivery.body)} bytes to {delivery.path}"


@contextmanager
def webhook_receiver(status: int = 200) -> Iterator[WebhookReceiver]:
    """An HTTP endpoint on a free loopback port that records every POST it receives."""
    receiver: WebhookReceiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {key.lower(): value for key, value in self.headers.items()}
            receiver._record(Delivery(self.path, headers, body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    receiver = WebhookReceiver(f"http://127.0.0.1:{httpd.server_address[1]}/stripe/webhook")
    thread = threading.Thread(
        target=httpd.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="webhook-receiver",
        daemon=True,
    )
    thread.start()
    try:
        yield receiver
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# -- the subprocess -------------------------------------------------------------------------


def _serve(fd: int) -> None:
    """Run localstripe's app on the inherited listening socket ``fd`` (child process)."""
    import logging

    from aiohttp import web
    from localstripe import resources, server

    def no_persistence(store: object) -> None:
        return None

    resources.Store.dump_to_disk = no_persistence  # type: ignore[method-assign]
    resources.Store.try_load_from_disk = no_persistence  # type: ignore[method-assign]

    def exit_with_parent() -> None:
        # stdin is a pipe from the parent: EOF means it stopped us or died without doing so.
        # (os.read, not sys.stdin: a daemon thread blocked in a buffered reader aborts
        # the interpreter at shutdown.)
        while os.read(0, 4096):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=exit_with_parent, daemon=True).start()

    # The access log also carries localstripe's "webhook ... delivered/failed" lines.
    access_log = logging.getLogger("aiohttp.access")
    access_log.setLevel(logging.DEBUG)
    access_log.addHandler(logging.StreamHandler())
    listener = socket.socket(fileno=fd)
    web.run_app(server.app, sock=listener, access_log=access_log)


if __name__ == "__main__":
    if sys.argv[1:2] != ["--serve-fd"] or len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} --serve-fd FD  (started by localstripe_server())")
    _serve(int(sys.argv[2]))
