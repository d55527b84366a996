"""The plan and its completion log for the council: CSV in UTF-8 with a BOM
(so Excel opens it as Japanese), or an Excel workbook (openpyxl) with one
sheet for the tasks and one for the log."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from sqlmodel import Session, select

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


def _local(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def write(path: Path, task_rows: list[list], log_rows: list[list]) -> None:
    if path.suffix.lower() == ".xlsx":
        book = Workbook()
        sheet = book.active
        sheet.title = "タスク"
        for row in [TASK_HEADER, *task_rows]:
            sheet.append(row)
        log = book.create_sheet("完了の記録")
        for row in [LOG_HEADER, *log_rows]:
            log.append(row)
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
