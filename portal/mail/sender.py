"""Composing emails from templates and handing them to SMTP (or a local folder)."""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.charset import QP, Charset
from email.header import Header
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import compat32
from email.utils import formataddr, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from jinja2 import Environment

from portal import clock
from portal.settings import SmtpSettings
from portal.templating import render_email_parts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str
    message_id: str
    # The From header; empty: the mailer's (the company's sender, else PORTAL_SMTP_SENDER).
    sender: str = ""
    # For the company's customers: the name shown in From when the mailer's sender has only
    # the product's default name (company_sender).
    sender_name: str = ""


# PORTAL_SMTP_SENDER's name until someone configures one: never what a customer should see.
DEFAULT_SENDER_NAME = "Relance"


def company_sender(sender: str, company_name: str) -> str:
    """``sender``'s address under the company's name, unless a name was chosen for it:
    "Relance <no-reply@acme.example>" -> "Acme SAS <no-reply@acme.example>"."""
    name, address = parseaddr(sender)
    if name and name != DEFAULT_SENDER_NAME:
        return sender
    return formataddr((company_name, address))


def compose(
    env: Environment,
    name: str,
    to: str,
    locale: str,
    sender_domain: str,
    *,
    sender_name: str = "",
    region: str = "",
    **context: Any,
) -> OutgoingEmail:
    """Render templates/email/<name>/{subject.txt,body.txt,body.html} in ``locale``
    (``templating.render_email_parts``: values escaped in the HTML part only).
    ``sender_name``: the company's, for an email to its customers (``company_sender``);
    ``region``: the reader's country, for its dates (``i18n.regional``)."""
    subject, text, html = render_email_parts(env, name, locale, context, region)
    return OutgoingEmail(
        to, subject, text, html, make_msgid(domain=sender_domain), sender_name=sender_name
    )


def to_mime(email: OutgoingEmail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = email.sender or sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Message-ID"] = email.message_id
    message["Date"] = clock.now().strftime("%a, %d %b %Y %H:%M:%S +0000")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


# Quoted-printable for the bodies and encoded words for the headers: mostly-ASCII French or
# English text stays readable in the source and short.
_UTF8_QP = Charset("utf-8")
_UTF8_QP.header_encoding = QP
_UTF8_QP.body_encoding = QP
_WIRE = compat32.clone(linesep="\r\n")


def wire_bytes(email: OutgoingEmail, sender: str) -> tuple[str, str, bytes] | None:
    """(envelope sender, recipient, the message as sent) built with the email package's
    compat32 API, which costs a quarter of ``to_mime``'s (the header registry parses every
    header it is given); the same headers and parts. None when an address is not ASCII:
    ``to_mime`` and ``send_message`` then handle it (SMTPUTF8)."""
    name, address = parseaddr(email.sender or sender)
    if not (address.isascii() and email.to.isascii()):
        return None
    message = MIMEMultipart("alternative")
    message["From"] = formataddr((name, address), charset=_UTF8_QP)
    message["To"] = email.to
    # A Header is folded in encoded words at flattening (the stubs only know strings).
    subject: Any = email.subject
    if not subject.isascii():
        subject = Header(subject, _UTF8_QP, 0, "Subject")
    message["Subject"] = subject
    message["Message-ID"] = email.message_id
    message["Date"] = clock.now().strftime("%a, %d %b %Y %H:%M:%S +0000")
    message["Auto-Submitted"] = "auto-generated"
    message.attach(_text_part(email.text, "plain"))
    message.attach(_text_part(email.html, "html"))
    return address, email.to, message.as_bytes(policy=_WIRE)


def _text_part(text: str, subtype: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part.set_payload(text, _UTF8_QP)  # sets Content-Transfer-Encoding: quoted-printable
    return part


class Mailer:
    """Sends through SMTP when a host is configured; otherwise writes .eml files to a folder."""

    def __init__(self, smtp: SmtpSettings, spool_dir: Path) -> None:
        self.smtp = smtp
        self.spool_dir = spool_dir
        # The sender admins set in the back office (web.site_config), read at each send.
        self.sender_source: Callable[[], str] | None = None
        self._context: ssl.SSLContext | None = None

    def _tls_context(self) -> ssl.SSLContext:
        # Loading the system's CA certificates takes tens of milliseconds: once per mailer.
        if self._context is None:
            self._context = ssl.create_default_context()
        return self._context

    def sender(self) -> str:
        return (self.sender_source() if self.sender_source else "") or self.smtp.sender

    def send(self, email: OutgoingEmail) -> None:
        """One message over its own connection (receipts, case emails: one at a time)."""
        with self.connection() as connection:
            connection.send(email)

    def connection(self) -> MailConnection:
        """A connection that stays open for many messages: the outbox's batches."""
        return MailConnection(self)

    def _spool(self, email: OutgoingEmail, message: EmailMessage) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        name = email.message_id.strip("<>").replace("@", "_").replace("/", "_")
        (self.spool_dir / f"{name}.eml").write_bytes(bytes(message))
        log.info("email to %s spooled in %s (no SMTP host configured)", email.to, self.spool_dir)

    def _open(self) -> smtplib.SMTP:
        smtp_class = smtplib.SMTP_SSL if self.smtp.security == "tls" else smtplib.SMTP
        kwargs: dict[str, Any] = {"timeout": self.smtp.timeout_seconds}
        if self.smtp.security == "tls":
            kwargs["context"] = self._tls_context()
        client = smtp_class(self.smtp.host, self.smtp.port, **kwargs)
        try:
            if self.smtp.security == "starttls":
                client.starttls(context=self._tls_context())
            if self.smtp.username:
                client.login(self.smtp.username, self.smtp.password)
        except BaseException:
            client.close()
            raise
        return client


# An SMTP server drops idle clients after a few minutes: check with NOOP after this pause.
IDLE_CHECK_SECONDS = 15.0


class MailConnection:
    """One SMTP session reused across messages (connecting, TLS and login cost more than a
    message on a nearby server). A refusal of one message (its recipient, its content)
    leaves the session usable, since smtplib resets it; a broken connection is closed and
    the next message opens a new one. Use as a context manager, or ``close()``."""

    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer
        self._client: smtplib.SMTP | None = None
        self._last_used = 0.0

    def __enter__(self) -> MailConnection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def send(self, email: OutgoingEmail) -> None:
        """Raises smtplib's errors (OSError subclasses) as ``smtplib.SMTP.send_message``."""
        sender = self.mailer.sender()
        if email.sender_name:
            sender = company_sender(sender, email.sender_name)
        if not self.mailer.smtp.enabled:
            self.mailer._spool(email, to_mime(email, sender))
            return
        wire = wire_bytes(email, sender)
        client = self._ready()
        try:
            if wire is None:
                client.send_message(to_mime(email, sender))
            else:
                client.sendmail(wire[0], [wire[1]], wire[2])
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as error:
            # smtplib reset the session: it stays usable, unless the server is closing it.
            if getattr(error, "smtp_code", 0) == 421:
                self.close()
            raise
        except OSError:
            self.close()
            raise
        self._last_used = time.monotonic()

    def _ready(self) -> smtplib.SMTP:
        if self._client is not None and time.monotonic() - self._last_used > IDLE_CHECK_SECONDS:
            try:
                code, _ = self._client.noop()
                if code != 250:
                    self.close()
            except OSError:
                self.close()
        if self._client is None:
            self._client = self.mailer._open()
            self._last_used = time.monotonic()
        return self._client

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except OSError:
            client.close()
