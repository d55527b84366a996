"""Plan tasks: adding, finding (forgiving search over titles), completing
once per period, undoing, and what is due or overdue. Returns domain data;
`bot.commands.plan` words it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, exists
from sqlmodel import Session, func, select

from bot.context import Context
from bot.lookup import FuzzyIndex, Match
from bot.plan.periods import CATEGORIES, fiscal_year, period
from bot.privacy import audit
from bot.store.models import Member, PlanCompletion, PlanTask, PlanTaskOwner
from bot.store.queries import insert_unless_there, linked_members, members_keyed
from bot.store.versions import PerDatabase

SOON = timedelta(days=14)
# Readings of the words plan titles are made of, so a title can be typed in
# kana (`れんけいシート` finds 連携シート). A short glossary of this field's
# words stands in for a kanji dictionary (the usual one, pykakasi, is GPL).
READINGS = {
    "連携": "れんけい", "統一": "とういつ", "連絡票": "れんらくひょう", "連絡": "れんらく", "様式": "ようしき",
    "改訂": "かいてい", "研修": "けんしゅう", "協議会": "きょうぎかい", "推進": "すいしん", "部会": "ぶかい",
    "開催": "かいさい", "在宅": "ざいたく", "医療": "いりょう", "介護": "かいご", "看取り": "みとり",
    "講座": "こうざ", "市民": "しみん", "公開": "こうかい", "広報": "こうほう", "記事": "きじ", "番組": "ばんぐみ",
    "資源": "しげん", "地図": "ちず", "空床": "くうしょう", "情報": "じょうほう", "共有": "きょうゆう",
    "評価": "ひょうか", "指標": "しひょう", "計画": "けいかく", "事例": "じれい", "検討会": "けんとうかい",
    "入退院": "にゅうたいいん", "退院": "たいいん", "入院": "にゅういん", "多職種": "たしょくしゅ",
    "相談": "そうだん", "窓口": "まどぐち", "周知": "しゅうち", "夜間": "やかん", "休日": "きゅうじつ",
    "体制": "たいせい", "主治医": "しゅじい", "寸劇": "すんげき", "普及": "ふきゅう", "啓発": "けいはつ",
    "件数": "けんすう", "参加者": "さんかしゃ", "搬送": "はんそう", "救急": "きゅうきゅう", "訪問": "ほうもん",
}
_WORDS = sorted(READINGS, key=len, reverse=True)


def reading(title: str) -> str:
    """The title with the glossary's words in kana: a second key to find it by."""
    for word in _WORDS:
        title = title.replace(word, READINGS[word])
    return title


@dataclass(frozen=True)
class TaskKey:
    id: int
    title: str


def _build_index(session: Session, year: int) -> FuzzyIndex[TaskKey]:
    rows = session.exec(select(PlanTask.id, PlanTask.title).where(PlanTask.fiscal_year == year)
                        .order_by(PlanTask.id)).all()
    return FuzzyIndex([TaskKey(*r) for r in rows], keys=lambda k: (k.title, reading(k.title)))


_indexes = PerDatabase(PlanTask, _build_index)


def index(session: Session, year: int) -> FuzzyIndex[TaskKey]:
    """This year's tasks by title (`れんけいシート` finds 連携シート), built
    once per process until a task is added or edited."""
    return _indexes.get(session, year)


def find(ctx: Context, text: str) -> tuple[Match[PlanTask], str]:
    match, rest = index(ctx.session, fiscal_year(ctx.today)).search_leading(text)
    rows = [ctx.session.get(PlanTask, k.id) for k in match.items]
    return Match(match.kind, match.query, [r for r in rows if r is not None]), rest


