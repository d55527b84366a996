"""Meeting reminders: at each offset before the start (7d, 1d, 2h by
default; per meeting `remind=`). The channel gets each reminder without
mentioning anyone; from the day before, invitees who have not answered get
a DM with the answer buttons, and the organiser gets the list of who has
not answered. A meeting is happening whatever the calendar says, so a day
off changes nothing; a reminder due at night waits for the morning unless
the meeting has started by then, and one missed while the bot was down is
sent late only until the next reminder is due (or the meeting starts);
after that it is recorded as skipped."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Iterator

from sqlmodel import Session, select

from bot.council import meetings, messages
from bot.council.times import TimeError, offset_label, parse_offsets
from bot.jobs import SEND, Due, Job, JobEnv, once
from bot.people import Place
from bot.plan import recorded
from bot.plan import tasks as plan_tasks
from bot.plan.periods import fiscal_year
from bot.replies import Message
from bot.store.db import session_scope
from bot.store.models import Meeting
from bot.store.queries import members_by_id

KIND = "meeting.reminder"
DEFAULT = "7d,1d,2h"
PERSONAL_FROM = timedelta(days=1)  # reminders this close go to each invitee too
HORIZON = timedelta(days=60)  # no reminder offset is longer


def _offsets(meeting: Meeting) -> tuple[timedelta, ...]:
    return _read_offsets(meeting.remind or DEFAULT)


@lru_cache(maxsize=256)
def _read_offsets(remind: str) -> tuple[timedelta, ...]:
    # Every minute's tick reads the setting of each meeting ahead, and most
    # share the default or a few others.
    try:
        return tuple(parse_offsets(remind))
    except TimeError:
        return tuple(parse_offsets(DEFAULT))


def due(env: JobEnv, at: datetime) -> Iterator[Due]:
    since = env.since(at)
    # Meetings ahead, and those begun within the day: a reminder missed
    # while the bot was down is then recorded as skipped, once.
    rows = env.session.exec(select(Meeting).where(
        Meeting.status == "scheduled", Meeting.starts_at > at - timedelta(days=1), Meeting.starts_at <= at + HORIZON)
        .order_by(Meeting.starts_at)).all()
    due_now = []
    for meeting in rows:
        offsets = _offsets(meeting)  # largest first
        for offset, following in zip(offsets, (*offsets[1:], timedelta(0))):
            due_at = meeting.starts_at - offset
            if since <= due_at <= at:
                # A reminder is no use once the next one is due: after downtime
                # only the latest goes, the earlier ones are recorded as skipped.
                due_now.append((meeting, offset, due_at, meeting.starts_at - following))
    silent_of = meetings.not_answered(env.session, sorted({meeting.id for meeting, *_ in due_now}))
    for meeting, offset, due_at, deadline in due_now:
        yield from _reminders(env, meeting, silent_of[meeting.id], offset, due_at, deadline)


def _reminders(env: JobEnv, meeting: Meeting, silent: list[int], offset: timedelta, due_at: datetime,
               deadline: datetime) -> Iterator[Due]:
    """`silent`: the ids of the invitees who have not answered."""
    # The start instant is in the slot: a meeting moved to another time gets
    # new reminders, and the old slots are never produced again.
    slot = f"{meeting.starts_at.isoformat()}/{offset_label(offset)}"
    subject = f"meeting:{meeting.id}"
    last_day = offset <= PERSONAL_FROM
    to_organiser = offset_label(offset) == "1d" and silent
    # Built when the first of them is sent, in a transaction of its own: every
    # minute's tick finds the same meetings ahead, and building their
    # reminders (counts, organiser, agenda, plan items) only to learn they
    # were sent long ago was most of an idle tick. The reminder serves the
    # channel and every invitee, and shares its reads with the organiser's
    # notice (`once`: built by the first sent).
    engine = env.session.get_bind()
    tz = env.settings.tz

    @once
    def drawn() -> tuple[Message, Message | None]:
        with session_scope(engine, reads_only=True) as session:
            shared = messages.values(session, meeting)
            reminder = Message("council/reminder", {**shared, **_agenda(session, meeting, offset, tz)},
                               messages.rsvp_actions(meeting))
            notice = Message("council/not_answered", {**shared, "silent": members_by_id(session, silent)}) \
                if to_organiser else None
        return reminder, notice

    if meeting.channel:
        yield Due(subject, slot, due_at, lambda: drawn()[0].sent(place=Place.parse(meeting.channel)),
                  deadline=deadline)
    if last_day or not meeting.channel:
        for member_id in silent:
            yield Due(f"{subject}:member:{member_id}", slot, due_at,
                      lambda member_id=member_id: drawn()[0].sent(dm_to=member_id), deadline=deadline)
    if to_organiser:
        yield Due(f"{subject}:organiser", slot, due_at, lambda: drawn()[1].sent(dm_to=meeting.organiser_id),
                  deadline=deadline)


def _agenda(session: Session, meeting: Meeting, offset: timedelta, tz) -> dict:
    last_day = offset <= PERSONAL_FROM
    extra = {"offset": offset_label(offset), "agenda": meetings.agenda(session, meeting) if last_day else [],
             "plan_items": [], "behind": []}
    if last_day and meeting.kind == "協議会":
        # Before a council: the plan's tasks overdue or due by the meeting,
        # and the indicators behind target, as a draft agenda (plan, do, check).
        day = meeting.starts_at.astimezone(tz).date()
        extra.update(plan_items=plan_tasks.open_before(session, day),
                     behind=recorded.behind_target(session, fiscal_year(day)))
    return extra


# Sent late while still useful: until the next reminder is due, or the meeting starts.
JOBS = [Job(KIND, due, day_off=SEND, quiet=True, late_grace=HORIZON)]
