"""Indicators computed from the team's own work (handbook item H asks for
structure, process and outcome indicators agreed in advance). Each comes
with its definition, shown beside the figure, and a trend per fiscal
quarter where it is a rate of something that happens over time."""

from __future__ import annotations

import threading
import weakref
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from time import monotonic
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, distinct, exists, func, literal_column, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.plan.periods import bounds, fiscal_year
from bot.store.models import CareTeamMember, Facility, Member, Note, NoteAck, Patient, VacancyFigure

BARS = "▁▂▃▄▅▆▇█"


@dataclass
class Figure:
    name: str
    kind: str  # 構造 | 過程 | 結果
    value: str
    definition: str
    trend: list[float | None] = field(default_factory=list)  # per quarter, Q1 first

    @property
    def sparkline(self) -> str:
        known = [v for v in self.trend if v is not None]
        if not known:
            return ""
        top = max(known) or 1
        return "".join("・" if v is None else BARS[min(len(BARS) - 1, int(v / top * (len(BARS) - 1)))]
                       for v in self.trend)


def quarters(year: int) -> list[tuple[date, date]]:
    first, _ = bounds(year)
    starts = [date(first.year + (m > 12), (m - 1) % 12 + 1, 1) for m in (4, 7, 10, 13)]
    ends = [*(s - timedelta(days=1) for s in starts[1:]), date(year + 1, 3, 31)]
    return list(zip(starts, ends))


