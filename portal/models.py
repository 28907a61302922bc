"""Every mapped class, imported so the metadata is complete (Alembic, tests)."""

from portal.access.models import DebtorSession
from portal.bank.models import BankLine, BankLinePayment, BankStatement, LineStatus
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
from portal.company.models import Company
from portal.customers.models import Contact, ContactRole, Customer, RiskSegment
from portal.db import Base
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
from portal.reminders.models import (
    Channel,
    MessageStatus,
    ReminderMessage,
    ReminderMessageInvoice,
    ReminderRun,
    ReminderTask,
    TaskStatus,
)
from portal.timeline.models import Actor, TimelineEvent
from portal.users.models import LoginThrottle, Role, User, UserSession

__all__ = [
    "Actor",
    "Agreement",
    "Attachment",
    "BankLine",
    "BankLinePayment",
    "BankStatement",
    "Base",
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
    "DebtorSession",
    "DisputeReason",
    "FreshLinkRequest",
    "HoldKind",
    "Import",
    "ImportMapping",
    "ImportStatus",
    "Instalment",
    "InstalmentReminder",
    "Invoice",
    "InvoiceStatus",
    "LineStatus",
    "LinkScope",
    "LoginThrottle",
    "MessageStatus",
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
    "ReminderRun",
    "ReminderTask",
    "ReversalKind",
    "RiskSegment",
    "Role",
    "TaskStatus",
    "TimelineEvent",
    "User",
    "UserSession",
    "WebhookEvent",
]
