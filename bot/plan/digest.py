"""The weekly digest: one short post to the plan channel with the headline
figures, and the details as a reply in its thread so the channel stays
quiet; and one DM to each owner with overdue tasks (unless muted). Lists
are capped so a plan of any size fits Slack's limits: the rest is counted
and `/plan` shows it."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlmodel import Session, func, select

from bot.plan import indicators, recorded, tasks
from bot.plan.periods import fiscal_year
from bot.plan.template import categories
from bot.settings import Settings
from bot.store.models import Meeting, Member, PlanCompletion, PlanMute, PlanTask, TeamSetting, VacancyFigure
from bot.store.queries import members_keyed

CHANNEL_KEY = "plan.channel"
SHOWN = 10  # items per list in the thread; the rest are counted


_CHANNEL = select(TeamSetting).where(TeamSetting.key == CHANNEL_KEY)  # built once: every `/plan` reads it


def channel(session: Session, settings: Settings) -> str | None:
    row = session.exec(_CHANNEL).first()
    return row.value if row else (settings.team.plan.channel or None)


def set_channel(session: Session, place: str, only_if_unset: bool = False) -> bool:
    row = session.exec(_CHANNEL).first()
    if row is not None and only_if_unset:
        return False
    row = row or TeamSetting(key=CHANNEL_KEY, value=place)
    row.value = place
    session.add(row)
    return True


def values(session: Session, settings: Settings, today: date, now: datetime, every_task: bool = False) -> dict:
    """Everything the digest says, for the week ending `today`. The lists
    hold the first SHOWN tasks, or `every_task` (the owners' DMs need all)."""
    year = fiscal_year(today)
    overview = tasks.overview(session, year, today, shown=None if every_task else SHOWN)
    done = completed(session, now - timedelta(days=7), now)
    meetings = list(session.exec(select(Meeting).where(Meeting.status == "scheduled", Meeting.starts_at >= now,
                                                       Meeting.starts_at < now + timedelta(days=31))
                                 .order_by(Meeting.starts_at).limit(5)))
    free_tonight = session.exec(select(func.coalesce(func.sum(VacancyFigure.beds), 0)).where(
        VacancyFigure.night == today, VacancyFigure.confirmed_at >= now - timedelta(
            hours=settings.team.vacancy.freshness_hours))).one()
    figures = indicators.computed(session, year, today, now, settings.tz, settings.team.vacancy.freshness_hours)
    return {"o": overview, "done": done, "meetings": meetings, "free_tonight": free_tonight, "today": today,
            "names": categories(settings.config_dir), "shown": SHOWN, "figures": figures,
            "recorded": recorded.figures(session, year)}


def completed(session: Session, since: datetime, until: datetime) -> list[tuple[PlanCompletion, PlanTask, Member]]:
    """What was logged done in the week, oldest first, with who did it
    (each member read once: a busy week logs thousands by a few hundred)."""
    rows = session.exec(select(PlanCompletion, PlanTask).join(PlanTask, PlanTask.id == PlanCompletion.task_id)
                        .where(PlanCompletion.at >= since, PlanCompletion.at < until)
                        .order_by(PlanCompletion.at)).all()
    people = members_keyed(session, [c.member_id for c, _ in rows])
    return [(row, task, people[row.member_id]) for row, task in rows]


def muted(session: Session) -> set[int]:
    """The members who turned the overdue DM off (`/plan mute`)."""
    return set(session.exec(select(PlanMute.member_id)))


def overdue_by_owner(overview: tasks.Overview) -> dict[int, tuple[Member, list[PlanTask]]]:
    owners: dict[int, tuple[Member, list[PlanTask]]] = {}
    for task, people in overview.overdue:
        for member in people:
            owners.setdefault(member.id, (member, []))[1].append(task)
    return owners
