"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives.

Emails leave the web app in background tasks, after the response: a test never counts an
inbox at an instant while something may still be on its way. It takes a ``mark()`` before
acting and waits, with a deadline, for the message it expects (recipient, subject, content)
among those that arrived after the mark.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

Match = Callable[[EmailMessage], bool]
WAIT_SECONDS = 15.0


class Inbox:
    """aiosmtpd handler; thread-safe, since aiosmtpd runs its own loop in a thread."""

    def __init__(self) -> None:
        self._messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self._messages.append(message)
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return list(self._messages)

    def mark(self) -> int:
        """How many messages have arrived so far: ``since`` for the waits that follow."""
        with self._lock:
            return len(self._messages)

    def received(
        self, to: str, *, subject: str = "", since: int = 0, where: Match | None = None
    ) -> list[EmailMessage]:
        """Messages that arrived after ``since``, to ``to``, with ``subject`` in their subject,
        that ``where`` accepts."""
        return [
            m
            for m in self.messages[since:]
            if to.lower() in str(m["To"]).lower()
            and subject in str(m["Subject"])
            and (where is None or where(m))
        ]

    def wait_for_message(
        self,
        to: str,
        *,
        subject: str = "",
        since: int = 0,
        where: Match | None = None,
        timeout: float = WAIT_SECONDS,
    ) -> EmailMessage:
        """The first message ``received(...)`` finds, polling until the deadline; fails with
        what did arrive if none comes."""
        deadline = time.monotonic() + timeout
        while not (found := self.received(to, subject=subject, since=since, where=where)):
            if time.monotonic() > deadline:
                arrived = "\n".join(f"  {m['To']}: {m['Subject']}" for m in self.messages[since:])
                raise AssertionError(
                    f"no email to {to} (subject containing {subject!r}) within {timeout}s; "
                    f"arrived since:\n{arrived or '  nothing'}"
                )
            time.sleep(0.02)
        return found[0]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[EmailMessage]:
        """All messages once there are ``count``; for in-process test clients, which return
        only after the background tasks (and so the emails) are done."""
        deadline = time.monotonic() + timeout
        while self.mark() < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def text_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]
