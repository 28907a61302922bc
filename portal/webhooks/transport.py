"""Posting one signed webhook to the checked address (``ssrf.Target``), over kept-alive
connections: one per endpoint address for a batch of deliveries."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from portal.webhooks.ssrf import Target

RESPONSE_MAX_BYTES = 64 * 1024  # what we read of an answer before closing


@dataclass(frozen=True)
class Answer:
    status_code: int | None  # None: no HTTP answer (refused, timed out, TLS...)
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to ``address``, with the certificate checked for the URL's host name."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class Connections:
    """Kept-alive connections by (scheme, address, port, host); close() at the end."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._open: dict[tuple[str, str, int, str], http.client.HTTPConnection] = {}

    def _connection(self, target: Target) -> http.client.HTTPConnection:
        key = (target.scheme, target.address, target.port, target.host)
        connection = self._open.get(key)
        if connection is None:
            if target.scheme == "https":
                connection = _PinnedHTTPS(target, self.timeout)
            else:
                connection = http.client.HTTPConnection(
                    target.address, target.port, timeout=self.timeout
                )
            self._open[key] = connection
        return connection

    def post(self, target: Target, body: bytes, headers: dict[str, str]) -> Answer:
        started = time.monotonic()
        host = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
        all_headers = {
            "Host": host,
            "Content-Type": "application/json",
            "User-Agent": "Relance-Webhooks/1",
            **headers,
        }
        for attempt in (1, 2):  # a kept-alive connection the peer closed: one fresh retry
            connection = self._connection(target)
            try:
                connection.request("POST", target.path, body=body, headers=all_headers)
                response = connection.getresponse()
                response.read(RESPONSE_MAX_BYTES)
                if response.will_close or not response.isclosed():
                    self._drop(target)
                return Answer(response.status, "", _ms(started))
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                self._drop(target)
                if attempt == 2:
                    return Answer(None, type(e).__name__, _ms(started))
            except (OSError, http.client.HTTPException) as e:
                self._drop(target)
                return Answer(None, (type(e).__name__ + ": " + str(e))[:300], _ms(started))
        raise AssertionError("unreachable")

    def _drop(self, target: Target) -> None:
        key = (target.scheme, target.address, target.port, target.host)
        connection = self._open.pop(key, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        for connection in self._open.values():
            connection.close()
        self._open.clear()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
