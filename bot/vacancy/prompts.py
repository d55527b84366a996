"""The morning freshness loop: each facility whose figures are older than
the limit gets a DM to its staff with 「変わりなし」 and 「更新する」.

Called by the scheduler tick for each morning slot; returns what is due,
never sends anything itself."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session
from sqlmodel import select as orm_select

from bot.replies import Post
from bot.settings import Settings
from bot.store.models import Facility, FacilityStaff, Member, VacancyFigure
from bot.vacancy import figures

KIND = "vacancy.freshness"


def stale_at(session: Session, settings: Settings, due_at: datetime) -> list[tuple[int, datetime]]:
    """(facility id, oldest confirmation) for facilities with a figure for a
    night from that day on that was last confirmed before the limit."""
    day = due_at.astimezone(settings.tz).date()
    cutoff = due_at - timedelta(hours=settings.team.vacancy.freshness_hours)
    fig = VacancyFigure.__table__
    return [tuple(r) for r in session.connection().execute(
        select(fig.c.facility_id, func.min(fig.c.confirmed_at))
        .where(fig.c.night >= day, fig.c.confirmed_at < cutoff)
        .group_by(fig.c.facility_id).order_by(fig.c.facility_id))]


def due(session: Session, settings: Settings, due_at: datetime, at: datetime):
    """Yield (subject, Post) for one morning slot: one DM per staff member."""
    day = due_at.astimezone(settings.tz).date()
    for facility_id, oldest in stale_at(session, settings, due_at):
        facility = session.get(Facility, facility_id)
        staff = session.exec(orm_select(Member).join(FacilityStaff, FacilityStaff.member_id == Member.id)
                             .where(FacilityStaff.facility_id == facility_id).order_by(FacilityStaff.id)).all()
        values = {"facility": {"id": facility.id, "name": facility.name}, "oldest": oldest, "now": at,
                  "spans": figures.upcoming(session, facility_id, day, days=7),
                  "freshness": int(settings.team.vacancy.freshness_hours)}
        for member in staff:
            yield f"facility:{facility_id}:{member.slack_user_id}", Post(member.slack_user_id, "vacancy/prompt", values)
