"""What the reminder editor's pages say: the problems of a scenario or a message text in
words, and the labels of channels, segments and changes (translated)."""

from __future__ import annotations

from portal.i18n import gettext_ as _
from portal.reminders.editor.document import Problem
from portal.reminders.editor.sandbox import PLACEHOLDERS, TextProblem
from portal.reminders.models import Channel


def channel_labels() -> dict[str, str]:
    return {
        Channel.EMAIL: _("Email"),
        Channel.SMS: _("SMS"),
        Channel.LETTER: _("Letter"),
        Channel.TASK: _("Call task"),
    }


def segment_key_labels() -> dict[str, str]:
    return {
        "low": _("Low risk"),
        "medium": _("Medium risk"),
        "high": _("High risk"),
        "strategic": _("Strategic customers"),
    }


def conflict_text() -> str:
    return _(
        "Someone saved another change meanwhile, so yours was not saved. The page shows "
        "the scenarios as they are now: make your change again."
    )


def change_text(change: str, subject: str) -> str:
    words = {
        "seeded": _("Started from the default file %(subject)s"),
        "imported": _("Imported from the file %(subject)s"),
        "restored": _("Restored version %(subject)s"),
        "settings": _("Changed the minimum gap or the segments' scenarios"),
        "scenario_added": _("Added the scenario %(subject)s"),
        "scenario_renamed": _("Renamed the scenario %(subject)s"),
        "scenario_removed": _("Removed the scenario %(subject)s"),
        "step_added": _("Added the step %(subject)s"),
        "step_changed": _("Changed the step %(subject)s"),
        "step_moved": _("Moved the step %(subject)s"),
        "step_removed": _("Removed the step %(subject)s"),
    }
    text = words.get(change, change)
    return text % {"subject": subject} if "%(subject)s" in text else text


def problem_text(problem: Problem) -> str:
    v = problem.values
    reason = problem.reason
    if reason == "same_day":
        return _("Another step (%(other)s) is on the same day: move one of them.", **v)
    if reason == "gap":
        return _(
            "This step comes %(apart)d days after %(other)s, but one customer gets at most one "
            "message every %(gap)d days: held back, it would be overtaken by the next step and "
            "never go out. Space the steps out or lower the minimum gap.",
            **v,
        )
    if reason == "delayed":
        return _(
            "Because of the minimum gap after %(other)s, this message goes out on day %(on)d "
            "at the earliest.",
            **v,
        )
    if reason == "unknown_template":
        return _(
            "There is no message %(template)s for this channel. Choose a message that exists "
            "for it (letters use the formal notice, call tasks the call).",
            template=v.get("template") or "?",
        )
    if reason == "days_range":
        return _("Enter a number of days between %(low)d and %(high)d.", **v)
    if reason == "too_many":
        return _("A scenario has at most %(limit)d steps.", **v)
    if reason == "used_by_segment":
        return _(
            "Segments follow this scenario (%(segments)s): choose another scenario for them first.",
            segments=", ".join(segment_key_labels().get(s, s) for s in v["segments"]),
        )
    if reason == "used_by_customers":
        return _(
            "%(count)d customers follow this scenario by choice: change their scenario first.",
            **v,
        )
    if reason == "gap_range":
        return _("Enter a number of days between 0 and %(high)d.", **v)
    if reason in ("toml", "shape", "other"):
        return _("This file cannot be read as scenarios: %(error)s", error=v.get("error", ""))
    messages = {
        "channel": _("Choose a channel."),
        "segments": _("Choose among the segments shown."),
        "currency": _("Give the currency of the amount, such as EUR."),
        "no_steps": _("A scenario needs at least one step."),
        "order": _("Steps must follow each other in date order."),
        "name": _("Use 1 to 40 lowercase letters, digits or dashes, such as key-accounts."),
        "name_taken": _("A scenario with this name exists already."),
        "label": _("Give a name of at most 100 characters."),
        "segment_target": _("Choose a scenario for this segment."),
    }
    return messages.get(reason, reason)


def text_problem(problem: TextProblem) -> str:
    v = problem.values
    reason = problem.reason
    if reason == "unknown":
        return _(
            "Unknown placeholder: %(names)s. The placeholders are: %(known)s.",
            names=v["names"],
            known=", ".join(PLACEHOLDERS),
        )
    if reason == "attribute":
        return _(
            "“%(name)s” is refused: only the fields of an invoice (number, due_date, amount, "
            "days_late, penalties) and of loop (index, first, last, length) can be read.",
            **v,
        )
    if reason == "forbidden":
        return _(
            "This construct is refused: a text may show placeholders and use if and for, "
            "but not call functions, include templates, set variables or define macros."
        )
    if reason == "filter":
        return _("The filter %(name)s is refused.", **v)
    if reason == "syntax":
        return _("Line %(line)d: %(error)s", line=v.get("line") or 1, error=v.get("error", ""))
    if reason == "too_long":
        return _("At most %(limit)d characters.", **v)
    if reason == "required":
        return _("Write the text.")
    if reason == "render":
        return _("This text fails when filled in: %(error)s", error=v.get("error", ""))
    return _("This text cannot be rendered safely.")
