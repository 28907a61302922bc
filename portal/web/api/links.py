"""Portal links for the company's own emails and CRM, minted by the link service."""

from __future__ import annotations

import datetime as dt

from portal import clock
from portal.api import schemas as s
from portal.changes import FieldErrors
from portal.i18n import gettext_ as _
from portal.links.errors import UnknownInvoice
from portal.links.service import issue_link
from portal.links.tokens import MAX_LIFETIME_DAYS
from portal.timeline.models import Actor
from portal.web.api.customers import by_reference
from portal.web.api.framework import Call, Result, operation


@operation(
    "POST",
    "/portal-links",
    summary="Mint a signed portal link for a customer, or for some of its invoices",
    tag="Portal links",
    body=s.PortalLinkIn,
    ok=(201, s.PortalLinkOut),
)
def create_portal_link(call: Call) -> Result:
    body: s.PortalLinkIn = call.body
    settings = call.state.settings
    customer = by_reference(call, body.customer_reference)
    if body.lifetime_days is not None and body.lifetime_days > MAX_LIFETIME_DAYS:
        raise FieldErrors(
            {"lifetime_days": _("A link lives %(max)d days at most.", max=MAX_LIFETIME_DAYS)}
        )
    try:
        url = issue_link(
            call.db,
            call.state.signer,
            settings.base_url,
            customer,
            invoice_numbers=body.invoice_numbers,
            actor=Actor.SYSTEM,
            actor_id=call.caller.actor_id,
            purpose="api",
            lifetime_days=body.lifetime_days,
        )
    except UnknownInvoice as unknown:
        raise FieldErrors(
            {
                "invoice_numbers": _(
                    "No invoice of this customer has the number %(numbers)s.",
                    numbers=", ".join(unknown.numbers),
                )
            }
        ) from None
    days = body.lifetime_days or settings.link_max_age_days
    expires = clock.now() + dt.timedelta(days=days)
    return Result(201, s.PortalLinkOut(url=url, expires_at=expires))
