"""The peers of the delivery benchmark, each in a process of its own (so that neither the
app nor the bare loop shares its interpreter with them): an aiosmtpd sink that counts, and
a stand-in of a Twilio-compatible SMS API (HTTP/1.1, keep-alive)."""

from __future__ import annotations

import json
import multiprocessing
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.sharedctypes import Synchronized
from typing import Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _smtp_sink(port: int, received: Synchronized[int], ready: Any, stop: Any) -> None:
    from aiosmtpd.controller import Controller

    class Count:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with received.get_lock():
                received.value += 1
            return "250 OK"

    controller = Controller(Count(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


def _sms_standin(port: int, received: Synchronized[int], ready: Any, stop: Any) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(length)
            with received.get_lock():
                received.value += 1
                sid = f"SM{received.value:030d}"
            body = json.dumps({"sid": sid, "status": "queued"}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ready.set()
    stop.wait()
    server.shutdown()


class Peer:
    """A peer process on a free port; ``received`` counts what it got."""

    def __init__(self, kind: str) -> None:
        context = multiprocessing.get_context("fork")
        self.port = free_port()
        self.received: Synchronized[int] = context.Value("i", 0)  # type: ignore[assignment]
        ready, self._stop = context.Event(), context.Event()
        target = _smtp_sink if kind == "smtp" else _sms_standin
        self._process = context.Process(
            target=target, args=(self.port, self.received, ready, self._stop), daemon=True
        )
        self._process.start()
        if not ready.wait(30):
            raise SystemExit(f"the {kind} peer did not start")

    @property
    def count(self) -> int:
        return int(self.received.value)

    def stop(self) -> None:
        self._stop.set()
        self._process.join(10)
