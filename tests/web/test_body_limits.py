"""Request bodies are limited per route, before and while they are read."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from portal import migrate
from portal.company.models import Company
from portal.invoices.pdf_files import PDF_MAX_BYTES
from portal.settings import Settings, load_settings
from portal.web.app import create_app
from portal.web.limits import FORM_MAX_BYTES, MULTIPART_OVERHEAD_BYTES, body_limits
from tests.conftest import TEST_SECRET
from tests.mail_sink import free_port
from tests.payments_live import serve

MB = 1024 * 1024
BOUNDARY = "relance-test-boundary"


def _settings(tmp_path: Path, **extra: str) -> Settings:
    return load_settings(
        {
            "PORTAL_ENVIRONMENT": "test",
            "PORTAL_SECRET_KEYS": TEST_SECRET,
            "PORTAL_BASE_URL": "http://testserver",
            "PORTAL_DOCUMENTS_DIR": str(tmp_path / "documents"),
            "PORTAL_ATTACHMENTS_DIR": str(tmp_path / "attachments"),
            "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'limits.db'}",
            **extra,
        }
    )


@pytest.fixture
def small(
    tmp_path: Path, session_factory: sessionmaker[Session], db: Session, company: Company
) -> Iterator[TestClient]:
    """Attachments of 100 kB, two at most: uploads may add up to about 264 kB."""
    settings = _settings(
        tmp_path, PORTAL_ATTACHMENT_MAX_BYTES="100000", PORTAL_ATTACHMENT_MAX_COUNT="2"
    )
    db.commit()
    app = create_app(settings, session_factory=session_factory)
    headers = {"Sec-Fetch-Site": "same-origin", "Accept-Language": "fr"}
    with TestClient(app, follow_redirects=False, headers=headers) as client:
        yield client


class Body:
    """A request body produced chunk by chunk, counting what the app has pulled."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.pulled = total, chunk, 0

    def __iter__(self) -> Iterator[bytes]:
        self.pulled += len(PART_HEAD)
        yield PART_HEAD
        while self.pulled < self.total:
            piece = b"x" * min(self.chunk, self.total - self.pulled)
            self.pulled += len(piece)
            yield piece


MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
PART_HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="attachment"; '
    'filename="big.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-'
).encode()


def post_streaming(
    client: TestClient, path: str, body: Body, headers: dict[str, str], cookie: str = ""
) -> tuple[int, dict[str, str], str]:
    """POST ``body`` to the app chunk by chunk, the way a server hands it over.

    (The TestClient reads a streamed body whole before the app sees it, so this drives
    the ASGI app itself: the app pulls each chunk, and ``body.pulled`` counts them.)"""
    chunks = iter(body)
    answer: dict[str, object] = {"body": b""}
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw += [(b"host", b"testserver"), (b"sec-fetch-site", b"same-origin")]
    raw += [(b"accept-language", b"fr")] + ([(b"cookie", cookie.encode())] if cookie else [])
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": raw,
        "client": ("192.0.2.1", 5000),
        "server": ("testserver", 80),
        "state": {},
    }

    async def receive() -> dict[str, object]:
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {
                k.decode(): v.decode()
                for k, v in message["headers"]  # type: ignore[attr-defined]
            }
        elif message["type"] == "http.response.body":
            answer["body"] = answer["body"] + message.get("body", b"")  # type: ignore[operator]

    assert client.portal is not None
    client.portal.call(client.app, scope, receive, send)
    return (
        int(answer["status"]),  # type: ignore[call-overload]
        answer["headers"],  # type: ignore[return-value]
        answer["body"].decode(),  # type: ignore[attr-defined]
    )


def test_the_limit_table_gives_each_kind_of_route_its_own_limit(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        PORTAL_ATTACHMENT_MAX_BYTES="1000000",
        PORTAL_ATTACHMENT_MAX_COUNT="3",
        PORTAL_IMPORT_MAX_BYTES="50000000",
    )
    limits = body_limits(settings)
    uploads = 3_000_000 + MULTIPART_OVERHEAD_BYTES
    assert limits.limit_for("/disputes") == uploads
    assert limits.limit_for("/cases/12/messages") == uploads
    assert limits.limit_for("/cases/12/accept") == FORM_MAX_BYTES
    assert limits.limit_for("/disputes/new") == FORM_MAX_BYTES
    assert limits.limit_for("/fresh-link") == FORM_MAX_BYTES
    assert limits.limit_for("/admin/login") == FORM_MAX_BYTES
    assert limits.limit_for("/webhooks/stripe") == 256 * 1024
    back_office = 2 * 50_000_000
    assert limits.limit_for("/admin/imports") == back_office
    assert limits.limit_for("/admin/imports/invoices/preview") == back_office
    invoice_form = 2 * PDF_MAX_BYTES
    assert limits.limit_for("/admin/customers/3/invoices/new") == invoice_form
    assert limits.limit_for("/admin/invoices/7/edit") == invoice_form
    assert limits.limit_for("/admin/invoices/7/edit/x") == FORM_MAX_BYTES
    assert limits.limit_for("/admin/invoices/7/cancel") == FORM_MAX_BYTES
    assert _settings(tmp_path).import_max_bytes == 200 * MB


