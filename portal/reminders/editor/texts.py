"""Message texts per template, channel and language: the saved versions (the latest wins;
"back to the default" is a version too), what delivery uses, and a real customer's
content for previews."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.customers.models import Customer
from portal.i18n import translate_in
from portal.invoices.models import Invoice, InvoiceStatus
from portal.reminders.editor.models import MessageTextVersion
from portal.reminders.editor.rendering import CustomText
from portal.reminders.editor.sandbox import TextProblem, trial_problems
from portal.reminders.editor.versions import Author
from portal.reminders.models import Channel
from portal.reminders.render import ReminderContent, due_invoices
from portal.settings import PROJECT_ROOT, Settings
from portal.timeline.service import record

TEMPLATES_DIR = PROJECT_ROOT / "templates"
EDITABLE_CHANNELS = (Channel.EMAIL, Channel.SMS)
SUBJECT_LIMIT = 300


def template_names(channel: Channel) -> list[str]:
    """The reminder templates of ``channel`` in templates/ (the defaults)."""
    if channel is Channel.EMAIL:
        folder = TEMPLATES_DIR / "email"
        return sorted(p.name for p in folder.glob("reminder_*") if (p / "subject.txt").is_file())
    if channel is Channel.SMS:
        return sorted(p.stem for p in (TEMPLATES_DIR / "sms").glob("reminder_*.txt"))
    return []


class InvalidText(ValueError):
    def __init__(self, found: dict[str, TextProblem]) -> None:
        super().__init__(", ".join(f"{k}: {v.reason}" for k, v in found.items()))
        self.problems = found


Key = tuple[str, str, str]  # channel, name, language


@dataclass(frozen=True)
class CustomTexts:
    """Every saved text (defaults left out), read once per delivery round."""

    texts: dict[Key, CustomText]

    def find(self, channel: Channel, name: str, language: str) -> CustomText | None:
        return self.texts.get((str(channel), name, language))


def _versions(session: Session, company_id: int) -> list[MessageTextVersion]:
    return list(
        session.scalars(
            select(MessageTextVersion)
            .where(MessageTextVersion.company_id == company_id)
            .order_by(MessageTextVersion.id)
        )
    )


def load_custom_texts(session: Session, company_id: int) -> CustomTexts:
    latest: dict[Key, MessageTextVersion] = {}
    for row in _versions(session, company_id):
        latest[(row.channel, row.name, row.language)] = row
    return CustomTexts(
        {
            key: CustomText(row.subject, row.body)
            for key, row in latest.items()
            if not row.is_default
        }
    )


def history(
    session: Session, company_id: int, channel: Channel, name: str, language: str
) -> list[MessageTextVersion]:
    return list(
        session.scalars(
            select(MessageTextVersion)
            .where(
                MessageTextVersion.company_id == company_id,
                MessageTextVersion.channel == str(channel),
                MessageTextVersion.name == name,
                MessageTextVersion.language == language,
            )
            .order_by(MessageTextVersion.id.desc())
            .limit(50)
        )
    )


def check_text(channel: Channel, subject: str, body: str) -> dict[str, TextProblem]:
    found: dict[str, TextProblem] = {}
    if channel is Channel.EMAIL:
        if not subject.strip():
            found["subject"] = TextProblem("required")
        elif len(subject) > SUBJECT_LIMIT:
            found["subject"] = TextProblem("too_long", {"limit": SUBJECT_LIMIT})
        elif subject_problems := trial_problems(subject):
            found["subject"] = subject_problems[0]
    if not body.strip():
        found["body"] = TextProblem("required")
    elif body_problems := trial_problems(body):
        found["body"] = body_problems[0]
    return found


def save_text(
    session: Session,
    company_id: int,
    channel: Channel,
    name: str,
    language: str,
    *,
    subject: str,
    body: str,
    author: Author,
    is_default: bool = False,
) -> MessageTextVersion:
    """A new version of the text (``is_default``: back to the template files); raises
    InvalidText and stores nothing when a placeholder or construct is refused."""
    if not is_default:
        found = check_text(channel, subject, body)
        if found:
            raise InvalidText(found)
    row = MessageTextVersion(
        company_id=company_id,
        channel=str(channel),
        name=name,
        language=language,
        subject="" if is_default or channel is not Channel.EMAIL else subject.strip(),
        body="" if is_default else body,
        is_default=is_default,
        created_at=clock.now(),
        created_by=author.user_id,
        author=author.label[:254],
    )
    session.add(row)
    session.flush()
    record(
        session,
        company_id=company_id,
        action="reminders.text_reset" if is_default else "reminders.text_changed",
        actor=author.actor,
        actor_id=str(author.user_id) if author.user_id is not None else author.label,
        subject_type="message_text",
        subject_id=row.id,
        details={"channel": str(channel), "template": name, "language": language},
    )
    return row


def sample_content(session: Session, settings: Settings, customer: Customer) -> ReminderContent:
    """What a reminder to ``customer`` would hold today (their open invoices); the link is
    an example that opens nothing."""
    today = clock.now().astimezone(ZoneInfo(customer.timezone)).date()
    invoices = session.scalars(
        select(Invoice)
        .where(
            Invoice.customer_id == customer.id,
            Invoice.status == InvoiceStatus.OPEN,
            Invoice.amount_minor > Invoice.paid_minor,
        )
        .order_by(Invoice.due_date, Invoice.id)
        .limit(20)
    ).all()
    rows, totals = due_invoices(
        [(i.id, i.number, i.due_date, i.currency, i.remaining_minor) for i in invoices],
        today,
        penalties=False,
        ecb_rate=settings.reminders.ecb_rate,
    )
    contacts = [c for c in customer.contacts if c.receives_reminders]
    contact = next((c for c in contacts if c.is_primary), contacts[0] if contacts else None)
    return ReminderContent(
        customer_name=customer.name,
        contact_name=contact.name if contact else "",
        language=customer.language,
        step="preview",
        link=f"{settings.base_url.rstrip('/')}/l/example-link",
        today=today,
        invoices=rows,
        ecb_rate=settings.reminders.ecb_rate,
        totals=totals,
    )


def sample_customers(session: Session, company_id: int, limit: int = 100) -> list[Customer]:
    """Customers with something due, to preview with."""
    due = select(Invoice.customer_id).where(
        Invoice.status == InvoiceStatus.OPEN, Invoice.amount_minor > Invoice.paid_minor
    )
    return list(
        session.scalars(
            select(Customer)
            .where(Customer.company_id == company_id, Customer.id.in_(due))
            .order_by(Customer.name, Customer.id)
            .limit(limit)
        )
    )


def starter(channel: Channel, name: str, language: str) -> CustomText:
    """A text to start from, close to the default's words, in ``language``."""

    courtesy = name == "reminder_courtesy"
    if channel is Channel.SMS:
        if courtesy:
            body = translate_in(
                language,
                "{{ company_name }}: {{ invoice_count }} invoice(s) due soon, {{ total_due }}. "
                "Details: {{ portal_link }}",
            )
        else:
            body = translate_in(
                language,
                "{{ company_name }}: {{ invoice_count }} unpaid invoice(s), {{ total_due }}. "
                "Pay here: {{ portal_link }}",
            )
        return CustomText("", body)
    subject = (
        translate_in(language, "{{ company_name }} · invoices falling due soon")
        if courtesy
        else translate_in(language, "{{ company_name }} · unpaid invoices")
    )
    opening = (
        translate_in(language, "A friendly note: these invoices fall due soon.")
        if courtesy
        else translate_in(language, "Unless we are mistaken, these invoices are still unpaid:")
    )
    body = "\n\n".join(
        (
            translate_in(language, "Hello {{ greeting_name }},"),
            opening,
            "{{ invoices_table }}",
            translate_in(language, "Total due: {{ total_due }}"),
            translate_in(language, "See and pay your invoices online: {{ portal_link }}"),
            translate_in(
                language, "If you have already paid, thank you, and please ignore this message."
            ),
            "{{ company_name }}\n{{ company_email }} · {{ company_phone }}",
        )
    )
    return CustomText(subject, body)


def latest_text(
    session: Session, company_id: int, channel: Channel, name: str, language: str
) -> MessageTextVersion | None:
    """The saved text in use, if any (None: the template files)."""
    rows = history(session, company_id, channel, name, language)
    return rows[0] if rows and not rows[0].is_default else None
