"""The API: upserts through the same services as forms and imports, idempotent replay, key
scopes and revocation, problems per field, portal links, holds, the rate limit."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.api.models import ApiKey
from portal.customers.models import Customer
from portal.payments.models import Payment
from portal.timeline.models import TimelineEvent
from portal.web.api.ratelimit import RateLimiter
from tests.web.api_helpers import customer_body, invoice_body

PREFIX = "/api/v1"


def test_customers_and_invoices_are_upserted_by_the_companys_references(
    api: TestClient, db: Session
) -> None:
    created = api.post(
        f"{PREFIX}/customers",
        json=customer_body(contacts=[{"name": "Ana", "email": "ana@client.example"}]),
    )
    assert created.status_code == 201, created.text
    assert created.json()["outcome"] == "created"
    customer_id = created.json()["customer"]["id"]
    again = api.post(
        f"{PREFIX}/customers",
        json=customer_body(contacts=[{"name": "Ana", "email": "ana@client.example"}]),
    )
    assert (again.status_code, again.json()["outcome"]) == (200, "unchanged")
    renamed = api.post(f"{PREFIX}/customers", json=customer_body(name="Client renamed"))
    assert renamed.json()["outcome"] == "changed"
    assert renamed.json()["customer"]["contacts"][0]["email"] == "ana@client.example"

    invoice = api.post(f"{PREFIX}/invoices", json=invoice_body("F-1"))
    assert invoice.status_code == 201, invoice.text
    body = invoice.json()["invoice"]
    assert (body["customer_id"], body["remaining_minor"], body["status"]) == (
        customer_id,
        12_000,
        "open",
    )
    raised = api.post(f"{PREFIX}/invoices", json=invoice_body("F-1", amount_minor=15_000))
    assert raised.json()["outcome"] == "changed"
    actions = list(
        db.scalars(
            select(TimelineEvent.action)
            .where(TimelineEvent.customer_id == customer_id)
            .order_by(TimelineEvent.id)
        )
    )
    assert actions.count("invoice.created") == 1
    assert "invoice.updated" in actions
    assert api.get(f"{PREFIX}/invoices/{body['id']}").json()["amount_minor"] == 15_000


def test_a_retried_post_with_its_idempotency_key_returns_the_first_answer(
    api: TestClient, db: Session
) -> None:
    api.post(f"{PREFIX}/customers", json=customer_body())
    api.post(f"{PREFIX}/invoices", json=invoice_body("F-9"))
    payment = {
        "customer_reference": "C-001",
        "amount_minor": 5_000,
        "currency": "EUR",
        "method": "transfer",
        "reference": "VIR-77",
        "received_on": "2026-11-20",
        "invoice_numbers": ["F-9"],
    }
    first = api.post(f"{PREFIX}/payments", json=payment, headers={"Idempotency-Key": "pay-77"})
    assert first.status_code == 201, first.text
    replay = api.post(f"{PREFIX}/payments", json=payment, headers={"Idempotency-Key": "pay-77"})
    assert (replay.status_code, replay.text) == (first.status_code, first.text)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert db.scalar(select(func.count()).select_from(Payment)) == 1
    other = api.post(
        f"{PREFIX}/payments",
        json={**payment, "amount_minor": 6_000},
        headers={"Idempotency-Key": "pay-77"},
    )
    assert other.status_code == 422
    assert other.json()["type"].endswith("idempotency-key-reused")
    # A link minted twice with one key is one link.
    link = {"customer_reference": "C-001"}
    one = api.post(f"{PREFIX}/portal-links", json=link, headers={"Idempotency-Key": "l-1"})
    two = api.post(f"{PREFIX}/portal-links", json=link, headers={"Idempotency-Key": "l-1"})
    assert one.json()["url"] == two.json()["url"]
    issued = db.scalar(
        select(func.count()).select_from(TimelineEvent).where(TimelineEvent.action == "link.issued")
    )
    assert issued == 1


def test_a_failed_request_stores_nothing_under_its_key(api: TestClient) -> None:
    bad = api.post(
        f"{PREFIX}/invoices", json=invoice_body("F-2"), headers={"Idempotency-Key": "k-2"}
    )
    assert bad.status_code == 422  # no customer C-001 yet
    api.post(f"{PREFIX}/customers", json=customer_body())
    good = api.post(
        f"{PREFIX}/invoices", json=invoice_body("F-2"), headers={"Idempotency-Key": "k-2"}
    )
    assert good.status_code == 201


def test_errors_are_problem_details_with_one_entry_per_field_in_the_callers_language(
    api: TestClient,
) -> None:
    answer = api.post(
        f"{PREFIX}/invoices",
        json={
            "number": "",
            "customer_reference": "C-404",
            "issue_date": "soon",
            "currency": "EUR",
            "amount_minor": 0,
            "colour": "red",
        },
        headers={"Accept-Language": "fr"},
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert (problem["status"], problem["title"]) == (422, "La requête n’est pas valide.")
    assert problem["type"].endswith("/validation")
    pointers = {e["pointer"]: e["detail"] for e in problem["errors"]}
    assert pointers == {
        "#/number": "Saisissez une valeur.",
        "#/issue_date": "Saisissez une date au format AAAA-MM-JJ.",
        "#/due_date": "Ce champ est obligatoire.",
        "#/amount_minor": "Saisissez un nombre d’au moins 1.",
        "#/colour": "Ce champ est inconnu.",
    }
    api.headers["Accept-Language"] = "en"
    domain = api.post(f"{PREFIX}/invoices", json=invoice_body("F-3", customer_reference="C-404"))
    assert domain.json()["errors"] == [
        {"detail": "No customer has this reference.", "pointer": "#/customer_reference"}
    ]
    assert (
        api.post(
            f"{PREFIX}/customers",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        ).status_code
        == 400
    )
    assert (
        api.post(
            f"{PREFIX}/customers", content=b"a=b", headers={"Content-Type": "text/plain"}
        ).status_code
        == 415
    )
    assert api.get(f"{PREFIX}/invoices/99999999").status_code == 404
    cursor = api.get(f"{PREFIX}/invoices", params={"cursor": "garbage!"})
    assert cursor.json()["errors"][0]["parameter"] == "cursor"


def test_keys_are_scoped_and_revocation_takes_effect_at_once(
    api: TestClient, read_key: str, db: Session
) -> None:
    reader = {"Authorization": f"Bearer {read_key}"}
    assert api.get(f"{PREFIX}/customers", headers=reader).status_code == 200
    refused = api.post(f"{PREFIX}/customers", json=customer_body(), headers=reader)
    assert refused.status_code == 403
    # The key is checked before the body: without the right to write, nothing more is said.
    assert api.post(f"{PREFIX}/customers", json={}, headers=reader).status_code == 403
    anonymous = {"Authorization": "Bearer rk_unknown"}
    assert api.post(f"{PREFIX}/customers", json={}, headers=anonymous).status_code == 401
    assert db.scalar(select(func.count()).select_from(Customer)) == 0
    assert (
        api.get(f"{PREFIX}/customers", headers={"Authorization": "Bearer rk_nope"}).status_code
        == 401
    )
    no_key = api.get(f"{PREFIX}/customers", headers={"Authorization": ""})
    assert no_key.status_code == 401
    assert "Bearer" in no_key.headers["WWW-Authenticate"]
    key = db.scalars(select(ApiKey).where(ApiKey.name == "BI")).one()
    assert key.last_used_at is not None  # shown in the back office
    from portal.api.keys import revoke_key

    revoke_key(db, key, key.created_by_user_id)
    db.commit()
    assert api.get(f"{PREFIX}/customers", headers=reader).status_code == 401


def test_a_portal_link_minted_through_the_api_opens_the_portal_on_its_invoices(
    api: TestClient,
) -> None:
    api.post(f"{PREFIX}/customers", json=customer_body())
    api.post(f"{PREFIX}/invoices", json=invoice_body("F-10"))
    api.post(f"{PREFIX}/invoices", json=invoice_body("F-11"))
    link = api.post(
        f"{PREFIX}/portal-links",
        json={"customer_reference": "C-001", "invoice_numbers": ["F-11"], "lifetime_days": 7},
    )
    assert link.status_code == 201, link.text
    url = link.json()["url"]
    assert url.startswith("http://testserver/l/")
    api.headers.pop("Authorization")
    opened = api.get(url.removeprefix("http://testserver"))
    assert opened.status_code == 303
    home = api.get("/")
    assert "F-11" in home.text
    assert "F-10" not in home.text


def test_holds_pause_and_resume_a_customers_reminders(api: TestClient, db: Session) -> None:
    customer_id = api.post(f"{PREFIX}/customers", json=customer_body()).json()["customer"]["id"]
    api.post(f"{PREFIX}/invoices", json=invoice_body("F-20"))
    paused = api.post(
        f"{PREFIX}/customers/{customer_id}/reminders/pause", json={"until": "2099-01-01"}
    )
    assert paused.status_code == 422  # more than a year ahead
    from portal import clock

    until = (clock.now().date()).isoformat()
    paused = api.post(f"{PREFIX}/customers/{customer_id}/reminders/pause", json={"until": until})
    assert paused.json()["reminders_paused_until"] == until
    one = api.post(
        f"{PREFIX}/customers/{customer_id}/reminders/pause",
        json={"until": until, "invoice_number": "F-20"},
    )
    assert one.json()["invoice_number"] == "F-20"
    resumed = api.post(f"{PREFIX}/customers/{customer_id}/reminders/resume", json={})
    assert resumed.json()["reminders_paused_until"] is None
    timeline = api.get(f"{PREFIX}/customers/{customer_id}/timeline").json()["data"]
    assert [e["action"] for e in timeline].count("reminders.paused") == 2


def test_each_key_is_rate_limited_with_retry_after(api: TestClient, read_key: str) -> None:
    now = [6_000_000.0 + 40]  # 40 seconds into a minute
    api.app.state.api_rate_limiter = RateLimiter(3, clock=lambda: now[0])  # type: ignore[attr-defined]
    for _ in range(3):
        assert api.get(f"{PREFIX}/customers").status_code == 200
    limited = api.get(f"{PREFIX}/customers")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "20"  # the rest of the minute
    assert limited.headers["content-type"] == "application/problem+json"
    # Another key has its own budget.
    assert (
        api.get(f"{PREFIX}/customers", headers={"Authorization": f"Bearer {read_key}"}).status_code
        == 200
    )
    now[0] += 20
    assert api.get(f"{PREFIX}/customers").status_code == 200


def test_the_openapi_document_and_its_readable_page(api: TestClient) -> None:
    spec = api.get(f"{PREFIX}/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert f"{PREFIX}/invoices" in spec["paths"]
    page = api.get(f"{PREFIX}/docs")
    assert page.status_code == 200
    assert "POST /api/v1/portal-links" in page.text
