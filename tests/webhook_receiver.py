"""A webhook receiver on loopback for tests: verifies every request with the
``standardwebhooks`` library, as an integrator's receiver would, and records it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    webhook_id: str
    payload: dict[str, Any]


@dataclass
class Receiver:
    port: int
    secret: str = ""
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # requests whose signature failed
    # Called with the webhook id before answering; returns the status to answer.
    answer: Callable[[str], int] = lambda _id: 204
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/relance"

    def ids(self) -> list[str]:
        with self.lock:
            return [r.webhook_id for r in self.received]

    def types(self) -> list[str]:
        with self.lock:
            return [r.payload["type"] for r in self.received]


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = dict(self.headers.items())
            webhook_id = headers.get("webhook-id", "")
            try:
                payload = Webhook(receiver.secret).verify(body, headers)
            except WebhookVerificationError:
                with receiver.lock:
                    receiver.refused.append(webhook_id)
                self._reply(400)
                return
            status = receiver.answer(webhook_id)
            if 200 <= status < 300:
                with receiver.lock:
                    receiver.received.append(Received(webhook_id, json.loads(json.dumps(payload))))
                with receiver.seen:
                    receiver.seen.notify_all()
            self._reply(status)

        def _reply(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
