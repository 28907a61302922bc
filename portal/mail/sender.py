"""Composing emails from templates and handing them to SMTP (or a local folder)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
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

    def send(self, email: OutgoingEmail) -> None:
        sender = (self.sender_source() if self.sender_source else "") or self.smtp.sender
        if email.sender_name:
            sender = company_sender(sender, email.sender_name)
        message = to_mime(email, sender)
        if not self.smtp.enabled:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            name = email.message_id.strip("<>").replace("@", "_").replace("/", "_")
            (self.spool_dir / f"{name}.eml").write_bytes(bytes(message))
            log.info(
                "email to %s spooled in %s (no SMTP host configured)", email.to, self.spool_dir
            )
            return
        smtp_class = smtplib.SMTP_SSL if self.smtp.security == "tls" else smtplib.SMTP
        kwargs: dict[str, Any] = {"timeout": self.smtp.timeout_seconds}
        if self.smtp.security == "tls":
            kwargs["context"] = self._tls_context()
        with smtp_class(self.smtp.host, self.smtp.port, **kwargs) as client:
            if self.smtp.security == "starttls":
                client.starttls(context=self._tls_context())
            if self.smtp.username:
                client.login(self.smtp.username, self.smtp.password)
            client.send_message(message)
