"""Issuing, opening, revoking and re-sending portal links."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from portal import clock
from portal.access import service as access
from portal.customers.models import Contact, Customer
from portal.invoices import service as invoices
from portal.links.errors import LinkRejected, TooManyRequests, UnknownCustomer, UnknownInvoice
from portal.links.models import FreshLinkRequest, LinkScope
from portal.links.tokens import LinkClaims, LinkExpired, LinkInvalid, LinkSigner
from portal.timeline.models import Actor
from portal.timeline.service import record

LINK_PATH = "/l/"


def link_url(base_url: str, token: str) -> str:
    return f"{base_url}{LINK_PATH}{token}"


def find_customer(session: Session, company_id: int, reference: str) -> Customer:
    customer = session.scalar(
        select(Customer).where(Customer.company_id == company_id, Customer.reference == reference)
    )
    if customer is None:
        raise UnknownCustomer(reference)
    return customer


def issue_link(
    session: Session,
    signer: LinkSigner,
    base_url: str,
    customer: Customer,
    *,
    invoice_numbers: Sequence[str] = (),
    actor: Actor = Actor.SYSTEM,
    actor_id: str | None = None,
    purpose: str = "manual",
    lifetime_days: int | None = None,
) -> str:
    """A fresh signed URL for ``customer``, optionally limited to some invoices."""
    scope_id = None
    if invoice_numbers:
        wanted = list(dict.fromkeys(invoice_numbers))
        found = invoices.ids_by_number(session, wanted, customer_id=customer.id)
        missing = [n for n in wanted if n not in found]
        if missing:
            raise UnknownInvoice(missing)
        scope = LinkScope(
            customer_id=customer.id,
            invoice_ids=sorted(found[n] for n in wanted),
            created_at=clock.now(),
        )
        session.add(scope)
        session.flush()
        scope_id = scope.id
    token = signer.sign(LinkClaims(customer.id, customer.link_version, scope_id, lifetime_days))
    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=actor,
        actor_id=actor_id,
        action="link.issued",
        subject_type="customer",
        subject_id=customer.id,
        details={
            "purpose": purpose,
            "invoices": list(invoice_numbers),
            "lifetime_days": lifetime_days,
        },
    )
    return link_url(base_url, token)


def issue_reminder_link(
    signer: LinkSigner, base_url: str, customer: Customer, events: list[dict[str, object]]
) -> str:
    """A fresh unscoped link for a reminder, its ``link.issued`` event appended to
    ``events`` for the caller to write with the rest of its batch
    (``timeline.service.record_many``): the outbox issues one per message it claims."""
    token = signer.sign(LinkClaims(customer.id, customer.link_version, None, None))
    events.append(
        {
            "company_id": customer.company_id,
            "customer_id": customer.id,
            "actor": Actor.SYSTEM,
            "actor_id": None,
            "action": "link.issued",
            "subject_type": "customer",
            "subject_id": customer.id,
            "details": {"purpose": "reminder", "invoices": [], "lifetime_days": None},
        }
    )
    return link_url(base_url, token)


@dataclass(frozen=True)
class OpenedLink:
    session_secret: str
    customer: Customer


def open_link(
    session: Session,
    signer: LinkSigner,
    token: str,
    *,
    client_ip: str | None,
    user_agent: str | None,
) -> OpenedLink:
    """Check a token and start a portal session; raises LinkRejected."""
    try:
        claims = signer.verify(token)
    except LinkExpired as expired:
        raise LinkRejected("expired", expired.claims.customer_id) from None
    except LinkInvalid:
        raise LinkRejected("invalid") from None
    customer = session.get(Customer, claims.customer_id)
    if customer is None:
        raise LinkRejected("invalid")
    if claims.link_version != customer.link_version:
        record(
            session,
            company_id=customer.company_id,
            customer_id=customer.id,
            actor=Actor.DEBTOR,
            action="link.refused",
            details={"reason": "revoked", "ip": client_ip},
        )
        raise LinkRejected("revoked", customer.id)
    if claims.scope_id is not None:
        scope = session.get(LinkScope, claims.scope_id)
        if scope is None or scope.customer_id != customer.id:
            raise LinkRejected("invalid")
    secret = access.start_session(session, customer, claims.scope_id, client_ip, user_agent)
    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=Actor.DEBTOR,
        action="link.opened",
        subject_type="customer",
        subject_id=customer.id,
        details={
            "ip": client_ip,
            "user_agent": (user_agent or "")[:200],
            "scoped": bool(claims.scope_id),
        },
    )
    return OpenedLink(secret, customer)


def revoke_links(
    session: Session,
    customer: Customer,
    *,
    actor: Actor = Actor.SYSTEM,
    actor_id: str | None = None,
) -> None:
    """Every link issued so far stops working, and open portal sessions end."""
    customer.link_version += 1
    ended = access.end_customer_sessions(session, customer.id)
    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=actor,
        actor_id=actor_id,
        action="link.revoked",
        subject_type="customer",
        subject_id=customer.id,
        details={"sessions_ended": ended, "link_version": customer.link_version},
    )


@dataclass(frozen=True)
class FreshLink:
    email: str
    name: str
    language: str
    url: str
    customer_name: str


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def request_fresh_link(
    session: Session,
    signer: LinkSigner,
    base_url: str,
    *,
    company_id: int,
    email: str,
    client: str,
    limit_per_hour: int,
    customer_hint: int | None = None,
) -> list[FreshLink]:
    """Fresh links for the customers that have ``email`` on file.

    The caller shows the same answer whatever this returns, so nobody learns
    whether an address is known. When the link that led here named a customer,
    only that customer's contacts qualify. Raises TooManyRequests past the
    hourly limit per address or per client.
    """
    normalised = email.strip().lower()
    now = clock.now()
    since = now - dt.timedelta(hours=1)
    email_digest, client_digest = _digest(normalised), _digest(client)
    by_email = session.scalar(
        select(func.count()).where(
            FreshLinkRequest.email_digest == email_digest, FreshLinkRequest.requested_at >= since
        )
    )
    by_client = session.scalar(
        select(func.count()).where(
            FreshLinkRequest.client_digest == client_digest, FreshLinkRequest.requested_at >= since
        )
    )
    if (by_email or 0) >= limit_per_hour or (by_client or 0) >= limit_per_hour * 4:
        raise TooManyRequests()
    session.add(
        FreshLinkRequest(email_digest=email_digest, client_digest=client_digest, requested_at=now)
    )
    query = (
        select(Contact)
        .join(Customer)
        .where(func.lower(Contact.email) == normalised, Customer.company_id == company_id)
        .options(selectinload(Contact.customer))
    )
    if customer_hint is not None:
        query = query.where(Customer.id == customer_hint)
    links = []
    for contact in session.scalars(query):
        customer = contact.customer
        url = issue_link(session, signer, base_url, customer, purpose="fresh-link-request")
        links.append(
            FreshLink(
                email=contact.email or normalised,
                name=contact.name,
                language=customer.language,
                url=url,
                customer_name=customer.name,
            )
        )
    return links
