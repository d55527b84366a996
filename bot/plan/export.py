"""The plan and its completion log for the council: CSV in UTF-8 with a BOM
(so Excel opens it as Japanese), or an Excel workbook (openpyxl) with one
sheet for the tasks, one for the log, and one per indicator with a trend
(its value per quarter, the target, and a line chart)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.chart import LineChart, Reference
from sqlmodel import Session, select

from bot.plan import indicators, recorded
from bot.plan.periods import period, quarter_label
from bot.plan.template import categories
from bot.settings import Settings
from bot.store.models import Member, PlanCompletion, PlanTask, PlanTaskOwner

TASK_HEADER = ["項目", "項目名", "タスク", "期限", "繰り返し", "担当", "完了の記録", "由来"]
LOG_HEADER = ["完了日時", "項目", "タスク", "期間", "記録した人", "コメント"]
EVERY = {"month": "毎月", "quarter": "四半期", None: ""}
SOURCE = {"imported": "計画ファイル", "added": "追加", "rollover": "前年度から", "decision": "会議の決定"}


def rows(session: Session, settings: Settings, year: int) -> tuple[list[list], list[list]]:
    tz = ZoneInfo(settings.timezone)
    names = categories(settings.config_dir)
    tasks = list(session.exec(select(PlanTask).where(PlanTask.fiscal_year == year)
                              .order_by(PlanTask.category, PlanTask.due, PlanTask.id)))
    owner_rows = session.exec(select(PlanTaskOwner.task_id, Member.display_name)
                              .join(Member, Member.id == PlanTaskOwner.member_id)
                              .where(PlanTaskOwner.task_id.in_([t.id for t in tasks])))
    owners: dict[int, list[str]] = {}
    for task_id, name in owner_rows:
        owners.setdefault(task_id, []).append(name or "—")
    log = list(session.exec(select(PlanCompletion, PlanTask, Member)
                            .join(PlanTask, PlanTask.id == PlanCompletion.task_id)
                            .join(Member, Member.id == PlanCompletion.member_id)
                            .where(PlanTask.fiscal_year == year).order_by(PlanCompletion.at)))
    done_count: dict[int, int] = {}
    for completion, task, _member in log:
        done_count[task.id] = done_count.get(task.id, 0) + 1
    task_rows = [[t.category, names.get(t.category, ""), t.title, t.due.isoformat() if t.due else "", EVERY[t.every],
                  "、".join(owners.get(t.id, [])), done_count.get(t.id, 0), SOURCE.get(t.source, t.source)]
                 for t in tasks]
    log_rows = [[_local(c.at, tz), t.category, t.title, c.period, m.display_name or "—", c.comment]
                for c, t, m in log]
    return task_rows, log_rows


@dataclass
class Series:
    """One indicator's trend for a sheet: a value per quarter (None where
    nothing is known yet) and the target, if one was agreed."""

    name: str
    unit: str
    target: float | None
    values: list[tuple[str, float | None]]


def series(session: Session, settings: Settings, year: int, today: date, now: datetime) -> list[Series]:
    labels = [quarter_label(period("quarter", first)) for first, _last in indicators.quarters(year)]
    found = [Series(f.name, "%", None, list(zip(labels, f.trend)))
             for f in indicators.computed(session, year, today, now, settings.tz,
                                          settings.team.vacancy.freshness_hours) if f.trend]
    targets = {i.name: i for i in recorded.all_indicators(session)}
    for figure in recorded.figures(session, year):
        indicator = targets[figure.name]
        found.append(Series(figure.name, indicator.unit, indicator.target, list(zip(labels, figure.trend))))
    return found


def _sheet_title(name: str, taken: set[str]) -> str:
    # Excel: at most 31 characters, none of []:*?/\ , unique in the book.
    base = re.sub(r"[\[\]:*?/\\]", "・", name)[:28] or "指標"
    title, n = base, 2
    while title in taken:
        title, n = f"{base[:26]}({n})", n + 1
    taken.add(title)
    return title


def _indicator_sheet(book: Workbook, s: Series, taken: set[str]) -> None:
    sheet = book.create_sheet(_sheet_title(s.name, taken))
    sheet.append(["四半期", f"{s.name}（{s.unit}）" if s.unit else s.name, "目標"])
    for label, value in s.values:
        sheet.append([label, value, s.target])
    chart = LineChart()
    chart.title, chart.y_axis.title = s.name, s.unit or None
    last = len(s.values) + 1
    chart.add_data(Reference(sheet, min_col=2, max_col=3 if s.target is not None else 2, min_row=1,
                             max_row=last), titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=last))
    sheet.add_chart(chart, "E2")


def _local(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def write(path: Path, task_rows: list[list], log_rows: list[list], trends: list[Series] = ()) -> None:
    if path.suffix.lower() == ".xlsx":
        book = Workbook()
        sheet = book.active
        sheet.title = "タスク"
        for row in [TASK_HEADER, *task_rows]:
            sheet.append(row)
        log = book.create_sheet("完了の記録")
        for row in [LOG_HEADER, *log_rows]:
            log.append(row)
        taken = {"タスク", "完了の記録"}
        for one in trends:
            _indicator_sheet(book, one, taken)
        book.save(path)
        return
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(TASK_HEADER)
    writer.writerows(task_rows)
    writer.writerow([])
    writer.writerow(LOG_HEADER)
    writer.writerows(log_rows)
    path.write_bytes(out.getvalue().encode("utf-8-sig"))  # the BOM lets Excel read it as UTF-8
