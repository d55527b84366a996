"""What a command returns: data, never Slack calls.

A front end (the Slack glue, the console, later Teams) draws a Reply its own
way: its text from `templates/text/<template>.txt.j2`, its actions as
buttons or numbered choices, its form as a modal or as prompts, and sends
its answer where `answer` says."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Hashable

from sqlmodel import Session

if TYPE_CHECKING:
    from bot.forms import Form
    from bot.people import Place

# Where a Reply's own message goes.
PRIVATE = "private"  # only to the person who acted (ephemeral in Slack)
REPLACE = "replace"  # in place of the message whose button was pressed
DM = "dm"  # to the person who acted, as a direct message (after a form closed)


@dataclass(frozen=True)
class Action:
    """A button. `id` is registered in `bot.commands.ACTIONS`; the label is
    the macro of the same name in `templates/text/common/buttons.txt.j2`,
    called with `params`; `confirm` asks "are you sure?" first (the macro
    `<id>_confirm`)."""

    id: str
    value: str = ""
    style: str | None = None  # "primary" | "danger" | None
    params: tuple[tuple[str, Any], ...] = ()
    confirm: bool = False

    @classmethod
    def make(cls, id: str, value: Any = "", style: str | None = None, confirm: bool = False,
             **params: Any) -> "Action":
        return cls(id=id, value=str(value), style=style, params=tuple(params.items()), confirm=confirm)


@dataclass
class Message:
    """Text from a template plus the buttons under it."""

    template: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    # Drawn from the record when it is sent instead (front ends call
    # `Runtime.drawn` for `Reply.update` and `edit_of` posts): a redraw of a
    # shared message sent after the request must show what is stored by
    # then. Drawn at the press, two overlapping answers each missed the
    # other's and the count could stay one short.
    fresh: Callable[..., "Message"] | None = None  # (session, shown=None)
    # What of the record such a message shows, cheap to read (the answers'
    # counts): another process on the same database may draw a later state
    # and reach the platform sooner, so `Runtime.redraw` reads it again after
    # sending and draws again while it moved. `fresh` is given the state it
    # is to draw, and may reuse a draw of that same state.
    shown: Callable[[Session], Hashable] | None = None

    def sent(self, *, place: "Place | None" = None, dm_to: int | None = None, **options: Any) -> "Post":
        """This message as a Post to a place or, by DM, to a member."""
        if self.fresh is not None and not options.get("edit_of"):
            raise ValueError("a message drawn when sent can only redraw one already there (edit_of)")
        return Post(self.template, self.values, self.actions, fresh=self.fresh, shown=self.shown, place=place,
                    dm_to=dm_to, **options)


@dataclass
class Post(Message):
    """A message sent after the reply: to a place (a channel) or, with
    `dm_to`, to a member. Exactly one of `place` and `dm_to` is set."""

    place: "Place | None" = None
    dm_to: int | None = None  # Member.id
    # Called with (session, place, message id) once the platform accepted
    # the message, e.g. to remember where a note was posted so its ack count
    # can be updated.
    on_sent: Callable[[Session, "Place", str], None] | None = None
    # Who to tell (Member.id, by DM) if the platform refuses the post, e.g.
    # the bot is not in that channel: the record is stored either way, the
    # author must know the team was not told.
    tell_on_failure: int | None = None
    # (kind, subject, slot) in the delivery table: the post is sent once,
    # and if the platform fails or the process dies first, a tick retries.
    delivery: tuple[str, str, str] | None = None
    # The platform's id of a message already at `place`: redraw it instead
    # of posting a new one (a corrected note's announcement).
    edit_of: str | None = None
    # A file sent with the message: (file name, content), e.g. a calendar.
    attachment: tuple[str, bytes] | None = None
    # Replies in the post's thread (the digest's details), sent after it.
    replies: list[Message] = field(default_factory=list)


@dataclass
class FormView:
    """A form to fill in: a modal in Slack, prompts in the console.

    `submit` is the id in `bot.commands.SUBMISSIONS` that receives the
    values; `meta` travels with the form unseen (which patient, which
    channel) and comes back with the submission."""

    form: "Form"
    submit: str
    meta: dict[str, Any] = field(default_factory=dict)
    initial: dict[str, Any] = field(default_factory=dict)
    # A line above the fields (e.g. which patient), from a text template.
    intro: Message | None = None


Problem = tuple[str, dict[str, Any]]  # (code worded by common/field_error, its values)


@dataclass
class Reply(Message):
    answer: str = PRIVATE
    form: FormView | None = None
    posts: list[Post] = field(default_factory=list)
    # Redraw the message whose button was pressed (e.g. the ack count), for
    # everyone who sees it; the reply's own text still goes to `answer`.
    update: Message | None = None
    # For form submissions: field id -> problem, shown on the field.
    field_errors: dict[str, Problem] = field(default_factory=dict)
    # The command did not complete (database down, a bug): nothing was stored.
    error: bool = False

    def all_actions(self) -> list[Action]:
        """Every button this reply shows anywhere (for the registry check)."""
        found = list(self.actions)
        for message in [*self.posts, *([self.update] if self.update else [])]:
            found += message.actions
        return found