def add(ctx: Context, *, year: int, category: str, title: str, due: date | None, every: str | None,
        owners: list[Member], source: str = "added", meeting_id: int | None = None) -> tuple[PlanTask, bool]:
    if ctx.request_key:
        earlier = ctx.session.exec(select(PlanTask).where(PlanTask.request_key == ctx.request_key)).first()
        if earlier is not None:
            return earlier, True
    task = PlanTask(fiscal_year=year, category=category, title=title, due=due, every=every, source=source,
                    meeting_id=meeting_id, created_by_id=ctx.member.id, created_at=ctx.now,
                    request_key=ctx.request_key)
    ctx.session.add(task)
    ctx.session.flush()
    for member in owners:
        ctx.session.add(PlanTaskOwner(task_id=task.id, member_id=member.id))
    audit(ctx, "plan.add", target=f"task:{task.id}", detail=f"{category} {title}"[:200])
    return task, False


def from_meeting(session: Session, meeting_id: int) -> list[PlanTask]:
    """The tasks a meeting's decisions became."""
    return list(session.exec(select(PlanTask).where(PlanTask.meeting_id == meeting_id).order_by(PlanTask.id)))


def owners(session: Session, task: PlanTask) -> list[Member]:
    return linked_members(session, PlanTaskOwner, "task_id", task.id)


def _completion(task: PlanTask, code: str):
    return select(PlanCompletion).where(PlanCompletion.task_id == task.id, PlanCompletion.period == code)


def completion(session: Session, task: PlanTask, code: str) -> PlanCompletion | None:
    return session.exec(_completion(task, code)).first()


def complete(ctx: Context, task: PlanTask, comment: str) -> tuple[PlanCompletion, bool]:
    """Log the task done for the current period; (row, True) if someone
    already had (earlier, or a colleague at the same moment), in which case
    nothing changes."""
    code = period(task.every, ctx.today)
    row = PlanCompletion(task_id=task.id, period=code, member_id=ctx.member.id, at=ctx.now, comment=comment[:500])
    earlier = insert_unless_there(ctx.session, row, ("task_id", "period"), lambda: _completion(task, code))
    if earlier is not None:
        return earlier, True
    audit(ctx, "plan.done", target=f"task:{task.id}", detail=code)
    return row, False


def undo(ctx: Context, task: PlanTask) -> PlanCompletion | None:
    """Take back this period's completion (the audit trail keeps both)."""
    row = completion(ctx.session, task, period(task.every, ctx.today))
    if row is not None:
        ctx.session.delete(row)
        audit(ctx, "plan.undo", target=f"task:{task.id}", detail=row.period)
    return row


def history(session: Session, task: PlanTask) -> list[tuple[PlanCompletion, Member]]:
    return list(session.exec(select(PlanCompletion, Member).join(Member, Member.id == PlanCompletion.member_id)
                             .where(PlanCompletion.task_id == task.id).order_by(PlanCompletion.at.desc())))


def is_done(session: Session, task: PlanTask, today: date) -> bool:
    return completion(session, task, period(task.every, today)) is not None


def current_period(today: date):
    """The SQL form of `period(PlanTask.every, today)`: on a given day a task
    can only be in one of three periods, so a CASE on `every` picks it."""
    return case((PlanTask.every == "month", period("month", today)),
                (PlanTask.every == "quarter", period("quarter", today)), else_=period(None, today))


def _completed_now(today: date):
    """A completion logged for its task's current period. The list of the
    three codes says nothing new, but lets the database leave out the
    log's older periods before it matches completions to tasks."""
    return and_(PlanCompletion.task_id == PlanTask.id, PlanCompletion.period == current_period(today),
                PlanCompletion.period.in_([period(every, today) for every in ("month", "quarter", None)]))


def done_now(today: date):
    """True for a task already done for its current period (one index probe
    on the completion log's (task, period) key, in the same query)."""
    return exists().where(_completed_now(today))


@dataclass
class Overview:
    year: int
    progress: list[tuple[str, int, int]]  # (category, done, total)
    soon: list[tuple[PlanTask, list[Member]]]  # the first `shown`, if a limit was given
    overdue: list[tuple[PlanTask, list[Member]]]
    soon_count: int = 0
    overdue_count: int = 0


