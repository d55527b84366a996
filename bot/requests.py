"""What a front end hands the core: one slash command, one button press or
one form submission, already free of the platform's syntax."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.people import Handle, Place

COMMAND, ACTION, SUBMIT = "command", "action", "submit"


@dataclass
class Who:
    """The person acting and where: taken from a platform payload or the console."""

    handle: Handle
    place: Place | None = None
    request_key: str | None = None
    # The people mentioned in the text, in order: the n-th is `mention_token(n)`.
    mentions: list[Handle] = field(default_factory=list)


@dataclass
class Request:
    kind: str  # COMMAND | ACTION | SUBMIT
    name: str  # "/patient", a registered action id, a registered submission id
    text: str = ""  # the command's text, or the pressed button's value
    values: dict[str, Any] = field(default_factory=dict)  # a submitted form's fields
    meta: dict[str, Any] = field(default_factory=dict)  # what the form carried unseen


class StaleButton(ValueError):
    """A button's value no longer makes sense (an old message after an upgrade)."""
