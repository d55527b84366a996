"""The board query: which facilities have free beds that fit.

Built for speed (2,000 facilities x 90 nights answer in a few ms): one
grouped query decides which facilities fit, read from the covering index
`ix_vacancyfigure_board`; details are then read for the few shown only.
A figure not confirmed within the freshness limit never counts as free;
such facilities are listed apart as unconfirmed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, func, literal, select
from sqlmodel import Session

from bot.store.models import Facility, Member, VacancyFigure
from bot.store.queries import members_keyed
from bot.store.versions import PerDatabase
from bot.vacancy.figures import Span, spans
from bot.vacancy.words import ANY_SEX, SHORT_KIND, needs_list

FIG = VacancyFigure.__table__
FAC = Facility.__table__


@dataclass
class Filters:
    first: date
    last: date
    explicit: bool = False  # dates were asked for: every night must fit
    areas: list[str] | None = None
    facility_ids: list[int] | None = None  # `/vacancy あおば苑`: that facility
    facility_names: list[str] = field(default_factory=list)
    sex: str | None = None
    needs: list[str] = field(default_factory=list)
    kind: str | None = None
    patient_code: str | None = None
    care_level: str | None = None  # shown to the facility with an enquiry, not a filter

    @property
    def night_count(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def nights(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.night_count)]


@dataclass
class Row:
    facility_id: int
    name: str
    area: str
    kind: str
    kind_short: str
    phone: str
    needs: list[str]
    contact: Member | None
    confirmed_at: datetime  # the oldest confirmation among the nights shown
    spans: list[Span]
    ask: dict  # what the 「空き照会」 button carries


@dataclass
class Stale:
    facility_id: int
    name: str
    area: str
    phone: str
    confirmed_at: datetime


@dataclass
class Board:
    filters: Filters
    rows: list[Row]
    total: int
    stale: list[Stale]
    stale_total: int


def _facility_conditions(f: Filters) -> list:
    conds = []
    if f.kind:
        conds.append(FAC.c.kind == f.kind)
    if f.areas is not None:
        conds.append(FAC.c.area.in_(f.areas))
    if f.facility_ids is not None:
        conds.append(FAC.c.id.in_(f.facility_ids))
    for need in f.needs:
        conds.append(literal(",").concat(FAC.c.accepts).concat(",").like(f"%,{need},%"))
    return conds


def _figure_conditions(f: Filters) -> list:
    conds = [FIG.c.night >= f.first, FIG.c.night <= f.last, FIG.c.beds > 0]
    if f.sex:
        conds.append(FIG.c.sex.in_([f.sex, ANY_SEX]))
    return conds


def _board_group(session: Session):
    """The GROUP BY key. On SQLite it is `facility_id + 0`: grouped by the
    plain column, the planner (with ANALYZE's statistics) skip-scans the
    unique (facility_id, night) index to get the groups in order, reading
    every facility's nights (6 ms at 2,000 facilities), instead of the
    covering `ix_vacancyfigure_board` range on the nights asked (1.6 ms)."""
    if session.get_bind().dialect.name == "sqlite":
        return FIG.c.facility_id + 0
    return FIG.c.facility_id


@dataclass(frozen=True)
class _Grouped:
    """What a board shows of the grouped query: the first rows in the
    board's order and how many there are (all of them would be 0.6 MB a
    filter with every facility free)."""
    shown: list  # (facility, fewest beds, most beds, first night, nights, oldest confirmation)
    total: int
    stale_shown: list  # (facility, newest old confirmation)
    stale_total: int
    cutoff: datetime  # figures confirmed before it counted as stale
    oldest_fresh: datetime | None  # the first figure counted fresh to grow stale


def _key(f: Filters, freshness_hours: float, limit: int, stale_limit: int) -> tuple:
    """Everything the grouped query's answer depends on besides the clock."""
    return (f.first, f.last, f.explicit, tuple(f.areas) if f.areas is not None else None,
            tuple(f.facility_ids) if f.facility_ids is not None else None, f.sex, tuple(f.needs), f.kind,
            freshness_hours, limit, stale_limit)


def _still_good(grouped: _Grouped, _f: Filters, cutoff: datetime, *_limits: int) -> bool:
    """Until a figure it counted fresh grows stale (no write can make a
    figure fresher without bumping the table's version)."""
    return grouped.cutoff <= cutoff and (grouped.oldest_fresh is None or cutoff <= grouped.oldest_fresh)


