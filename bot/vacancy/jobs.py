"""The vacancy board's timed message: the morning freshness prompt.

Each morning (team.vacancy.morning_prompt), every facility whose figures are
older than the limit gets a DM to each of its staff with 「変わりなし」 and
「更新する」. Not on a day off (nobody updates a board then, and a stale
figure is not urgent) and never at night.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial
from typing import Callable, Iterator

from sqlalchemy import func, select
from sqlmodel import Session

from bot.calendar import daily_slots
from bot.jobs import SKIP, Due, Job, JobEnv, once
from bot.replies import Action, Post
from bot.settings import Settings
from bot.store.db import session_scope
from bot.store.models import Facility, FacilityStaff, VacancyFigure
from bot.store.queries import member_ids_by
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


# Each facility's staff (member ids, in the order added), for the same
# ticks: asked of the stale facilities of every look-back day, they were a
# query of hundreds of ids each time; staff change seldom.
_staff = PerDatabase(FacilityStaff, lambda session, _key: member_ids_by(session, FacilityStaff, "facility_id", None))


def freshness_prompts(env: JobEnv, at: datetime) -> Iterator[Due]:
    """One DM per staff member of each stale facility, for every morning slot
    already due. A slot is judged by the figures as they were due then, so
    a prompt sent late still names what was stale that morning."""
    settings = env.settings
    engine = env.session.get_bind()
    staff = _staff.get(env.session)
    for day, due_at in daily_slots(at, settings.team.vacancy.morning_prompt, settings.tz, env.lookback_days):
        for facility_id, oldest in stale_at(env.session, settings, due_at):
            # Read when the first of its prompts is sent, and shared by its
            # staff: every minute's tick finds the same stale facilities,
            # whose prompts went out that morning. Read here for each, they
            # were three queries a facility a minute (2,000 at 660 stale).
            values = once(partial(_values, engine, settings, facility_id, oldest, day, at))
            for member_id in staff.get(facility_id, ()):
                yield Due(_subject(facility_id, member_id), day.isoformat(), due_at,
                          partial(_prompt, facility_id, member_id, values))


def _values(engine, settings: Settings, facility_id: int, oldest: datetime, day: date, at: datetime) -> dict:
    with session_scope(engine, reads_only=True) as session:
        facility = session.get(Facility, facility_id)
        return {"facility": {"id": facility.id, "name": facility.name}, "oldest": oldest, "now": at,
                "spans": figures.upcoming(session, facility_id, day, days=7),
                "freshness": int(settings.team.vacancy.freshness_hours)}


def _subject(facility_id: int, member_id: int) -> str:
    # The one place that knows how a prompt is addressed (the subject is part
    # of the delivery key, so existing rows keep matching).
    return f"facility:{facility_id}:member:{member_id}"


def _prompt(facility_id: int, member_id: int, values: Callable[[], dict]) -> Post:
    actions = [Action.make("vacancy_confirm", facility_id, style="primary"), Action.make("vacancy_update", facility_id)]
    return Post("vacancy/prompt", values(), actions, dm_to=member_id)


JOBS = [Job(KIND, freshness_prompts, day_off=SKIP, quiet=True)]
