"""The vacancy board's timed message: the morning freshness prompt.

Each morning (team.vacancy.morning_prompt), every facility whose figures are
older than the limit gets a DM to each of its staff with 「変わりなし」 and
「更新する」. Not on a day off (nobody updates a board then, and a stale
figure is not urgent) and never at night.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Iterator

from sqlalchemy import func, select
from sqlmodel import Session
from sqlmodel import select as orm_select

from bot.calendar import daily_slots
from bot.jobs import SKIP, Due, Job, JobEnv
from bot.replies import Action, Post
from bot.settings import Settings
from bot.store.models import Facility, FacilityStaff, Member, VacancyFigure
from bot.store.versions import PerDatabase
from bot.vacancy import figures

KIND = "vacancy.freshness"


def stale_at(session: Session, settings: Settings, due_at: datetime) -> list[tuple[int, datetime]]:
    """(facility id, oldest confirmation) for facilities with a figure for a
    night from that day on that was last confirmed before the limit."""
    day = due_at.astimezone(settings.tz).date()
    return _stale.get(session, (day, due_at - timedelta(hours=settings.team.vacancy.freshness_hours)))


def _find_stale(session: Session, key: tuple[date, datetime]) -> list[tuple[int, datetime]]:
    day, cutoff = key
    fig = VacancyFigure.__table__
    return [tuple(r) for r in session.connection().execute(
        select(fig.c.facility_id, func.min(fig.c.confirmed_at))
        .where(fig.c.night >= day, fig.c.confirmed_at < cutoff)
        .group_by(fig.c.facility_id).order_by(fig.c.facility_id))]


# Every minute's tick asks this of each morning slot in its look-back (a
# grouped query over the figures, 25 ms at 2,000 facilities): the answer
# for a slot changes only with the figures.
_stale = PerDatabase(VacancyFigure, _find_stale, keep=16)


def freshness_prompts(env: JobEnv, at: datetime) -> Iterator[Due]:
    """One DM per staff member of each stale facility, for every morning slot
    already due. A slot is judged by the figures as they were due then, so
    a prompt sent late still names what was stale that morning."""
    settings = env.settings
    for day, due_at in daily_slots(at, settings.team.vacancy.morning_prompt, settings.tz, env.lookback_days):
        for facility_id, oldest in stale_at(env.session, settings, due_at):
            facility = env.session.get(Facility, facility_id)
            values = {"facility": {"id": facility.id, "name": facility.name}, "oldest": oldest, "now": at,
                      "spans": figures.upcoming(env.session, facility_id, day, days=7),
                      "freshness": int(settings.team.vacancy.freshness_hours)}
            for member in _staff(env.session, facility_id):
                subject, message = _prompt(facility_id, member, values)
                yield Due(subject, day.isoformat(), due_at, message)


def _staff(session: Session, facility_id: int) -> list[Member]:
    return session.exec(orm_select(Member).join(FacilityStaff, FacilityStaff.member_id == Member.id)
                        .where(FacilityStaff.facility_id == facility_id).order_by(FacilityStaff.id)).all()


def _prompt(facility_id: int, member: Member, values: dict) -> tuple[str, Post]:
    # The one place that knows how a prompt is addressed (the subject is part
    # of the delivery key, so existing rows keep matching).
    actions = [Action.make("vacancy_confirm", facility_id, style="primary"), Action.make("vacancy_update", facility_id)]
    return f"facility:{facility_id}:member:{member.id}", Post("vacancy/prompt", values, actions, dm_to=member.id)


JOBS = [Job(KIND, freshness_prompts, day_off=SKIP, quiet=True)]
