"""The plan's timed messages: the weekly digest on Monday at 09:00 (a
holiday Monday or 年末年始 moves it to the next working day, sent once), and
on the same morning one DM to each owner with overdue tasks."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Iterator

from sqlalchemy import bindparam, func
from sqlmodel import Session, select

from bot.calendar import weekly_slots
from bot.delivery import SETTLED
from bot.jobs import NEXT_WORKING_DAY, Due, Job, JobEnv
from bot.people import Place
from bot.plan import digest
from bot.replies import Action, Message, Post
from bot.store.models import Delivery, Member, PlanTask

KIND = "plan.digest"


def due(env: JobEnv, at: datetime) -> Iterator[Due]:
    plan = env.settings.team.plan
    place = digest.channel(env.session, env.settings)
    for week, due_at in weekly_slots(at, plan.digest_weekday, plan.digest_time, env.settings.tz,
                                     env.lookback_weeks):
        slot = week.isoformat()
        if _settled(env.session, slot):
            continue  # every tick looks back weeks: don't compute a digest already sent
        day = due_at.astimezone(env.settings.tz).date()
        values = digest.values(env.session, env.settings, day, due_at, every_task=True)
        if place:
            post = Post("plan/digest", values, place=Place.parse(place),
                        replies=[Message("plan/digest_details", values)])
            yield Due("plan:channel", slot, due_at, post)
        muted = digest.muted(env.session)
        for member_id, (member, overdue) in digest.overdue_by_owner(values["o"]).items():
            if member_id not in muted:
                # Built only if sent: after days down, thousands of these are skipped.
                yield Due(f"plan:owner:{member_id}", slot, due_at, partial(_overdue_dm, member, overdue))


def _overdue_dm(member: Member, overdue: list[PlanTask]) -> Message:
    buttons = [Action.make("plan_done", t.id, title=t.title) for t in overdue[:25]]
    return Message("plan/overdue_dm", {"tasks": overdue, "member": member}, buttons).sent(dm_to=member.id)


# Counted by the database: every minute's tick asks it of each week it
# looks back on, and a week holds a row for each owner (2,500 at full size).
_WEEK_ROWS_AND_OPEN = select(func.count(), func.count().filter(~SETTLED)).where(
    Delivery.kind == KIND, Delivery.slot == bindparam("slot"))


def _settled(session: Session, slot: str) -> bool:
    """That week's digest and DMs all went out, were skipped, or were given up."""
    rows, open_ = session.exec(_WEEK_ROWS_AND_OPEN, params={"slot": slot}).one()
    return rows > 0 and open_ == 0


JOBS = [Job(KIND, due, day_off=NEXT_WORKING_DAY, quiet=True)]
