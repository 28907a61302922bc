"""Message texts written in the back office: Jinja's sandbox, a fixed set of placeholders,
checked when saved (unknown names, attribute access, calls and imports are refused) and
rendered with every value plain in text and escaped in HTML."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from portal.reminders.gsm import BASIC, EXTENDED, gsm7_length, to_gsm7

# What a text may name (docs/reminders.md lists them with examples).
PLACEHOLDERS = (
    "customer_name",
    "contact_name",
    "greeting_name",
    "invoices_table",
    "invoice_count",
    "invoices",
    "total_due",
    "total_with_penalties",
    "penalties_total",
    "penalty_rate",
    "due_dates",
    "earliest_due_date",
    "days_late",
    "overdue",
    "portal_link",
    "today",
    "company_name",
    "company_email",
    "company_phone",
)
# The fields of one item of ``invoices``, and of ``loop`` inside a for loop.
ITEM_FIELDS = frozenset({"number", "due_date", "amount", "days_late", "penalties"})
LOOP_FIELDS = frozenset({"index", "first", "last", "length"})
FILTERS = frozenset({"upper", "lower", "capitalize", "title", "trim", "default", "length"})
FORBIDDEN_NODES = (
    nodes.Call,
    nodes.Extends,
    nodes.Include,
    nodes.Import,
    nodes.FromImport,
    nodes.Macro,
    nodes.CallBlock,
    nodes.Assign,
    nodes.AssignBlock,
    nodes.With,
    nodes.Block,
    nodes.FilterBlock,
)
MAX_LENGTH = 5000


@dataclass(frozen=True)
class TextProblem:
    reason: str  # syntax, unknown, attribute, forbidden, filter, too_long, sandbox
    values: dict[str, Any] = field(default_factory=dict)


def _environment(autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        autoescape=autoescape, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    env.globals.clear()  # no range, lipsum, cycler, namespace...
    env.filters = {name: env.filters[name] for name in FILTERS}
    env.tests = {name: env.tests[name] for name in ("defined", "none", "number", "string")}
    return env


TEXT_ENV = _environment(autoescape=False)


def problems(source: str) -> list[TextProblem]:
    """Why ``source`` cannot be saved (nothing: it can)."""
    if len(source) > MAX_LENGTH:
        return [TextProblem("too_long", {"limit": MAX_LENGTH})]
    try:
        tree = TEXT_ENV.parse(source)
    except TemplateSyntaxError as error:
        return [TextProblem("syntax", {"line": error.lineno, "error": error.message or ""})]
    found: list[TextProblem] = []
    for node in tree.find_all(FORBIDDEN_NODES):
        found.append(TextProblem("forbidden", {"what": type(node).__name__}))
        break
    loop_names = {name for loop in tree.find_all(nodes.For) for name in _names(loop.target)}
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        name = node.attr if isinstance(node, nodes.Getattr) else _const_key(node)
        allowed = LOOP_FIELDS if _names(node.node) == {"loop"} else ITEM_FIELDS
        if name is None or name.startswith("_") or name not in allowed:
            found.append(TextProblem("attribute", {"name": name or "[…]"}))
            break
    for node in tree.find_all(nodes.Filter):
        if node.name not in FILTERS:
            found.append(TextProblem("filter", {"name": node.name}))
            break
    loaded = {node.name for node in tree.find_all(nodes.Name) if node.ctx == "load"}
    unknown = sorted(loaded - set(PLACEHOLDERS) - loop_names - {"loop"})
    if unknown:
        found.append(TextProblem("unknown", {"names": ", ".join(unknown)}))
    return found


def trial_problems(source: str) -> list[TextProblem]:
    """``problems``, then a render with example values: what only fails when rendered
    (``loop`` outside a loop, adding text to a number) is refused when saved too."""
    found = problems(source)
    if found:
        return found
    example = dict.fromkeys(PLACEHOLDERS, "x") | {
        "invoice_count": 1,
        "days_late": 3,
        "overdue": True,
        "invoices": [
            {"number": "x", "due_date": "x", "amount": "x", "days_late": 3, "penalties": "x"}
        ],
    }
    try:
        TEXT_ENV.from_string(source).render(example)
    except SecurityError:
        return [TextProblem("sandbox")]
    except TemplateError as error:
        return [TextProblem("render", {"error": str(error)})]
    except (TypeError, ValueError, ArithmeticError) as error:
        return [TextProblem("render", {"error": str(error)})]
    return []


def _const_key(node: nodes.Getitem) -> str | None:
    return str(node.arg.value) if isinstance(node.arg, nodes.Const) else None


def _names(node: nodes.Node) -> set[str]:
    return {name.name for name in node.find_all(nodes.Name)} | (
        {node.name} if isinstance(node, nodes.Name) else set()
    )


def render_text(source: str, values: dict[str, Any]) -> str:
    """``source`` rendered in the sandbox; raises ValueError on anything refused."""
    found = problems(source)
    if found:
        raise ValueError(found[0].reason)
    try:
        return TEXT_ENV.from_string(source).render(values)
    except SecurityError as error:
        raise ValueError("sandbox") from error
    except TemplateError as error:
        raise ValueError(str(error)) from error


@dataclass(frozen=True)
class SmsCount:
    characters: int
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int
    # What leaves: outside GSM-7 characters replaced (ê -> e), so one encoding only.
    sent_characters: int
    sent_segments: int


def _segments(units: int, single: int, multi: int) -> int:
    return 1 if units <= single else math.ceil(units / multi)


def count_sms(text: str) -> SmsCount:
    """Characters and segments: GSM-7 packs 160 septets in one SMS (153 each when split),
    UCS-2 70 characters (67)."""
    if all(c in BASIC or c in EXTENDED for c in text):
        septets = gsm7_length(text)
        segments = _segments(septets, 160, 153)
        return SmsCount(septets, "GSM-7", segments, septets, segments)
    units = len(text.encode("utf-16-le")) // 2
    sent = gsm7_length(to_gsm7(text))
    return SmsCount(units, "UCS-2", _segments(units, 70, 67), sent, _segments(sent, 160, 153))