def _grouped(session: Session, _key: tuple, f: Filters, cutoff: datetime, limit: int, stale_limit: int) -> _Grouped:
    """Each facility with a free bed on the nights asked, in one pass over
    the figures: which fit and which are stale, the first of each in the
    board's order."""
    fresh = FIG.c.confirmed_at >= cutoff
    facility_conds = _facility_conditions(f)
    source = FIG.join(FAC, FAC.c.id == FIG.c.facility_id) if facility_conds else FIG
    query = (select(FIG.c.facility_id, func.min(FIG.c.beds).filter(fresh), func.max(FIG.c.beds).filter(fresh),
                    func.min(FIG.c.night).filter(fresh), func.count().filter(fresh),
                    func.min(FIG.c.confirmed_at).filter(fresh), func.max(FIG.c.confirmed_at).filter(~fresh))
             .select_from(source).where(*_figure_conditions(f), *facility_conds).group_by(_board_group(session)))
    fit, stale, oldest_fresh = [], [], None
    for r in session.connection().execute(query):
        if r[5] is not None and (oldest_fresh is None or r[5] < oldest_fresh):
            oldest_fresh = r[5]
        if r[4] and (not f.explicit or r[4] == f.night_count):
            fit.append(tuple(r[:6]))
        elif r[6] is not None:
            stale.append((r[0], r[6]))
    if f.explicit:  # most beds on the tightest night first
        fit.sort(key=lambda r: (-r[1], r[0]))
    else:  # the soonest free night first
        fit.sort(key=lambda r: (r[3], -r[2], r[0]))
    stale.sort(key=lambda r: (-r[1].timestamp(), r[0]))
    return _Grouped(fit[:limit], len(fit), stale[:stale_limit], len(stale), cutoff, oldest_fresh)


# The grouped query was most of `/vacancy` (2,000 facilities x 90 nights):
# what it shows is kept per filter while the figures and facilities keep
# their versions and no figure it counted fresh has grown stale.
_boards = PerDatabase((VacancyFigure, Facility), _grouped, _still_good, keep=200)


_FACILITIES = select(FAC).where(FAC.c.id.in_(bindparam("ids", expanding=True)))  # built once (see store.queries)


def query(session: Session, f: Filters, now: datetime, freshness_hours: float, limit: int = 15,
          stale_limit: int = 5) -> Board:
    cutoff = now - timedelta(hours=freshness_hours)
    grouped = _boards.get(session, _key(f, freshness_hours, limit, stale_limit), f, cutoff, limit, stale_limit)
    shown, stale_shown = grouped.shown, grouped.stale_shown

    ids = [r[0] for r in shown] + [r[0] for r in stale_shown]
    facilities = {fac.id: fac for fac in session.connection().execute(_FACILITIES, {"ids": ids})} if ids else {}
    contact_ids = {fac.contact_member_id for fac in facilities.values() if fac.contact_member_id}
    members = members_keyed(session, contact_ids)
    details = _details(session, f, [r[0] for r in shown], cutoff)

    rows = []
    for r in shown:
        fac = facilities[r[0]]
        span_list = spans(details.get(fac.id, []))
        ask_first, ask_last = (f.first, f.last) if f.explicit else (span_list[0].first, span_list[0].last)
        ask = {"f": fac.id, "a": ask_first.isoformat(), "b": ask_last.isoformat(), "x": int(f.explicit)}
        for key, value in (("p", f.patient_code), ("s", f.sex), ("n", ",".join(f.needs)), ("c", f.care_level)):
            if value:
                ask[key] = value
        rows.append(Row(fac.id, fac.name, fac.area, fac.kind, SHORT_KIND.get(fac.kind, fac.kind), fac.phone,
                        needs_list(fac.accepts), members.get(fac.contact_member_id), r[5], span_list, ask))
    stale_rows = [Stale(r[0], facilities[r[0]].name, facilities[r[0]].area, facilities[r[0]].phone, r[1])
                  for r in stale_shown]
    return Board(f, rows, grouped.total, stale_rows, grouped.stale_total)


def _details(session: Session, f: Filters, ids: list[int], cutoff: datetime) -> dict[int, list]:
    if not ids:
        return {}
    out: dict[int, list] = {}
    for fid, night, beds, sex in session.connection().execute(
            select(FIG.c.facility_id, FIG.c.night, FIG.c.beds, FIG.c.sex)
            .where(*_figure_conditions(f), FIG.c.confirmed_at >= cutoff, FIG.c.facility_id.in_(ids))
            .order_by(FIG.c.facility_id, FIG.c.night)):
        out.setdefault(fid, []).append((night, beds, sex))
    return out
