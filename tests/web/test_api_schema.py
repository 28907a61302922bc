"""Schemathesis against the app's own /api/v1/openapi.json: no 5xx, every answer conforms."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.testclient import TestClient

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_the_api_survives_schemathesis_and_answers_as_its_schema_says(
    api: TestClient, write_key: str
) -> None:
    schema = schemathesis.openapi.from_dict(api.get("/api/v1/openapi.json").json())
    api.post("/api/v1/customers", json={"reference": "C-001", "name": "Known"})
    failures: list[str] = []
    statuses: list[int] = []
    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(
            max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(case=op.as_strategy())
        def run(case: schemathesis.Case) -> None:
            sent = case.as_transport_kwargs(
                base_url="http://testserver", headers={"Authorization": f"Bearer {write_key}"}
            )
            body = sent.get("json")
            response = api.request(
                sent["method"],
                sent["url"],
                params=sent.get("params"),
                headers=sent.get("headers"),
                content=sent.get("data") if body is None else None,
                json=body,
            )
            statuses.append(response.status_code)
            for check in CHECKS:
                try:
                    case.validate_response(response, checks=[check])
                except AssertionError as error:
                    failures.append(f"{case.method} {case.formatted_path}: {error}")
                    raise

        try:
            run()
        except AssertionError:
            continue
    assert failures == [], "\n\n".join(failures[:5])
    assert len(statuses) > 100
    assert {200, 201, 422} <= set(statuses)
