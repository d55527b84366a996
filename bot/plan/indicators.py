"""Indicators computed from the team's own work (handbook item H asks for
structure, process and outcome indicators agreed in advance). Each comes
with its definition, shown beside the figure, and a trend per fiscal
quarter where it is a rate of something that happens over time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, distinct, func
from sqlmodel import Session, select

from bot.plan.periods import bounds
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


def home_death_rate(session: Session, first: date, last: date) -> tuple[int, int]:
    rows = dict(session.exec(select(Patient.outcome, func.count(Patient.id)).where(
        Patient.status == "ended", Patient.ended_on >= first, Patient.ended_on <= last,
        Patient.outcome.in_(("在宅看取り", "病院死亡"))).group_by(Patient.outcome)).all())
    home = rows.get("在宅看取り", 0)
    return home, home + rows.get("病院死亡", 0)


def doctors_in_teams(session: Session) -> int:
    return session.exec(select(func.count(distinct(Member.id))).join(
        CareTeamMember, CareTeamMember.member_id == Member.id).join(Patient, Patient.id == CareTeamMember.patient_id)
        .where(Member.profession == "医師", Patient.status == "active")).one()


def participation(session: Session, since: datetime, until: datetime) -> dict[str, int]:
    """Members who wrote or acknowledged at least one note, by profession."""
    writers = select(Note.author_id.label("member_id")).where(Note.created_at >= since, Note.created_at < until)
    ackers = select(NoteAck.member_id.label("member_id")).where(NoteAck.acked_at >= since, NoteAck.acked_at < until)
    active = writers.union(ackers).subquery()
    rows = session.exec(select(Member.profession, func.count(distinct(Member.id)))
                        .join(active, active.c.member_id == Member.id).group_by(Member.profession)).all()
    return {(profession or "（未登録）"): count for profession, count in rows}


def responsiveness(session: Session, since: datetime, until: datetime) -> tuple[int, int]:
    """Notes acknowledged by someone other than the author within 24 hours."""
    rows = session.exec(select(Note.created_at, func.min(NoteAck.acked_at)).outerjoin(NoteAck, and_(
        NoteAck.note_id == Note.id, NoteAck.member_id != Note.author_id)).where(
        Note.created_at >= since, Note.created_at < until).group_by(Note.id, Note.created_at)).all()
    quick = sum(1 for created, first_ack in rows if first_ack is not None and first_ack - created <= timedelta(hours=24))
    return quick, len(rows)


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
    home, deaths = home_death_rate(session, first, last)
    rate_trend = []
    response_trend = []
    for q_first, q_last in quarters(year):
        if q_first > today:
            rate_trend.append(None)
            response_trend.append(None)
            continue
        h, d = home_death_rate(session, q_first, q_last)
        rate_trend.append(h / d * 100 if d else None)
        quick, notes = responsiveness(session, _instant(q_first, tz), _instant(q_last + timedelta(days=1), tz))
        response_trend.append(quick / notes * 100 if notes else None)
    quick, notes = responsiveness(session, since, until)
    fresh, facilities = vacancy_freshness(session, now, today, freshness_hours)
    by_profession = participation(session, since, until)
    return [
        Figure("在宅看取り率", "結果", _pct(home, deaths),
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
