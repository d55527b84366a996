"""/council at scale: 2,000 meetings with 20,000 invitations (10 each, half
answered). Times `/council` and `/council show <meeting>` (query + Block
Kit, as the Slack listener does it), and one scheduler tick with 500
reminders due (claiming and rendering; the send itself is not timed).

Runs on a temporary SQLite file, and also on PostgreSQL when
RENKEI_BENCH_DATABASE_URL is set (its public schema is dropped!).
Targets: p99 under 50 ms for the commands, the tick under 2 s."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, text

from bench._common import bench_runtime, on_each_database, stop, timed
from bot import schedule
from bot.council import ical
from bot.council import jobs as council_jobs
from bot.people import Handle
from bot.requests import COMMAND, Request, Who
from bot.slack import blocks
from bot.store.db import session_scope
from bot.store.models import Identity, Meeting, MeetingInvite, Member

JST = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=JST)
MEETINGS, INVITED, RUNS, DUE = 2000, 10, 300, 50  # DUE meetings x 10 invitees = 500 reminders


def fill(engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(Member.__table__), [{"display_name": f"委員{i}", "profession": "", "organisation": "",
                                                 "created_at": NOW} for i in range(1, 201)])
        conn.execute(insert(Identity.__table__), [{"platform": "slack", "external_id": f"UB{i:05d}", "member_id": i}
                                                  for i in range(1, 201)])
        meetings = []
        for i in range(1, MEETINGS + 1):
            # DUE meetings start in exactly one day (their 1d reminder is due now); the rest spread over two years
            starts = NOW + timedelta(days=1) if i <= DUE else NOW + timedelta(hours=7 * i)
            meetings.append({"title": f"第{i}回 部会", "kind": "部会", "starts_at": starts, "ends_at": None,
                             "place": "市役所", "url": "", "channel": None, "organiser_id": 1 + i % 200,
                             "status": "scheduled", "sequence": 0, "remind": "1d", "message_id": None,
                             "created_at": NOW, "updated_at": NOW, "cancelled_at": None, "request_key": None})
        conn.execute(insert(Meeting.__table__), meetings)
        conn.execute(insert(MeetingInvite.__table__), [
            {"meeting_id": m, "member_id": 1 + (m * 7 + k) % 200,
             "answer": None if (m <= DUE or k % 2) else "出席", "answered_at": None}
            for m in range(1, MEETINGS + 1) for k in range(INVITED)])
    with engine.begin() as conn:
        conn.execute(text("ANALYZE")) if engine.dialect.name == "postgresql" else conn.exec_driver_sql("ANALYZE")


def run(url: str, label: str) -> None:
    runtime = bench_runtime(url, NOW)
    engine = runtime.engine
    fill(engine)
    who = Who(handle=Handle("slack", "UB00001"))

    def command(text: str):
        reply = runtime.handle(who, Request(COMMAND, "/council", text))
        blocks.message(reply)
        return reply

    for q in ("", "第60回", "第61回"):
        command(q)
    p50, p99 = timed(lambda i: command(""), RUNS)
    print(f"council [{label}] {MEETINGS} meetings, {MEETINGS * INVITED} invitations: /council "
          f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({'OK' if p99 < 50 else 'OVER'} the 50 ms target)")
    p50, p99 = timed(lambda i: command(f"第{DUE + 1 + i % 1000}回"), RUNS)
    print(f"council [{label}] /council show <meeting> p50 {p50:.1f} ms, p99 {p99:.1f} ms "
          f"({'OK' if p99 < 50 else 'OVER'} the 50 ms target)")
    member = 1 + (DUE * 7) % 200  # invited to about 100 meetings; give them 200
    with engine.begin() as conn:
        have = {r[0] for r in conn.execute(text(f"SELECT meeting_id FROM meetinginvite WHERE member_id = {member}"))}
        extra = [m for m in range(1, MEETINGS + 1) if m not in have][:max(0, 200 - len(have))]
        conn.execute(insert(MeetingInvite.__table__), [{"meeting_id": m, "member_id": member, "answer": None,
                                                        "answered_at": None} for m in extra])

    def cold(_i: int) -> None:  # nothing cached: every event serialised
        ical._event.cache_clear()
        ical._feeds.clear()
        with session_scope(engine) as session:
            ical.member_feed(session, member, NOW, "Asia/Tokyo")

    def after_a_change(_i: int) -> None:  # the feed rebuilt from events serialised before
        ical._feeds.clear()
        with session_scope(engine) as session:
            ical.member_feed(session, member, NOW, "Asia/Tokyo")

    def served(_i: int) -> None:  # an unchanged feed, as calendar apps poll it
        with session_scope(engine) as session:
            ical.member_feed(session, member, NOW, "Asia/Tokyo")

    for name, fn in (("cold, nothing cached", cold), ("rebuilt after a change", after_a_change),
                     ("unchanged, as polled", served)):
        p50, p99 = timed(fn, 100)
        print(f"council [{label}] calendar feed of a member with 200 meetings, {name}: "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({'OK' if p99 < 50 else 'OVER'} the 50 ms target)")
    rendered = []
    t0 = time.perf_counter()
    report = schedule.tick(runtime, NOW, lambda post, key: bool(rendered.append(blocks.message(post))) or True,
                           jobs=council_jobs.JOBS)
    took = time.perf_counter() - t0
    print(f"council [{label}] one tick, {len(report.sent)} reminders due: claimed, rendered and recorded in "
          f"{took:.2f} s ({'OK' if took < 2 else 'OVER'} the 2 s target)")
    stop(runtime)


def main() -> None:
    on_each_database(run)


if __name__ == "__main__":
    main()
