"""Fiscal years (年度, April to March) and the periods a task is done in."""

from __future__ import annotations

from datetime import date

CATEGORIES = "ABCDEFGH"
EVERY = {"month": "month", "monthly": "month", "毎月": "month", "月": "month",
         "quarter": "quarter", "quarterly": "quarter", "四半期": "quarter", "毎四半期": "quarter"}


def fiscal_year(day: date) -> int:
    """FY2026 runs from 2026-04-01 to 2027-03-31."""
    return day.year if day.month >= 4 else day.year - 1


def bounds(year: int) -> tuple[date, date]:
    return date(year, 4, 1), date(year + 1, 3, 31)


def period(every: str | None, day: date) -> str:
    """The period `day` falls in: "2026" (FY) for a one-off task, "2026-11"
    monthly, "2026Q3" quarterly (fiscal quarters: Q1 is April–June)."""
    if every == "month":
        return f"{day.year}-{day.month:02d}"
    if every == "quarter":
        return f"{fiscal_year(day)}Q{(day.month - 4) % 12 // 3 + 1}"
    return str(fiscal_year(day))


def period_label(every: str | None, code: str) -> str:
    if every == "month":
        year, month = code.split("-")
        return f"{int(month)}月"
    if every == "quarter":
        return f"第{code[-1]}四半期"
    return f"{code}年度"
