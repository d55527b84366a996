"""A plan file (`config/plan/template.yaml` and the municipality's own):
the handbook's items A–H and tasks. `renkei import plan FILE --year 2026`
checks every task first and stores nothing if any line is wrong."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from bot.plan.periods import CATEGORIES, EVERY, bounds

TEMPLATE = "plan/template.yaml"
# The handbook's own words, used when a plan file leaves them out.
HANDBOOK = {
    "A": "地域の医療・福祉資源の把握及び活用", "B": "会議の開催（推進協議会等）", "C": "研修の実施",
    "D": "24時間365日の在宅医療・介護提供体制の構築", "E": "地域包括支援センター・介護支援専門員等への支援",
    "F": "効率的な情報共有のための取組み（地域連携パス、連絡様式の統一）", "G": "地域住民への普及・啓発",
    "H": "年間事業計画",
}


@dataclass
class PlannedTask:
    line: int
    category: str
    title: str
    due: date | None
    every: str | None
    owners: list[str]


class PlanFileError(ValueError):
    """Problems by line: [(line, message)] (messages are for the user)."""

    def __init__(self, problems: list[tuple[int, str]]):
        super().__init__(problems)
        self.problems = problems


def categories(config_dir: Path) -> dict[str, str]:
    path = config_dir / TEMPLATE
    return dict(_categories(path, path.stat().st_mtime if path.exists() else None))


@functools.lru_cache(maxsize=8)
def _categories(path: Path, mtime: float | None) -> tuple[tuple[str, str], ...]:
    # Read once per version of the file: every /plan reply and digest names the items.
    if mtime is None:
        return tuple(HANDBOOK.items())
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return tuple({**HANDBOOK, **{str(k): str(v) for k, v in (raw.get("categories") or {}).items()}}.items())


def _lines(text: str) -> list[int]:
    """The line of each task entry (`- ` under `tasks:`), for the messages."""
    lines, inside = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("tasks:"):
            inside = True
        elif inside and line.lstrip().startswith("- "):
            lines.append(number)
    return lines


def read(path: Path, year: int) -> list[PlannedTask]:
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise PlanFileError([(mark.line + 1 if mark else 0, "YAML として読み取れません")]) from None
    first, last = bounds(year)
    numbers = _lines(text)
    planned, problems = [], []
    for i, entry in enumerate(raw.get("tasks") or []):
        line = numbers[i] if i < len(numbers) else 0
        if not isinstance(entry, dict):
            problems.append((line, "タスクは {category: …, title: …} の形で書いてください"))
            continue
        category = str(entry.get("category", "")).strip().upper()
        title = str(entry.get("title", "")).strip()
        if category not in CATEGORIES:
            problems.append((line, f"項目「{category}」は A〜H のいずれかです"))
        if not title:
            problems.append((line, "title（タスク名）がありません"))
        every = EVERY.get(str(entry.get("every", "")).strip().lower()) if entry.get("every") else None
        if entry.get("every") and every is None:
            problems.append((line, f"every「{entry.get('every')}」は month か quarter です"))
        due = _due(entry.get("due"), year)
        if due == "bad":
            problems.append((line, f"due「{entry.get('due')}」は日付（例 2026-06-30 や 06-30）で書いてください"))
            due = None
        elif due is not None and not first <= due <= last:
            problems.append((line, f"due {due.isoformat()} は {year}年度（{first}〜{last}）の外です"))
        planned.append(PlannedTask(line, category, title[:200], due, every, [str(o) for o in entry.get("owners") or []]))
    if problems:
        raise PlanFileError(problems)
    return planned


def _due(value: Any, year: int) -> date | None | str:
    """`2026-06-30`, or `06-30` placed in the fiscal year (January–March
    belong to the next calendar year)."""
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if len(text) <= 5:
            month, day = (int(x) for x in text.replace("/", "-").split("-"))
            return date(year + (1 if month <= 3 else 0), month, day)
        return date.fromisoformat(text)
    except ValueError:
        return "bad"