def _instant(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def home_death_rates(session: Session, year: int) -> list[tuple[int, int]]:
    """(在宅看取り, 在宅看取り + 病院死亡) per fiscal quarter, Q1 first: one pass
    over the year's ended cares, counted per day of ending and outcome."""
    first, last = bounds(year)
    starts = [q_first for q_first, _ in quarters(year)]
    rates = [[0, 0] for _ in starts]
    for ended_on, outcome, count in session.exec(select(Patient.ended_on, Patient.outcome, func.count(Patient.id))
                                                 .where(Patient.status == "ended", Patient.ended_on >= first,
                                                        Patient.ended_on <= last,
                                                        Patient.outcome.in_(("在宅看取り", "病院死亡")))
                                                 .group_by(Patient.ended_on, Patient.outcome)):
        rate = rates[bisect_right(starts, ended_on) - 1]
        rate[0] += count if outcome == "在宅看取り" else 0
        rate[1] += count
    return [(home, deaths) for home, deaths in rates]


def doctors_in_teams(session: Session) -> int:
    """Asked per doctor (their care teams, each patient by key), not by
    joining every patient."""
    on_a_team = exists().where(CareTeamMember.member_id == Member.id, CareTeamMember.patient_id == Patient.id,
                               Patient.status == "active")
    return session.exec(select(func.count(Member.id)).where(Member.profession == "医師", on_a_team)).one()


def participation(session: Session, since: datetime, until: datetime) -> dict[str, int]:
    """Members who wrote or acknowledged at least one note, by profession.
    Asked per member (two index probes each: a team has hundreds of
    members, a year a million notes)."""
    wrote = exists().where(Note.author_id == Member.id, Note.created_at >= since, Note.created_at < until)
    acked = exists().where(NoteAck.member_id == Member.id, NoteAck.acked_at >= since, NoteAck.acked_at < until)
    rows = session.exec(select(Member.profession, func.count(Member.id)).where(or_(wrote, acked))
                        .group_by(Member.profession)).all()
    return {(profession or "（未登録）"): count for profession, count in rows}


def responsiveness(session: Session, since: datetime, until: datetime) -> tuple[int, int]:
    """Notes acknowledged by someone other than the author within 24 hours
    (the author's own acknowledgement never counts): (quick, notes)."""
    return responsiveness_in(session, [(since, until)])[0]


def responsiveness_in(session: Session, spans: list[tuple[datetime, datetime]]) -> list[tuple[int, int]]:
    """`responsiveness` for each of several disjoint spans."""
    quick = exists().where(NoteAck.note_id == Note.id, NoteAck.member_id != Note.author_id,
                           _within_a_day(session, NoteAck.acked_at, Note.created_at))
    notes = _notes_in(session, spans)
    answered = _notes_in(session, [span if n else (span[0], span[0]) for span, n in zip(spans, notes)], quick)
    return list(zip(answered, notes))


def _notes_in(session: Session, spans: list[tuple[datetime, datetime]], *where) -> list[int]:
    """How many notes were created in each span (and meet `where`).
    PostgreSQL counts all spans in one scan grouped by span, so its hash
    join reads the acknowledgements once, not once per quarter; SQLite has
    no hash join and would sort to group, so it scans each span's range."""
    counts = [0] * len(spans)
    live = [(i, (since, until)) for i, (since, until) in enumerate(spans) if since < until]
    if session.get_bind().dialect.name == "sqlite" or len(live) == 1:
        for i, (since, until) in live:
            counts[i] = session.exec(select(func.count()).select_from(Note).where(
                Note.created_at >= since, Note.created_at < until, *where)).one()
    elif live:
        which = _which_span(Note.created_at, spans)
        for i, count in session.exec(select(which, func.count()).where(
                Note.created_at >= min(since for _, (since, _u) in live),
                Note.created_at < max(until for _, (_s, until) in live), *where).group_by(which)):
            if i >= 0:
                counts[i] = count
    return counts


def _which_span(column, spans: list[tuple[datetime, datetime]]):
    """The index of the span `column` falls in, -1 if none: one comparison
    per boundary, spans taken in time order."""
    whens, edge = [], None
    for i, (since, until) in sorted(enumerate(spans), key=lambda item: item[1]):
        if since >= until:
            continue
        if edge is None or since > edge:
            whens.append((column < since, -1))
        whens.append((column < until, i))
        edge = until
    return case(*whens, else_=-1)


_SECOND = 1 / 86400  # in days, julianday's unit


def _within_a_day(session: Session, later, earlier):
    """`later <= earlier + 24 h`, to the microsecond, in the database."""
    if session.get_bind().dialect.name != "sqlite":
        return later <= earlier + literal_column("INTERVAL '24 hours'")  # not '1 day': no DST shift
    # SQLite keeps UTC text, 'YYYY-MM-DD HH:MM:SS.ffffff'. julianday() is
    # cheap but rounds to the millisecond, so it only settles the clear
    # cases; within a second of the bound the text is compared with the
    # bound spelt exactly (whole seconds moved a day on, the fraction kept).
    gap = func.julianday(later) - func.julianday(earlier)
    bound = func.datetime(func.substr(earlier, 1, 19), "+1 day").concat(func.substr(earlier, 20))
    return or_(gap < 1 - _SECOND, and_(gap <= 1 + _SECOND, later <= bound))


@dataclass(frozen=True)
class _Settled:
    """A span's notes created from its start to `until`, counted: older
    than SETTLED, they can no longer gain or lose a quick acknowledgement."""

    until: datetime
    quick: int
    notes: int


@dataclass(frozen=True)
class _Seen:
    notes: int  # the highest Note.id and NoteAck.id when the counts were checked
    acks: int
    settled: dict[tuple[datetime, datetime], _Settled]


# Acknowledgements come with the time they are pressed, and neither they nor
# notes are ever deleted or back-dated (a correction keeps the note's time
# and author), so a note's answer is settled a day after it was written;
# the second day is for a transaction still open when we counted.
SETTLED = timedelta(hours=48)
_seen: "weakref.WeakKeyDictionary[Engine, _Seen]" = weakref.WeakKeyDictionary()
RECENT_TTL = 60.0  # seconds
_memo: "weakref.WeakKeyDictionary[Engine, tuple]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _unindexed(column):
    """The column's value, hidden from the planner: min() of an indexed
    column would walk that whole index looking for the few new rows, which
    the primary key finds directly."""
    return func.coalesce(column, column)


def forget() -> None:
    """Drop every cached count (benchmarks measure the cold computation)."""
    with _lock:
        _seen.clear()
        _memo.clear()


def responsiveness_by_span(session: Session, spans: list[tuple[datetime, datetime]],
                           now: datetime) -> list[tuple[int, int]]:
    """`responsiveness` for each span. The settled part of each span is
    counted once per process and kept until a note or acknowledgement is
    added that could change it (a new row dated inside it); only the last
    two days, and what was added since, are counted again."""
    engine = session.get_bind()
    note_max = session.exec(select(func.coalesce(func.max(Note.id), 0))).one()
    ack_max = session.exec(select(func.coalesce(func.max(NoteAck.id), 0))).one()
    # The counts do not depend on `now`, only on the rows: with no note or
    # acknowledgement added, the last answer stands (for a minute, in case a
    # transaction with a lower id commits late).
    memo_key = (tuple(spans), note_max, ack_max)
    with _lock:
        memo = _memo.get(engine)
    if memo and memo[0] == memo_key and monotonic() - memo[2] < RECENT_TTL:
        return list(memo[1])
    with _lock:
        seen = _seen.get(engine)
    if seen and (note_max < seen.notes or ack_max < seen.acks):
        seen = None  # rows were deleted (a database restored or emptied): count afresh
    settled = _still_settled(session, seen) if seen else {}
    pieces = []  # per span: (settled before, the span's part to settle now, its recent part)
    for since, until in spans:
        mark = min(until, max(since, now - SETTLED))
        old = settled.get((since, until))
        if old is None or old.until > mark:
            old = _Settled(since, 0, 0)
        pieces.append((old, (old.until, mark), (mark, until)))
    counted = iter(responsiveness_in(session, [span for _, settling, recent in pieces
                                               for span in (settling, recent)]))
    counts = []
    for (since, until), (old, (_, mark), _recent) in zip(spans, pieces):
        (quick, notes), (recent_quick, recent) = next(counted), next(counted)
        settled[(since, until)] = _Settled(mark, old.quick + quick, old.notes + notes)
        counts.append((old.quick + quick + recent_quick, old.notes + notes + recent))
    with _lock:
        _seen[engine] = _Seen(note_max, ack_max, settled)
        _memo[engine] = (memo_key, tuple(counts), monotonic())
    return counts


def _still_settled(session: Session, seen: _Seen) -> dict[tuple[datetime, datetime], _Settled]:
    """The cached counts no note or acknowledgement added since can change:
    a new note dated before a count's end, or a new acknowledgement within
    a day of it, sends that span back to be counted again."""
    new_note = session.exec(select(func.min(_unindexed(Note.created_at))).where(Note.id > seen.notes)).one()
    new_ack = session.exec(select(func.min(_unindexed(NoteAck.acked_at))).where(NoteAck.id > seen.acks)).one()
    changed = min([t for t in (new_note, new_ack and new_ack - timedelta(hours=24)) if t is not None], default=None)
    return {span: s for span, s in seen.settled.items() if changed is None or changed >= s.until}


def vacancy_freshness(session: Session, now: datetime, today: date, hours: float) -> tuple[int, int]:
    """Short-stay facilities whose figures for tonight were confirmed within the limit."""
    total = session.exec(select(func.count(Facility.id))).one()
    fresh = session.exec(select(func.count(distinct(VacancyFigure.facility_id))).where(
        VacancyFigure.night == today, VacancyFigure.confirmed_at >= now - timedelta(hours=hours))).one()
    return fresh, total


def _pct(part: int, whole: int) -> str:
    return f"{part / whole * 100:.0f}%（{part}/{whole}）" if whole else "—（対象なし）"


def computed(session: Session, year: int, today: date, now: datetime, tz: ZoneInfo,
             freshness_hours: float) -> list[Figure]:
    first, last = bounds(year)
    since, until = _instant(first, tz), _instant(last + timedelta(days=1), tz)
    spans = quarters(year)
    # The quarters split the year exactly, so the year's figures are their sums.
    deaths = home_death_rates(session, year)
    responses = responsiveness_by_span(session, [(_instant(q_first, tz), _instant(q_last + timedelta(days=1), tz))
                                                 for q_first, q_last in spans], now)
    home, deaths_all = sum(h for h, _ in deaths), sum(d for _, d in deaths)
    quick, notes = sum(q for q, _ in responses), sum(n for _, n in responses)
    rate_trend = [None if q_first > today else (h / d * 100 if d else None)
                  for (q_first, _), (h, d) in zip(spans, deaths)]
    response_trend = [None if q_first > today else (q / n * 100 if n else None)
                      for (q_first, _), (q, n) in zip(spans, responses)]
    fresh, facilities = vacancy_freshness(session, now, today, freshness_hours)
    by_profession = participation(session, since, until)
    return [
        Figure("在宅看取り率", "結果", _pct(home, deaths_all),
               f"{year}年度に支援が終わった方のうち、在宅看取り ÷（在宅看取り＋病院死亡）", rate_trend),
        Figure("在宅医療に参画するかかりつけ医師数", "構造", f"{doctors_in_teams(session)}人",
               "職種が「医師」で、支援中の方のケアチームに1つ以上入っているメンバーの数"),
        Figure("職種別の参加", "過程",
               "・".join(f"{p} {n}人" for p, n in sorted(by_profession.items())) or "—（記録なし）",
               f"{year}年度に連絡票を書くか「確認しました」を押したメンバーの数（職種別）"),
        Figure("連絡票への応答", "過程", _pct(quick, notes),
               "連絡票のうち、書いた人以外のチームの誰かが24時間以内に「確認しました」を押した割合", response_trend),
        Figure("空床情報の鮮度", "過程", _pct(fresh, facilities),
               f"今夜の空床が{freshness_hours:.0f}時間以内に確認されているショートステイ施設の割合"),
    ]


def warm(session: Session, now: datetime, tz: ZoneInfo, freshness_hours: float) -> None:
    """Count this year's settled notes once, at start-up, so the first
    `/plan indicators` or digest of a process does not read a year of notes."""
    today = now.astimezone(tz).date()
    computed(session, fiscal_year(today), today, now, tz, freshness_hours)
