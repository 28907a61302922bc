from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

import portal.users.models  # noqa: F401 - customers.owner_user_id refers to users
from portal.db import Base, BigId, UTCDateTime, enum_column, stamp_updates


class RiskSegment(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Customer(Base):
    """A debtor: one account of the company's accounting system."""

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("company_id", "reference"),
        # Imports and e-invoices find a company by its registration or VAT number.
        Index("ix_customers_company_siren", "company_id", "siren"),
        Index("ix_customers_company_vat_number", "company_id", "vat_number"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    reference: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="fr")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    risk_segment: Mapped[RiskSegment] = mapped_column(
        enum_column(RiskSegment),
        default=RiskSegment.MEDIUM,
    )
    # True once a credit manager chose the segment: the nightly suggestion leaves it alone.
    risk_segment_pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    strategic: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped to revoke every link and portal session issued before.
    link_version: Mapped[int] = mapped_column(Integer, default=1)
    # The credit manager who follows this account (back office).
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # A credit manager may hold every reminder of the customer until this date.
    reminders_paused_until: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    # The reminder scenario chosen for this customer; None: by segment (portal/reminders).
    reminder_scenario: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Company identifiers, normalised (digits only; VAT with its country prefix).
    siren: Mapped[str | None] = mapped_column(String(9), nullable=True)
    siret: Mapped[str | None] = mapped_column(String(14), nullable=True)
    vat_number: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # Postal address, for letters (formal notices).
    address_line1: Mapped[str] = mapped_column(String(200), default="")
    address_line2: Mapped[str] = mapped_column(String(200), default="")
    postcode: Mapped[str] = mapped_column(String(16), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    country: Mapped[str] = mapped_column(String(2), default="FR")  # ISO 3166 alpha-2
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="customer", order_by="Contact.id", cascade="all, delete-orphan"
    )

    @property
    def address_lines(self) -> list[str]:
        """Street and town lines of the postal address (empty when none is on file)."""
        town = " ".join(part for part in (self.postcode, self.city) if part)
        return [line for line in (self.address_line1, self.address_line2, town) if line]

    @property
    def primary_contact(self) -> Contact | None:
        for contact in self.contacts:
            if contact.is_primary:
                return contact
        return self.contacts[0] if self.contacts else None


class ContactRole(enum.StrEnum):
    BILLING = "billing"  # receives invoices and reminders
    ACCOUNTING = "accounting"  # accounts payable
    MANAGEMENT = "management"
    PURCHASING = "purchasing"
    OTHER = "other"


class Contact(Base):
    """A person at the debtor who receives reminders."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(254), nullable=True, index=True)
    # E.164 (+33612345678), normalised by portal.customers.service.
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    role: Mapped[ContactRole] = mapped_column(enum_column(ContactRole), default=ContactRole.BILLING)
    # The contact reminders go to first (one per customer).
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    # The master switch of the reminder engine: False and this contact gets no reminder.
    receives_reminders: Mapped[bool] = mapped_column(Boolean, default=True)
    # The channels this contact accepts.
    accepts_email: Mapped[bool] = mapped_column(Boolean, default=True)
    accepts_sms: Mapped[bool] = mapped_column(Boolean, default=True)
    accepts_calls: Mapped[bool] = mapped_column(Boolean, default=True)
    accepts_letters: Mapped[bool] = mapped_column(Boolean, default=True)
    # A delivery status notification said the address does not exist: no email until it
    # is changed (the next channel is used).
    email_bounced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    customer: Mapped[Customer] = relationship(back_populates="contacts")


stamp_updates(Customer)
