"""Every mapped class, imported so the metadata is complete (Alembic, tests)."""

from portal.access.models import DebtorSession
from portal.api.models import ApiKey, IdempotentRequest, KeyScope
from portal.bank.models import BankLine, BankLinePayment, BankStatement, LineStatus
from portal.branding.models import Branding, BrandingText
from portal.cases.models import (
    Agreement,
    Attachment,
    Case,
    CaseInvoice,
    CaseKind,
    CaseMessage,
    CaseStatus,
    DisputeReason,
    Instalment,
    InstalmentReminder,
)
from portal.cockpit.models import CustomerBehaviour, DashboardSnapshot
from portal.company.models import Company
from portal.customers.models import Contact, ContactRole, Customer, RiskSegment
from portal.db import Base
from portal.embed.models import EmbedOrigin
from portal.holds.models import HoldKind, ReminderHold
from portal.imports.models import Import, ImportMapping, ImportStatus
from portal.invoices.models import CreditNote, CreditNoteStatus, Invoice, InvoiceStatus
from portal.links.models import FreshLinkRequest, LinkScope
from portal.payments.models import (
    Payment,
    PaymentAllocation,
    PaymentMethod,
    PaymentRequest,
    PaymentRequestStatus,
    PaymentReversal,
    PaymentStatus,
    ReversalKind,
    WebhookEvent,
)
from portal.reminders.editor.models import MessageTextVersion, ScenarioVersion
from portal.reminders.models import (
    Channel,
    MessageStatus,
    ReminderMessage,
    ReminderMessageInvoice,
    ReminderPolicy,
    ReminderRun,
    ReminderTask,
    TaskStatus,
)
from portal.timeline.models import Actor, TimelineEvent
from portal.users.models import LoginThrottle, Role, User, UserSession
from portal.webhooks.models import (
    DeliveryAttempt,
    DeliveryStatus,
    OutgoingEvent,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "Actor",
    "Agreement",
    "ApiKey",
    "Attachment",
    "BankLine",
    "BankLinePayment",
    "BankStatement",
    "Base",
    "Branding",
    "BrandingText",
    "Case",
    "CaseInvoice",
    "CaseKind",
    "CaseMessage",
    "CaseStatus",
    "Channel",
    "Company",
    "Contact",
    "ContactRole",
    "CreditNote",
    "CreditNoteStatus",
    "Customer",
    "CustomerBehaviour",
    "DashboardSnapshot",
    "DebtorSession",
    "DeliveryAttempt",
    "DeliveryStatus",
    "DisputeReason",
    "EmbedOrigin",
    "FreshLinkRequest",
    "HoldKind",
    "IdempotentRequest",
    "Import",
    "ImportMapping",
    "ImportStatus",
    "Instalment",
    "InstalmentReminder",
    "Invoice",
    "InvoiceStatus",
    "KeyScope",
    "LineStatus",
    "LinkScope",
    "LoginThrottle",
    "MessageStatus",
    "MessageTextVersion",
    "OutgoingEvent",
    "Payment",
    "PaymentAllocation",
    "PaymentMethod",
    "PaymentRequest",
    "PaymentRequestStatus",
    "PaymentReversal",
    "PaymentStatus",
    "ReminderHold",
    "ReminderMessage",
    "ReminderMessageInvoice",
    "ReminderPolicy",
    "ReminderRun",
    "ReminderTask",
    "ReversalKind",
    "RiskSegment",
    "Role",
    "ScenarioVersion",
    "TaskStatus",
    "TimelineEvent",
    "User",
    "UserSession",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
