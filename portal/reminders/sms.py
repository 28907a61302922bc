"""SMS providers: a Twilio-compatible REST API, and a logging adapter for development."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Protocol

from portal.settings import SmsSettings

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A send failed. ``permanent``: retrying cannot help (a refused recipient: a bounce)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Sms:
    to: str
    text: str
    idempotency_key: str


class SmsProvider(Protocol):
    def send(self, sms: Sms) -> str:
        """Send; return the provider's id for the message. Raises DeliveryError."""


class LoggingSmsProvider:
    """Development: logs the text instead of sending it (the outbox viewer shows it)."""

    def send(self, sms: Sms) -> str:
        log.info("SMS to %s (not sent, development): %s", sms.to, sms.text)
        return f"logged-{sms.idempotency_key}"


class TwilioSmsProvider:
    """POST {api_url}/2010-04-01/Accounts/{sid}/Messages.json, form-encoded, basic auth.

    Works with Twilio and the providers that copy its API. The outbox row's key goes in
    ``I-Twilio-Idempotency-Token`` so a retried request is not a second text. The HTTP
    connection is kept alive between texts (one per thread): a TLS handshake per text
    would cost more than the text.
    """

    def __init__(self, settings: SmsSettings) -> None:
        self.settings = settings
        parts = urllib.parse.urlsplit(settings.api_url)
        self._https = parts.scheme == "https"
        self._host = parts.netloc
        self._path = (
            f"{parts.path.rstrip('/')}/2010-04-01/Accounts/"
            f"{urllib.parse.quote(settings.account_sid)}/Messages.json"
        )
        credentials = f"{settings.account_sid}:{settings.auth_token}".encode()
        self._authorization = f"Basic {base64.b64encode(credentials).decode()}"
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            timeout = self.settings.timeout_seconds
            connection = (
                http.client.HTTPSConnection(self._host, timeout=timeout)
                if self._https
                else http.client.HTTPConnection(self._host, timeout=timeout)
            )
            self._local.connection = connection
        return connection

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    def send(self, sms: Sms) -> str:
        s = self.settings
        body = urllib.parse.urlencode({"To": sms.to, "From": s.sender, "Body": sms.text})
        headers = {
            "Authorization": self._authorization,
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "I-Twilio-Idempotency-Token": sms.idempotency_key,
        }
        try:
            status, raw = self._post(body.encode(), headers)
        except (OSError, http.client.HTTPException) as error:
            raise DeliveryError(f"SMS provider unreachable: {error}") from None
        if status >= 400:
            detail = raw[:300].decode(errors="replace")
            # 4xx (bad number, unsubscribed...) will fail again; 429 and 5xx may not.
            permanent = 400 <= status < 500 and status not in (408, 429)
            raise DeliveryError(f"SMS provider answered {status}: {detail}", permanent=permanent)
        try:
            payload = json.loads(raw or b"{}")
        except ValueError as error:
            raise DeliveryError(f"SMS provider answered no JSON: {error}") from None
        sid = payload.get("sid") if isinstance(payload, dict) else None
        if not isinstance(sid, str) or not sid:
            raise DeliveryError("SMS provider answered without a message id")
        return sid

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.request("POST", self._path, body=body, headers=headers)
                response = connection.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the provider closed meanwhile: once more on a
                # new one (the idempotency key makes a repeat harmless).
                self.close()
                if attempt == 2:
                    raise
                continue
            except BaseException:
                self.close()
                raise
            if response.will_close:
                self.close()
            return response.status, raw
        raise AssertionError("unreachable")


def sms_provider(settings: SmsSettings) -> SmsProvider:
    if settings.provider == "twilio":
        return TwilioSmsProvider(settings)
    return LoggingSmsProvider()
