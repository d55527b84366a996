"""Indicators the council agrees on and records by hand, one value per
fiscal quarter (e.g. 相談窓口の相談件数, 研修の参加者数): the ones Renkei
cannot compute from its own records. Shown beside the computed ones with
their target and trend; those behind target go on the council's agenda."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.context import Context
from bot.lookup import FuzzyIndex, Match
from bot.plan.indicators import Figure, quarters
from bot.plan.periods import period, quarter_label
from bot.plan.tasks import reading
from bot.privacy import audit
from bot.store.models import PlanIndicator, PlanIndicatorValue

KINDS = {"構造": "構造", "structure": "構造", "ストラクチャー": "構造", "ストラクチャ": "構造",
         "過程": "過程", "process": "過程", "プロセス": "過程",
         "結果": "結果", "outcome": "結果", "アウトカム": "結果", "成果": "結果"}
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
# `30` and `30以上` are floors; `5以下`, `<=5`, `≤5` are ceilings (fewer is better).
_CEILING = re.compile(r"^(?:<=?|≤|≦)|(?:以下|未満)$")
_FLOOR = re.compile(r"^(?:>=?|≥|≧)|(?:以上|超)$")


def number(text: str, unit: str = "") -> float | None:
    """A value as typed: full-width digits, thousands commas, the unit or a
    percent sign after it (`１,２００人`, `45%`). None if not a number."""
    typed = unicodedata.normalize("NFKC", text).strip().replace(",", "")
    for suffix in filter(None, (unicodedata.normalize("NFKC", unit), "%")):
        typed = typed.removesuffix(suffix).strip()
    if not _NUMBER.fullmatch(typed):
        return None
    value = float(typed)
    return value if math.isfinite(value) else None


def target(text: str, unit: str = "") -> tuple[float, bool] | None:
    """(value, lower_is_better), or None if it is not a number."""
    typed = unicodedata.normalize("NFKC", text).strip()
    ceiling = bool(_CEILING.search(typed))
    value = number(_FLOOR.sub("", _CEILING.sub("", typed)), unit)
    return None if value is None else (value, ceiling)


def shown(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}{unit}" if value == int(value) else f"{value:,.2f}".rstrip("0") + unit


@dataclass
class RecordedFigure(Figure):
    target: str = ""
    behind: bool = False  # the latest value misses the target


def all_indicators(session: Session) -> list[PlanIndicator]:
    return list(session.exec(select(PlanIndicator).order_by(PlanIndicator.id)))


def find(session: Session, text: str) -> tuple[Match[PlanIndicator], str]:
    """By a forgiving search over names, in kana too (`そうだん` finds
    相談件数); the rest of the text after the name."""
    found = FuzzyIndex(all_indicators(session), keys=lambda i: (i.name, reading(i.name)))
    return found.search_leading(text)


def add(ctx: Context, *, name: str, unit: str, goal: tuple[float, bool] | None,
        kind: str) -> tuple[PlanIndicator, bool]:
    """(indicator, True) if one of that name exists already: nothing changes."""
    earlier = ctx.session.exec(select(PlanIndicator).where(PlanIndicator.name == name)).first()
    if earlier is not None:
        return earlier, True
    row = PlanIndicator(name=name, unit=unit, target=goal[0] if goal else None,
                        lower_is_better=bool(goal and goal[1]), kind=kind, created_by_id=ctx.member.id,
                        created_at=ctx.now)
    try:
        with ctx.session.begin_nested():
            ctx.session.add(row)
    except IntegrityError:  # the same name, added at the same moment
        return ctx.session.exec(select(PlanIndicator).where(PlanIndicator.name == name)).one(), True
    audit(ctx, "plan.indicator.add", target=f"indicator:{row.id}", detail=name[:200])
    return row, False


def record(ctx: Context, indicator: PlanIndicator, code: str, value: float) -> float | None:
    """Store the quarter's value; the value it replaced, if any."""
    row = ctx.session.exec(select(PlanIndicatorValue).where(PlanIndicatorValue.indicator_id == indicator.id,
                                                            PlanIndicatorValue.period == code)).first()
    before = row.value if row else None
    if row is None:
        row = PlanIndicatorValue(indicator_id=indicator.id, period=code, value=value, member_id=ctx.member.id,
                                 at=ctx.now)
    row.value, row.member_id, row.at = value, ctx.member.id, ctx.now
    ctx.session.add(row)
    audit(ctx, "plan.indicator.record", target=f"indicator:{indicator.id}", detail=f"{code} {before} -> {value}")
    return before


def is_behind(indicator: PlanIndicator, value: float | None) -> bool:
    if indicator.target is None or value is None:
        return False
    return value > indicator.target if indicator.lower_is_better else value < indicator.target


def goal_text(indicator: PlanIndicator) -> str:
    if indicator.target is None:
        return ""
    return f"{shown(indicator.target, indicator.unit)}{'以下' if indicator.lower_is_better else '以上'}"


def figures(session: Session, year: int) -> list[RecordedFigure]:
    """Each indicator's latest value this fiscal year, its target and its
    trend per quarter (Q1 first)."""
    codes = [period("quarter", first) for first, _last in quarters(year)]
    values: dict[int, dict[str, float]] = {}
    for row in session.exec(select(PlanIndicatorValue).where(PlanIndicatorValue.period.in_(codes))):
        values.setdefault(row.indicator_id, {})[row.period] = row.value
    result = []
    for indicator in all_indicators(session):
        mine = values.get(indicator.id, {})
        trend = [mine.get(code) for code in codes]
        latest = max(mine) if mine else None
        value = (f"{shown(mine[latest], indicator.unit)}（{quarter_label(latest)}）" if latest
                 else "—（未記録）")
        result.append(RecordedFigure(
            indicator.name, indicator.kind, value, "協議会で決めた指標（手入力: /plan indicator record）", trend,
            target=goal_text(indicator), behind=is_behind(indicator, mine[latest] if latest else None)))
    return result


def behind_target(session: Session, year: int) -> list[RecordedFigure]:
    """For the council's draft agenda: the plan-do-check loop's "check"."""
    return [f for f in figures(session, year) if f.behind]
