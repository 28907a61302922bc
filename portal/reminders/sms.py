"""SMS providers: a Twilio-compatible REST API, and a logging adapter for development."""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
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
    ``I-Twilio-Idempotency-Token`` so a retried request is not a second text.
    """

    def __init__(self, settings: SmsSettings) -> None:
        self.settings = settings

    def send(self, sms: Sms) -> str:
        s = self.settings
        url = f"{s.api_url}/2010-04-01/Accounts/{urllib.parse.quote(s.account_sid)}/Messages.json"
        body = urllib.parse.urlencode({"To": sms.to, "From": s.sender, "Body": sms.text}).encode()
        credentials = base64.b64encode(f"{s.account_sid}:{s.auth_token}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 - the configured provider's https URL
            url,
            data=body,
            method="POST",
            headers={
                "Authorization": f"Basic {credentials}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "I-Twilio-Idempotency-Token": sms.idempotency_key,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=s.timeout_seconds) as response:  # noqa: S310
                payload = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            detail = error.read()[:300].decode(errors="replace")
            # 4xx (bad number, unsubscribed...) will fail again; 429 and 5xx may not.
            permanent = 400 <= error.code < 500 and error.code not in (408, 429)
            raise DeliveryError(
                f"SMS provider answered {error.code}: {detail}", permanent=permanent
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise DeliveryError(f"SMS provider unreachable: {error}") from None
        sid = payload.get("sid") if isinstance(payload, dict) else None
        if not isinstance(sid, str) or not sid:
            raise DeliveryError("SMS provider answered without a message id")
        return sid


def sms_provider(settings: SmsSettings) -> SmsProvider:
    if settings.provider == "twilio":
        return TwilioSmsProvider(settings)
    return LoggingSmsProvider()
