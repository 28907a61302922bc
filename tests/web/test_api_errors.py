"""Every error of the API answers ``application/problem+json``, even those its handlers never
see: an unknown path or method, a body too large, a crash, an overloaded worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

from portal.web import errors
from portal.web.api import framework
from portal.web.limits import API_BODY_MAX_BYTES

PREFIX = "/api/v1"
PROBLEM = "application/problem+json"


def _is_problem(answer: object, status: int, kind: str) -> dict[str, object]:
    assert answer.status_code == status, answer.text  # type: ignore[attr-defined]
    assert answer.headers["content-type"] == PROBLEM  # type: ignore[attr-defined]
    body: dict[str, object] = answer.json()  # type: ignore[attr-defined]
    assert body["status"] == status
    assert str(body["type"]).endswith("/" + kind)
    return body


def test_a_body_over_the_limit_is_a_problem_before_and_while_it_is_read(api: TestClient) -> None:
    big = b'{"reference": "' + b"x" * API_BODY_MAX_BYTES + b'"}'
    declared = api.post(
        f"{PREFIX}/customers", content=big, headers={"Content-Type": "application/json"}
    )
    _is_problem(declared, 413, "too-large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it is read
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    streamed = api.post(
        f"{PREFIX}/customers", content=chunks(), headers={"Content-Type": "application/json"}
    )
    _is_problem(streamed, 413, "too-large")
    # Under the limit, the same route answers as usual.
    fine = api.post(f"{PREFIX}/customers", json={"reference": "C-1", "name": "x" * 100})
    assert fine.status_code == 201


def test_unknown_paths_and_methods_are_problems(api: TestClient) -> None:
    _is_problem(api.get(f"{PREFIX}/nothing-here"), 404, "not-found")
    _is_problem(api.get("/api/v2/customers"), 404, "not-found")
    wrong = api.delete(f"{PREFIX}/invoices")
    _is_problem(wrong, 405, "method-not-allowed")
    assert set(wrong.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST"}
    head = api.head(f"{PREFIX}/customers")
    assert (head.status_code, head.content) == (200, b"")
    french = api.get(f"{PREFIX}/nothing-here", headers={"Accept-Language": "fr"})
    assert french.json()["title"] == "Introuvable."
    _is_problem(api.get(f"{PREFIX}/customers", headers={"Authorization": ""}), 401, "unauthorized")
    # The back office's pages are still pages.
    assert api.get("/admin/nothing-here").headers["content-type"].startswith("text/html")


def test_a_crash_is_a_problem_without_a_trace(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(framework, "authenticate", broken)
    crashing = TestClient(api.app, raise_server_exceptions=False, headers=dict(api.headers))
    answer = crashing.get(f"{PREFIX}/customers")
    body = _is_problem(answer, 500, "server-error")
    assert "database" not in answer.text
    assert "detail" in body


def test_an_overloaded_worker_refuses_api_calls_with_a_problem(api: TestClient) -> None:
    request = Request(
        {
            "type": "http",
            "method": "GET",
            "path": f"{PREFIX}/customers",
            "headers": [],
            "query_string": b"",
            "app": api.app,
        }
    )
    refused = errors.busy_page(request)
    assert (refused.status_code, refused.media_type) == (503, PROBLEM)
    assert refused.headers["Retry-After"] == "1"
