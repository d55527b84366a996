"""Fiscal years (年度, April to March) and the periods a task is done in."""

from __future__ import annotations

import re
import unicodedata
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


_QUARTER = re.compile(r"(?:(\d{4})(?:年度)?[-/]?)?(?:q|第)([1-4])(?:四半期)?")
_MONTH = re.compile(r"(?:(\d{4})[-/年.])?(\d{1,2})月?")


def parse_quarter(text: str, today: date) -> str | None:
    """A fiscal quarter as people write it: `2026Q3`, `Q3`, `第3四半期`,
    `2026年度第3四半期`, or a month in it (`2026-11`, `11月`). A bare
    quarter or month means this fiscal year. None if unreadable."""
    typed = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()
    if m := _QUARTER.fullmatch(typed):
        return f"{m[1] or fiscal_year(today)}Q{m[2]}"
    if (m := _MONTH.fullmatch(typed)) and 1 <= int(m[2]) <= 12:
        month = int(m[2])
        year = int(m[1]) if m[1] else fiscal_year(today) + (month < 4)
        return period("quarter", date(year, month, 1))
    return None


def quarter_start(code: str) -> date:
    year, n = int(code[:4]), int(code[-1])
    month = 4 + (n - 1) * 3
    return date(year + (month > 12), (month - 1) % 12 + 1, 1)


def quarter_label(code: str) -> str:
    return f"{code[:4]}年度第{code[-1]}四半期"
