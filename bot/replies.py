"""What a command returns: data, never Slack calls.

The Slack glue renders a Reply with `templates/slack/*.json.j2` and sends it
(respond, views.open, chat.postMessage); the console renders the same Reply
with `templates/text/*.txt.j2`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from sqlmodel import Session


@dataclass
class Post:
    """A message to a channel or (user id) a DM, sent after the reply."""

    channel: str
    template: str
    values: dict[str, Any] = field(default_factory=dict)
    # Called with (session, channel, ts) once Slack accepted the message,
    # e.g. to remember where a note was posted so its ack count can be updated.
    on_sent: Callable[[Session, str, str], None] | None = None
    # Who to tell (by DM) if Slack refuses the post, e.g. the bot is not in
    # that channel: the record is stored either way, the author must know
    # the team was not told.
    tell_on_failure: str | None = None
    # (kind, subject, slot) in the delivery table: the post is sent once,
    # and if Slack fails or the process dies first, a scheduler tick retries.
    delivery: tuple[str, str, str] | None = None


@dataclass
class Modal:
    """A form to open (or, with `view_id`, to replace in place)."""

    kind: str
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class Reply:
    template: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    in_channel: bool = False
    modal: Modal | None = None
    posts: list[Post] = field(default_factory=list)
    # Re-render the message a button was clicked on (e.g. the ack count).
    update: Post | None = None
    # For modal submissions: field id -> (problem code, params), worded by
    # `templates/text/common/field_error.txt.j2` and shown on the field.
    field_errors: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    # The command did not complete (database down, a bug): nothing was stored.
    error: bool = False


def say(template: str, **values: Any) -> Reply:
    return Reply(template=template, values=values)
