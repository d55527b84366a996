"""/plan at scale: a plan of 5,000 tasks with 50,000 completion rows. Times
`/plan` and `/plan done <fuzzy title>` (query + Block Kit, as the Slack
listener does it), rendering the weekly digest, and the computed indicators
over 100,000 patients and 1,000,000 notes.

Runs on a temporary SQLite file, and also on PostgreSQL when
RENKEI_BENCH_DATABASE_URL is set (its public schema is dropped!).
Targets: the commands p99 under 50 ms, the digest under 100 ms, the
indicators under 500 ms."""

from __future__ import annotations

import random
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert, text

from bench._common import on_each_database, timed
from bot.people import Handle
from bot.plan import digest, indicators
from bot.render import render_text
from bot.requests import COMMAND, Request, Who
from bot.runtime import Runtime
from bot.settings import load_settings
from bot.slack import blocks
from bot.store.db import make_engine, session_scope, upgrade
from bot.store.models import CareTeamMember, Identity, Member, Note, Patient, PlanCompletion, PlanTask

JST = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=JST)
TASKS, LOG, PATIENTS, NOTES, RUNS = 5000, 50000, 100_000, 1_000_000, 50
WORDS = ["連携シート", "研修", "協議会", "公開講座", "資源マップ", "相談窓口", "看取り", "広報誌", "部会", "番組"]


def fill(engine) -> None:
    rng = random.Random(9)
    with engine.begin() as conn:
        conn.execute(insert(Member.__table__), [{"display_name": f"職員{i}", "profession": rng.choice(
            ["医師", "訪問看護師", "介護支援専門員", "薬剤師"]), "organisation": "", "created_at": NOW}
            for i in range(1, 501)])
        conn.execute(insert(Identity.__table__), [{"platform": "slack", "external_id": f"UP{i:05d}", "member_id": i}
                                                  for i in range(1, 501)])
        conn.execute(insert(PlanTask.__table__), [{
            "fiscal_year": 2026, "category": "ABCDEFGH"[i % 8], "title": f"{rng.choice(WORDS)}の取り組み{i}",
            "due": date(2026, 4, 1) + timedelta(days=i % 365), "every": None if i % 3 else "month",
            "source": "added", "meeting_id": None, "created_by_id": 1, "created_at": NOW, "request_key": None}
            for i in range(1, TASKS + 1)])
        conn.execute(insert(PlanCompletion.__table__), [{
            "task_id": 1 + i % TASKS, "period": f"P{i // TASKS}", "member_id": 1 + i % 500,
            "at": NOW - timedelta(hours=i % 5000), "comment": ""} for i in range(LOG)])
        for start in range(0, PATIENTS, 20000):
            conn.execute(insert(Patient.__table__), [{
                "code": f"P-{i:06d}", "name": f"患者{i}", "kana": "", "area": "", "care_level": "", "consent": "yes",
                "channel": None, "status": "ended" if i % 10 == 0 else "active",
                "outcome": rng.choice(["在宅看取り", "病院死亡", "転居"]) if i % 10 == 0 else None,
                "ended_on": date(2026, 4, 1) + timedelta(days=i % 230) if i % 10 == 0 else None,
                "admitted_on": None, "hospital": "", "request_key": None, "updated_at": None, "created_by_id": 1,
                "created_at": NOW} for i in range(start + 1, min(start + 20000, PATIENTS) + 1)])
        conn.execute(insert(CareTeamMember.__table__), [{"patient_id": i, "member_id": 1 + i % 500, "added_at": NOW}
                                                         for i in range(1, PATIENTS + 1, 7)])
        for start in range(0, NOTES, 50000):
            conn.execute(insert(Note.__table__), [{
                "patient_id": 1 + i % PATIENTS, "form_id": "daily", "urgency": None, "body_json": "{}",
                "author_id": 1 + i % 500, "created_at": NOW - timedelta(minutes=i % 300000),
                "request_key": f"b{i}", "channel": None, "message_id": None, "corrected_at": None}
                for i in range(start, min(start + 50000, NOTES))])
    with engine.begin() as conn:
        conn.execute(text("ANALYZE")) if engine.dialect.name == "postgresql" else conn.exec_driver_sql("ANALYZE")


def run(url: str, label: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    t0 = time.perf_counter()
    fill(engine)
    print(f"plan [{label}] seeded {TASKS} tasks, {LOG} log rows, {PATIENTS} patients, {NOTES} notes "
          f"in {time.perf_counter() - t0:.0f} s")
    settings = load_settings(database_url=url, config_dir=Path(__file__).resolve().parent.parent / "config")
    runtime = Runtime.build(settings, clock=lambda: NOW, engine=engine)
    who = Who(handle=Handle("slack", "UP00001"))

    def command(text_: str):
        blocks.message(runtime.handle(who, Request(COMMAND, "/plan", text_)))

    command("")
    for name, fn in (("/plan", lambda i: command("")),
                     ("/plan done <fuzzy title>", lambda i: command(f"done {WORDS[i % 10]}の取り組み{i + 11}"))):
        p50, p99 = timed(fn, RUNS)
        print(f"plan [{label}] {name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({'OK' if p99 < 50 else 'OVER'} 50 ms)")

    def render_digest(_i: int) -> None:
        with session_scope(engine) as session:
            values = digest.values(session, settings, NOW.date(), NOW)
        render_text("plan/digest_details", values)

    p50, p99 = timed(render_digest, 2)
    print(f"plan [{label}] full weekly digest (figures + rendering): p50 {p50:.0f} ms, p99 {p99:.0f} ms "
          f"({'OK' if p50 < 100 else 'OVER'} 100 ms)")

    def compute(_i: int) -> None:
        with session_scope(engine) as session:
            indicators.computed(session, 2026, NOW.date(), NOW, JST, 48)

    p50, p99 = timed(compute, 2)
    print(f"plan [{label}] computed indicators over {PATIENTS} patients and {NOTES} notes: "
          f"p50 {p50:.0f} ms, p99 {p99:.0f} ms ({'OK' if p50 < 500 else 'OVER'} 500 ms)")
    runtime.background.shutdown()
    engine.dispose()


def main() -> None:
    on_each_database(run)


if __name__ == "__main__":
    main()