def _open_now(year: int, today: date) -> tuple:
    """This year's tasks due within 14 days (or overdue) and not done for their period."""
    return (PlanTask.fiscal_year == year, PlanTask.due.is_not(None), PlanTask.due <= today + SOON, ~done_now(today))


def _listing(year: int, today: date, late: bool, *columns):
    which = PlanTask.due < today
    return select(*columns).where(*_open_now(year, today), which if late else ~which).order_by(PlanTask.due,
                                                                                                PlanTask.id)


@dataclass(frozen=True)
class _Shown:
    """A reply's overview as ids and numbers: what the plan's tables decide."""
    progress: tuple[tuple[str, int, int], ...]
    soon: tuple[int, ...]
    overdue: tuple[int, ...]
    soon_count: int
    overdue_count: int


def _shown(session: Session, key: tuple[int, date, int]) -> _Shown:
    year, today, shown = key
    late = PlanTask.due < today
    overdue_count, soon_count = session.exec(select(
        func.count(PlanTask.id).filter(late), func.count(PlanTask.id).filter(~late)).where(
        *_open_now(year, today))).one()
    soon, overdue = (tuple(session.exec(_listing(year, today, which, PlanTask.id).limit(shown)))
                     for which in (False, True))
    return _Shown(tuple(progress(session, year, today)), soon, overdue, soon_count, overdue_count)


# Kept per process while no task and no completion changed (one version
# read): `/plan` is asked far more often than the plan changes, and its
# counts read the whole year's tasks and log. One entry per day and size.
_overviews = PerDatabase((PlanTask, PlanCompletion), _shown)


def overview(session: Session, year: int, today: date, shown: int | None = None) -> Overview:
    """Per category done/total (a recurring task counts as done for the
    current period), what is due within 14 days and what is overdue: all
    of it, or the first `shown` of each list with the counts (a reply shows
    ten; building thousands of tasks to count them was most of its time)."""
    if shown is None:
        return _whole(session, year, today)
    ids = _overviews.get(session, (year, today, shown))
    rows = {t.id: t for t in session.exec(_TASKS_BY_ID, params={"ids": ids.soon + ids.overdue})}
    people = owners_of(session, list(rows))
    soon, overdue = ([(rows[i], people.get(i, [])) for i in listed if i in rows] for listed in (ids.soon, ids.overdue))
    return Overview(year, list(ids.progress), soon, overdue, ids.soon_count, ids.overdue_count)


def _whole(session: Session, year: int, today: date) -> Overview:
    """Every task in both lists (the weekly job): owners by subqueries, not
    thousands of ids to send and plan."""
    listings = [_listing(year, today, late, PlanTask) for late in (False, True)]
    soon, overdue = (list(session.exec(listing)) for listing in listings)
    people: dict[int, list[Member]] = {}
    for listing in listings:
        people.update(_owners(session, _owner_pairs(PlanTaskOwner.task_id.in_(listing.with_only_columns(PlanTask.id)))))
    return Overview(year, progress(session, year, today), [(t, people.get(t.id, [])) for t in soon],
                    [(t, people.get(t.id, [])) for t in overdue], len(soon), len(overdue))


def progress(session: Session, year: int, today: date) -> list[tuple[str, int, int]]:
    """(category, done, total) for each of the handbook's items, counted by
    the database (a task has at most one completion per period)."""
    counts = {category: (done, total) for category, done, total in session.exec(
        select(PlanTask.category, func.count(PlanCompletion.id), func.count(PlanTask.id))
        .outerjoin(PlanCompletion, _completed_now(today))
        .where(PlanTask.fiscal_year == year).group_by(PlanTask.category))}
    return [(c, *counts.get(c, (0, 0))) for c in CATEGORIES]


def owners_of(session: Session, task_ids: list[int]) -> dict[int, list[Member]]:
    return _owners(session, _OWNER_PAIRS, ids=task_ids) if task_ids else {}


def _owner_pairs(which):
    return select(PlanTaskOwner.task_id, PlanTaskOwner.member_id).where(which).order_by(PlanTaskOwner.id)


