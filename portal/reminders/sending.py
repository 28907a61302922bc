"""Handing claimed messages to their channel, over connections kept open for a batch."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from portal.mail.sender import MailConnection, Mailer, OutgoingEmail
from portal.reminders.letters import RegisteredLetter, RegisteredMailProvider
from portal.reminders.models import Channel
from portal.reminders.sms import DeliveryError, Sms, SmsProvider


@dataclass(frozen=True)
class Delivery:
    """A claimed message, rendered, to send after the claim commits."""

    message_id: int
    channel: Channel
    recipient: str
    subject: str
    text: str
    html: str
    mime_message_id: str
    letter_pdf: bytes = b""
    # A registered letter for the postal provider (PORTAL_REMINDER_REGISTERED_LETTERS=local).
    registered: bool = False
    # The row as claimed, so that recording needs no read first.
    company_id: int = 0
    customer_id: int = 0
    step: str = ""
    planned_channel: str = ""
    attempt: int = 0


@dataclass(frozen=True)
class Outcome:
    ok: bool
    external_id: str = ""
    error: str = ""
    permanent: bool = False
    # Not attempted (the batch ran out of its lease): back to the queue, no attempt counted.
    deferred: bool = False


DEFERRED = Outcome(False, error="not attempted within the lease", deferred=True)


class Connections:
    """The channels' connections of one worker, opened on first use and reused across
    messages and batches until ``close()`` (the worker closes them when the queue is idle)."""

    def __init__(
        self,
        mailer: Mailer,
        sms: SmsProvider,
        letters_dir: Path,
        *,
        sender_name: str = "",
        registered_mail: Callable[[], RegisteredMailProvider] | None = None,
    ) -> None:
        self.mailer = mailer
        self.sms = sms
        self.letters_dir = letters_dir
        # Reminders go out under the company's name (mail.sender.company_sender).
        self.sender_name = sender_name
        self.registered_mail = registered_mail
        self._mail: MailConnection | None = None

    def send(self, delivery: Delivery) -> Outcome:
        """Never raises for delivery problems: they become the outcome."""
        try:
            if delivery.channel is Channel.EMAIL:
                if self._mail is None:
                    self._mail = self.mailer.connection()
                self._mail.send(
                    OutgoingEmail(
                        delivery.recipient,
                        delivery.subject,
                        delivery.text,
                        delivery.html,
                        delivery.mime_message_id,
                        sender_name=self.sender_name,
                    )
                )
                return Outcome(True, delivery.mime_message_id)
            if delivery.channel is Channel.SMS:
                sid = self.sms.send(
                    Sms(delivery.recipient, delivery.text, f"reminder-{delivery.message_id}")
                )
                return Outcome(True, sid)
            path = letter_path(self.letters_dir, delivery.message_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(delivery.letter_pdf)
            temporary.replace(path)  # the same file whatever the attempt: idempotent
            if delivery.registered and self.registered_mail is not None:
                tracking = self.registered_mail().send(
                    RegisteredLetter(
                        delivery.message_id,
                        delivery.recipient,
                        [],
                        delivery.letter_pdf,
                        f"reminder-{delivery.message_id}",
                    )
                )
                return Outcome(True, tracking)
            return Outcome(True, path.name)
        except DeliveryError as error:
            return Outcome(False, error=str(error), permanent=error.permanent)
        except smtplib.SMTPRecipientsRefused as error:
            # 5xx: this address will not take it (a bounce); 4xx (greylisting, a full
            # mailbox): later.
            codes = [code for code, _ in error.recipients.values()]
            return Outcome(
                False, error=f"refused: {error}", permanent=bool(codes) and min(codes) >= 500
            )
        except OSError as error:  # other smtplib errors, timeouts, connection refused
            return Outcome(False, error=f"{type(error).__name__}: {error}")

    def close(self) -> None:
        mail, self._mail = self._mail, None
        if mail is not None:
            mail.close()
        close_sms = getattr(self.sms, "close", None)
        if close_sms is not None:
            close_sms()


def letter_path(letters_dir: Path, message_id: int) -> Path:
    return letters_dir / f"reminder-{message_id}.pdf"