def test_a_declared_length_over_the_limit_is_refused_without_reading(small: TestClient) -> None:
    body = Body(10 * MB)
    response = small.post(
        "/disputes", content=iter(body), headers={**MULTIPART, "Content-Length": str(10 * MB)}
    )
    assert response.status_code == 413
    assert body.pulled == 0  # not one byte read
    assert "Trop de données envoyées" in response.text  # the friendly page, in French
    assert response.headers["content-language"] == "fr"
    assert response.headers["connection"] == "close"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_a_chunked_upload_is_refused_once_it_passes_the_limit(small: TestClient) -> None:
    body = Body(10 * MB)
    status, _headers, text = post_streaming(
        small, "/disputes", body, MULTIPART, cookie="relance_session=not-a-session"
    )
    assert status == 413
    assert "Trop de données envoyées" in text
    # Read up to the limit (2 x 100 kB + 64 kB) and one chunk more, not the 10 MB.
    assert body.pulled <= 2 * 100_000 + MULTIPART_OVERHEAD_BYTES + body.chunk


def test_a_small_form_gets_a_small_limit_and_a_normal_one_still_works(small: TestClient) -> None:
    body = Body(2 * MB)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _headers, _text = post_streaming(small, "/fresh-link", body, headers)
    assert status == 413
    assert body.pulled <= FORM_MAX_BYTES + body.chunk
    fine = small.post("/fresh-link", data={"email": "nobody@example.com"})
    assert fine.status_code in (200, 303)


def test_a_webhook_over_its_limit_is_refused(small: TestClient) -> None:
    response = small.post("/webhooks/stripe", content=b"{" + b" " * (300 * 1024) + b"}")
    assert response.status_code == 413
    assert response.text == "payload too large"


def test_an_upload_without_a_session_is_answered_before_its_files_are_read(
    small: TestClient,
) -> None:
    body = Body(150_000)  # within the limit
    status, _headers, _text = post_streaming(small, "/disputes", body, MULTIPART)
    assert status == 401
    assert body.pulled == 0


# --- a real server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The app under uvicorn on a free port (default limits: 5 files of 5 MB)."""
    directory = tmp_path_factory.mktemp("limits")
    settings = _settings(directory)
    migrate.upgrade(settings.database_url)
    port = free_port()
    with serve(settings, port):
        yield port


def _send_until_answered(port: int, head: bytes, total: int) -> tuple[bytes, int]:
    """Send ``head`` then up to ``total`` bytes of chunked body, until the server answers.

    Returns (the answer's first bytes, body bytes handed to the socket by then)."""
    sent = 0
    piece = b"x" * (256 * 1024)
    frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + f"{len(PART_HEAD):x}\r\n".encode() + PART_HEAD + b"\r\n")
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                break
            if writable:
                try:
                    sock.settimeout(1)
                    sock.sendall(frame)
                    sent += len(piece)
                except (TimeoutError, BrokenPipeError, ConnectionResetError):
                    break  # the server stopped reading
        sock.settimeout(10)
        return sock.recv(4096), sent


def test_a_real_server_refuses_a_chunked_150_mb_dispute_after_the_limit(server: int) -> None:
    head = (
        "POST /disputes HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: same-origin\r\n"
        "Cookie: relance_session=not-a-session\r\nAccept-Language: en\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    answer, sent = _send_until_answered(server, head, 150 * MB)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    # 25 MB of files allowed; what the sockets buffer on top is far from the 150 MB.
    assert sent < 25 * MB + 16 * MB, sent


def test_a_real_server_answers_an_oversized_length_without_reading(server: int) -> None:
    head = (
        "POST /fresh-link HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: same-origin\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {150 * MB}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(head + b"email=")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"connection: close" in answer.lower()