# Built once: every `/plan` runs them (see store.queries).
_OWNER_PAIRS = _owner_pairs(PlanTaskOwner.task_id.in_(bindparam("ids", expanding=True)))
_TASKS_BY_ID = select(PlanTask).where(PlanTask.id.in_(bindparam("ids", expanding=True)))


def _owners(session: Session, pairs_query, **params) -> dict[int, list[Member]]:
    """Each task's owners in the order they were added: pairs first, then
    each member read once (a plan's 5,000 tasks share a few hundred people)."""
    pairs = session.exec(pairs_query, params=params).all()
    keyed = members_keyed(session, [m for _, m in pairs])
    found: dict[int, list[Member]] = {}
    for task_id, member_id in pairs:
        found.setdefault(task_id, []).append(keyed[member_id])
    return found


def open_before(session: Session, day: date) -> list[PlanTask]:
    """This year's tasks not done for their current period and due by
    `day`: the plan's part of a council meeting's draft agenda."""
    return list(session.exec(select(PlanTask).where(
        PlanTask.fiscal_year == fiscal_year(day), PlanTask.due.is_not(None), PlanTask.due <= day, ~done_now(day))
        .order_by(PlanTask.due, PlanTask.id)))


def mine(session: Session, member: Member, year: int, today: date) -> list[PlanTask]:
    return list(session.exec(select(PlanTask).join(PlanTaskOwner, PlanTaskOwner.task_id == PlanTask.id).where(
        PlanTaskOwner.member_id == member.id, PlanTask.fiscal_year == year, ~done_now(today))
        .order_by(PlanTask.due, PlanTask.id)))


def rollover(ctx: Context, to_year: int) -> tuple[int, int]:
    """Start `to_year`'s plan from the year before: its recurring tasks and
    the one-off tasks never done, due dates a year on, owners kept. A title
    already in the new year is not copied again. Returns (copied, skipped)."""
    have = {t.title for t in ctx.session.exec(select(PlanTask).where(PlanTask.fiscal_year == to_year))}
    copied = skipped = 0
    for task in ctx.session.exec(select(PlanTask).where(PlanTask.fiscal_year == to_year - 1).order_by(PlanTask.id)):
        done = ctx.session.exec(select(PlanCompletion.id).where(PlanCompletion.task_id == task.id)).first()
        if (task.every is None and done is not None) or task.title in have:
            skipped += 1
            continue
        due = None
        if task.due is not None:
            due = task.due.replace(year=task.due.year + 1, day=min(task.due.day, 28 if task.due.month == 2 else 31))
        add(ctx, year=to_year, category=task.category, title=task.title, due=due, every=task.every,
            owners=owners(ctx.session, task), source="rollover")
        copied += 1
    return copied, skipped


def edit(ctx: Context, task: PlanTask, owners: list[Member] | None = None, **fields: Any) -> list[str]:
    """Change the given fields (category, title, due, every; None clears due
    or every) and, if given, the owners; the names of what changed. A change
    of repetition keeps the log: completions stay under their own periods."""
    changed = []
    for name in ("category", "title", "due", "every"):  # one order, however they were typed
        if name in fields and getattr(task, name) != (value := fields[name]):
            setattr(task, name, value)
            changed.append(name)
    if owners is not None and {m.id for m in owners} != {m.id for m in owners_of(ctx.session, [task.id]).get(
            task.id, [])}:
        for row in ctx.session.exec(select(PlanTaskOwner).where(PlanTaskOwner.task_id == task.id)):
            ctx.session.delete(row)
        ctx.session.flush()
        for member in owners:
            ctx.session.add(PlanTaskOwner(task_id=task.id, member_id=member.id))
        changed.append("owners")
    if changed:
        task.updated_at = ctx.now
        ctx.session.add(task)
        audit(ctx, "plan.edit", target=f"task:{task.id}", detail=",".join(changed))
    return changed
