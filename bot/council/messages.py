"""What /council posts: the announcement, reminders and notices, each with
the answer buttons while answering is still possible. Built as data for
any front end; the channel post never mentions anyone."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import bindparam, update
from sqlmodel import Session

from bot.council import meetings
from bot.people import Place
from bot.replies import Action, Message, Post
from bot.store.models import Meeting

ANNOUNCEMENT = "council/announcement"


def rsvp_actions(meeting: Meeting) -> list[Action]:
    if meeting.status != "scheduled":
        return []
    return [Action.make("council_rsvp", f"{meeting.id}:{a}", style="primary" if a == "出席" else None, answer=a)
            for a in meetings.ANSWERS]


def values(session: Session, meeting: Meeting, **extra: Any) -> dict[str, Any]:
    return {"m": meeting, "counts": meetings.counts(session, meeting),
            "organiser": meetings.organiser(session, meeting), **extra}


def announcement(session: Session, meeting: Meeting) -> Message:
    return Message(ANNOUNCEMENT, values(session, meeting), rsvp_actions(meeting))


def announcement_when_sent(meeting: Meeting) -> Message:
    """The announcement with the answers stored when it is sent (a redraw
    after an answer: another answer may commit in between). A press on a
    reminder redraws it and the channel's announcement, which show the
    same: the lane that draws first draws for both (both are queued by
    then, after this answer was stored), unless the answers it was asked
    to show (`shown`, see `Message.shown`) have moved since."""
    meeting_id = meeting.id
    drawn: list[tuple[Any, Message]] = []  # (the answers it shows, or None: not asked), the draw
    drawing = threading.Lock()  # the two redraws go in lanes of their own, side by side

    def shown(session: Session) -> tuple:
        return tuple(sorted(meetings.counts_of(session, [meeting_id])[meeting_id].items()))

    def fresh(session: Session, answers: tuple | None = None) -> Message:
        with drawing:
            if not drawn or drawn[0][0] != answers:
                drawn[:] = [(answers, announcement(session, session.get(Meeting, meeting_id)))]
            return drawn[0][1]

    return Message(ANNOUNCEMENT, fresh=fresh, shown=shown)


def announce(session: Session, meeting: Meeting) -> Post | None:
    """The first post in the meeting's channel; its id is kept so answers
    can redraw its counts."""
    if not meeting.channel:
        return None
    return announcement(session, meeting).sent(
        place=Place.parse(meeting.channel),
        on_sent=lambda s, place, message_id, meeting_id=meeting.id: _remember(s, meeting_id, message_id))


# One UPDATE of plain values, built once (as a note's, bot.liaison.posts):
# the message id is no field a cache is built from (store.versions).
_MEETINGS = Meeting.__table__
_REMEMBER = update(_MEETINGS).where(_MEETINGS.c.id == bindparam("meeting")).values(message_id=bindparam("posted_as"))


def _remember(session: Session, meeting_id: int, message_id: str) -> None:
    session.connection().execute(_REMEMBER, {"meeting": meeting_id, "posted_as": message_id})


def redraw(meeting: Meeting, current: Message) -> list[Post]:
    """The channel announcement again, in place, as `current` (the
    announcement built for the reply, or drawn when sent) shows it."""
    if not (meeting.channel and meeting.message_id):
        return []
    return [current.sent(place=Place.parse(meeting.channel), edit_of=meeting.message_id)]


def notice(current: Message, template: str, **extra: Any) -> Message:
    """A message about the meeting worded by `template`, from the same values."""
    return Message(template, {**current.values, **extra}, current.actions)
