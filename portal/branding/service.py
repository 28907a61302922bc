"""The company's look: the configured defaults with what admins changed on top.

``load_look`` reads it (``web.site_config`` caches it per worker), ``check`` validates a
submitted form (colours against WCAG AA, the logo, texts, the sender), ``preview`` shows
a form applied without saving, ``save`` stores it with a timeline event.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from email.utils import formataddr, parseaddr
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.branding import colours
from portal.branding.logo import LogoRefused, check_logo
from portal.branding.models import Branding, BrandingText
from portal.invoices.pdf_brand import PdfBrand
from portal.settings import CompanyIdentity, Settings
from portal.timeline.models import Actor
from portal.timeline.service import record

TEXT_LIMITS = {"welcome": 1000, "footer": 500, "legal": 2000, "support": 300}
EMAIL_SHAPE = re.compile(r"^[^@\s<>\"]{1,64}@[^@\s<>\"]+\.[^@\s<>\"]{2,}$")


@dataclass(frozen=True)
class Texts:
    welcome: str = ""
    footer: str = ""
    legal: str = ""
    support: str = ""


@dataclass(frozen=True)
class BrandedIdentity(CompanyIdentity):
    texts: dict[str, Texts] = field(default_factory=dict)

    def texts_for(self, language: str) -> Texts:
        return self.texts.get(language, Texts())


@dataclass(frozen=True)
class Look:
    primary_colour: str
    accent_colour: str
    sender: str
    logo: bytes | None = None
    logo_type: str = ""
    texts: dict[str, Texts] = field(default_factory=dict)

    def texts_for(self, language: str) -> Texts:
        return self.texts.get(language, Texts())

    def pdf_brand(self, language: str) -> PdfBrand:
        return PdfBrand(
            colour=self.primary_colour,
            logo=self.logo,
            logo_type=self.logo_type,
            legal=self.texts_for(language).legal,
        )

    def identity(self, company: CompanyIdentity) -> CompanyIdentity:
        """The configured identity in these colours and with these texts (emails read it
        as ``company``; ``templating.render_email_parts`` picks the texts' language)."""
        return BrandedIdentity(
            **{
                **asdict(company),
                "primary_colour": self.primary_colour,
                "accent_colour": self.accent_colour,
            },
            texts=self.texts,
        )


@dataclass(frozen=True)
class BrandingForm:
    primary_colour: str = ""
    accent_colour: str = ""
    sender_name: str = ""
    sender_email: str = ""
    texts: dict[str, Texts] = field(default_factory=dict)
    logo: bytes | None = None  # a new upload
    remove_logo: bool = False


# field -> (reason, values for the message)
Errors = dict[str, tuple[str, dict[str, Any]]]


def default_look(settings: Settings) -> Look:
    return Look(
        primary_colour=settings.company.primary_colour,
        accent_colour=settings.company.accent_colour,
        sender=settings.smtp.sender,
    )


def load_look(session: Session, company_id: int, settings: Settings) -> Look:
    look = default_look(settings)
    row = session.get(Branding, company_id)
    texts = {
        t.language: Texts(t.welcome, t.footer, t.legal, t.support)
        for t in session.scalars(select(BrandingText).where(BrandingText.company_id == company_id))
    }
    if row is None:
        return replace(look, texts=texts)
    return _apply(look, row, texts)


def _apply(look: Look, row: Branding, texts: dict[str, Texts]) -> Look:
    default_name, default_email = parseaddr(look.sender)
    name = row.sender_name or default_name
    email = row.sender_email or default_email
    return Look(
        primary_colour=row.primary_colour or look.primary_colour,
        accent_colour=row.accent_colour or look.accent_colour,
        sender=formataddr((name, email)) if row.sender_name or row.sender_email else look.sender,
        logo=row.logo,
        logo_type=row.logo_type,
        texts=texts,
    )


def check(form: BrandingForm) -> tuple[Errors, str]:
    """The form's errors, and the new logo's media type (when one was uploaded)."""
    errors: Errors = {}
    for name, checker in (
        ("primary_colour", colours.check_main),
        ("accent_colour", colours.check_accent),
    ):
        value = getattr(form, name)
        if not value:
            continue
        if not colours.HEX.match(value):
            errors[name] = ("shape", {"colour": value})
        elif (failure := checker(value.lower())) is not None:
            errors[name] = (
                "contrast",
                {
                    "colour": value,
                    "against": failure.against,
                    "ratio": f"{failure.ratio:.1f}",
                    "needed": f"{colours.AA_BODY_TEXT:.1f}",
                },
            )
    if any(c in form.sender_name for c in '\r\n<>"') or len(form.sender_name) > 100:
        errors["sender_name"] = ("name", {})
    if form.sender_email and (
        len(form.sender_email) > 254 or not EMAIL_SHAPE.match(form.sender_email)
    ):
        errors["sender_email"] = ("email", {})
    for language, texts in form.texts.items():
        for name, limit in TEXT_LIMITS.items():
            if len(getattr(texts, name)) > limit:
                errors[f"{name}_{language}"] = ("too_long", {"limit": limit})
    logo_type = ""
    if form.logo:
        try:
            logo_type = check_logo(form.logo)
        except LogoRefused as refused:
            errors["logo"] = (f"logo_{refused.reason}", {})
    return errors, logo_type


def preview(current: Look, form: BrandingForm, logo_type: str) -> Look:
    """``current`` with the form applied, as it would look once saved."""
    default_name, default_email = parseaddr(current.sender)
    logo, kind = current.logo, current.logo_type
    if form.remove_logo:
        logo, kind = None, ""
    if form.logo:
        logo, kind = form.logo, logo_type
    return Look(
        primary_colour=form.primary_colour or current.primary_colour,
        accent_colour=form.accent_colour or current.accent_colour,
        sender=formataddr((form.sender_name or default_name, form.sender_email or default_email)),
        logo=logo,
        logo_type=kind,
        texts=dict(form.texts),
    )


def save(
    session: Session, company_id: int, form: BrandingForm, logo_type: str, *, user_id: int | None
) -> None:
    row = session.get(Branding, company_id)
    if row is None:
        row = Branding(company_id=company_id, updated_at=clock.now())
        session.add(row)
    row.primary_colour = form.primary_colour.lower()
    row.accent_colour = form.accent_colour.lower()
    row.sender_name = form.sender_name
    row.sender_email = form.sender_email
    if form.remove_logo:
        row.logo, row.logo_type = None, ""
    if form.logo:
        row.logo, row.logo_type = form.logo, logo_type
    row.updated_at = clock.now()
    row.updated_by = user_id
    for language, texts in form.texts.items():
        stored = session.get(BrandingText, (company_id, language))
        if stored is None:
            stored = BrandingText(company_id=company_id, language=language)
            session.add(stored)
        stored.welcome, stored.footer = texts.welcome, texts.footer
        stored.legal, stored.support = texts.legal, texts.support
    record(
        session,
        company_id=company_id,
        actor=Actor.USER,
        actor_id=str(user_id) if user_id is not None else None,
        action="branding.changed",
        details={
            "primary_colour": row.primary_colour,
            "accent_colour": row.accent_colour,
            "logo": row.logo_type or None,
            "sender": form.sender_email or None,
        },
    )
