"""The prefecture-scale load benchmark (issue 10, item 1).

Seeds one consistent data set with bulk inserts (COPY on PostgreSQL, raw
executemany on SQLite): 100,000 patients in care teams of three, 1,000,000
liaison notes (seven in ten acknowledged), 2,000 short-stay facilities x 90
nights of vacancy figures, a plan of 5,000 tasks with 50,000 completion
rows, 2,000 meetings with their invitations, 5,000 members with a Slack
identity each. Then starts the real bot (`renkei serve`: waitress, 8
threads, the scheduler ticking every minute) and, in the same run, a bare
Bolt app that only acks (`bench/_bare_bolt.py`, the same server and thread
count, `process_before_response=True`), both as separate processes, with
the fake Slack Web API (`tests/slackfake.py`) on loopback. A third server,
`renkei serve --processes 2` (two serving processes on one port), is
measured at 16 clients right after the one process on each row, so both
meet the same machine; its rows are labelled "SQLite 2 proc" or "PG 2
proc" and compared with the same bare Bolt figures.

Clients send signed requests over real HTTP with keep-alive connections,
each with a unique trigger_id: 1 client, then 16 concurrent clients. The
clients are separate processes (a pool forked before anything else starts),
so their GIL is not the fake Slack's, and the acting members are 16
care-team members (each in the care team of the patients they name). The
latency is the acknowledgement: the HTTP response time seen by the client.
Columns cpu and bcpu: the bot's and bare Bolt's CPU time per request sent
(the server process and its children, from /proc; the work after the reply
and the minute's tick included, PostgreSQL's own processes not): on two
cores, 16 clients queue for it, so it sets the 16-client latency.
After the HTTP part, in process: patient lookup alone over the whole index,
and one scheduler tick with 1,000 messages due (claim, render, record; the
send to Slack itself is not timed, as in bench/council.py).

    .venv/bin/python -m bench load                  # SQLite only
    RENKEI_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_load \\
        .venv/bin/python -m bench load              # and PostgreSQL (its public schema is dropped!)
    RENKEI_BENCH_QUICK=1 .venv/bin/python -m bench load   # a tenth of the data, fewer requests
    RENKEI_BENCH_PROFILE=1 ...    # then each row once more in process, under cProfile: where the time goes
    RENKEI_BENCH_PROCESSES=1 ...  # leave out the several-process pass (default 2 processes)

Each phase measures for at most 8 s (a slow row sends fewer requests; n is
printed). Errors (non-200, or a reply that is a failure or refusal) are
counted per row with one sample reply; the bot's log is kept in
$TMPDIR/renkei-bench-load-<database>.log and summarised. The last column,
`ran`, is when the bot's phase ran, in its log's clock: a p99 far above the
p50 can be matched with what the log says happened then (a tick).

Targets (issue 10): at 16 clients p99 < 100 ms for every command; at 1
client p50 <= 2x bare Bolt; lookup p99 < 2 ms at 100,000 patients; bot peak
RSS < 150 MB with the full data set."""

from __future__ import annotations

import http.client
import itertools
import json
import logging
import math
import multiprocessing
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import text

from bench._common import on_each_database
from bot.prefork import children_of
from bot.store import models as m
from bot.store.db import make_engine, session_scope, upgrade
from tests.slackfake import FakeSlack
from tests.slackreq import sign

ROOT = Path(__file__).resolve().parent.parent
JST = ZoneInfo("Asia/Tokyo")
SECRET = "bench-load-secret"
QUICK = os.environ.get("RENKEI_BENCH_QUICK", "") not in ("", "0")
CLIENTS = 16
SERVE = "import sys; from bot.cli import main; sys.exit(main(sys.argv[1:]))"
# `renkei serve --processes N` measured beside the one process; 1 leaves that pass out.
PROCESSES = int(os.environ.get("RENKEI_BENCH_PROCESSES", "2"))


@dataclass(frozen=True)
class Size:
    members: int
    patients: int
    notes: int
    facilities: int
    nights: int
    tasks: int
    open_tasks: int  # one-off tasks never completed this year: what `/plan done` completes
    completions: int
    meetings: int
    tick_meetings: int  # each gives 10 messages in the timed tick (1 channel post, 8 DMs, 1 to the organiser)
    solo: int  # measured requests per row at 1 client
    solo_warm: int
    each: int  # measured requests per client at 16 clients
    each_warm: int
    cap: float  # seconds a phase may take (measured part); fewer requests are sent if it is reached


FULL = Size(members=5000, patients=100_000, notes=1_000_000, facilities=2000, nights=90, tasks=5000,
            open_tasks=2500, completions=50_000, meetings=2000, tick_meetings=100,
            solo=200, solo_warm=10, each=50, each_warm=2, cap=8.0)
SMALL = Size(members=1000, patients=10_000, notes=100_000, facilities=200, nights=90, tasks=1000,
             open_tasks=500, completions=10_000, meetings=300, tick_meetings=20,
             solo=50, solo_warm=5, each=10, each_warm=2, cap=8.0)
S = SMALL if QUICK else FULL

SURNAMES = [s.split(":") for s in (
    "佐藤:サトウ 鈴木:スズキ 高橋:タカハシ 田中:タナカ 伊藤:イトウ 渡辺:ワタナベ 山本:ヤマモト 中村:ナカムラ 小林:コバヤシ "
    "加藤:カトウ 吉田:ヨシダ 山田:ヤマダ 佐々木:ササキ 山口:ヤマグチ 松本:マツモト 井上:イノウエ 木村:キムラ 林:ハヤシ "
    "斎藤:サイトウ 清水:シミズ 山崎:ヤマザキ 森:モリ 池田:イケダ 橋本:ハシモト 阿部:アベ 石川:イシカワ 山下:ヤマシタ "
    "中島:ナカジマ 石井:イシイ 小川:オガワ 前田:マエダ 岡田:オカダ 長谷川:ハセガワ 藤田:フジタ 後藤:ゴトウ 近藤:コンドウ "
    "村上:ムラカミ 遠藤:エンドウ 青木:アオキ 坂本:サカモト 福田:フクダ 太田:オオタ 西村:ニシムラ 藤井:フジイ 金子:カネコ "
    "岡本:オカモト 藤原:フジワラ 中野:ナカノ 三浦:ミウラ 原田:ハラダ 中川:ナカガワ 松田:マツダ 竹内:タケウチ 小野:オノ "
    "田村:タムラ 中山:ナカヤマ 和田:ワダ 石田:イシダ 森田:モリタ 上田:ウエダ 柴田:シバタ 酒井:サカイ 工藤:クドウ "
    "横山:ヨコヤマ 宮崎:ミヤザキ 宮本:ミヤモト 内田:ウチダ 高木:タカギ 菅原:スガワラ 佐野:サノ").split()]
GIVEN = [s.split(":") for s in (
    "花子:ハナコ 太郎:タロウ 一郎:イチロウ 和子:カズコ 幸子:サチコ 節子:セツコ 正:タダシ 清:キヨシ 弘:ヒロシ 茂:シゲル "
    "勇:イサム 光子:ミツコ 久子:ヒサコ 文子:フミコ 美代子:ミヨコ 千代子:チヨコ 静子:シズコ 春子:ハルコ 秋子:アキコ "
    "敏子:トシコ 洋子:ヨウコ 恵子:ケイコ 京子:キョウコ 悦子:エツコ トミ:トミ ハル:ハル キク:キク 進:ススム 実:ミノル "
    "武:タケシ 昭:アキラ 三郎:サブロウ 次郎:ジロウ 健二:ケンジ 修:オサム 誠:マコト 隆:タカシ 勝:マサル 満:ミツル "
    "豊:ユタカ 登:ノボル 功:イサオ 栄子:エイコ 富子:トミコ 芳子:ヨシコ 正子:マサコ 房子:フサコ 孝子:タカコ 信子:ノブコ "
    "君子:キミコ 雅子:マサコ 直子:ナオコ 明美:アケミ 由美子:ユミコ 裕子:ユウコ 清子:キヨコ 初子:ハツコ 米子:ヨネコ").split()]
AREAS = [f"{d}地区{i}" for d in "東西南北中" for i in range(1, 9)]
NEEDS = ["経管栄養", "喀痰吸引", "インスリン", "認知症対応", "在宅酸素"]
PROFESSIONS = ["医師", "訪問看護師", "介護支援専門員", "薬剤師", "理学療法士", "ヘルパー"]
CARE = ["要支援1", "要支援2", "要介護1", "要介護2", "要介護3", "要介護4", "要介護5"]
WORDS = ["連携シート", "研修", "協議会", "公開講座", "資源マップ", "相談窓口", "看取り", "広報誌", "部会", "番組"]
BODIES = ["定期訪問。バイタル安定、変わりなし", "食事量やや低下。水分摂取を促しました", "夜間の不眠あり、主治医に相談予定",
          "褥瘡なし。入浴介助実施", "内服薬の飲み忘れ2回。お薬カレンダーを提案", "家族より受診の相談あり"]
KINDS = ["部会", "地域ケア会議", "研修", "協議会"]
TEAM = 3  # members per care team
INVITED = 10
BENCH_MEETINGS = 20  # meetings each benchmark member is invited to (the RSVP clicks)


# --- the data set ------------------------------------------------------------------

def name_of(p: int) -> tuple[str, str]:
    sur = SURNAMES[(p * 7) % len(SURNAMES)]
    given = GIVEN[(p * 13 + p // len(SURNAMES)) % len(GIVEN)]
    return f"{sur[0]} {given[0]}", f"{sur[1]} {given[1]}"


def team_of(p: int) -> list[int]:
    """The care team of patient p: three members; each member is in about
    TEAM * patients / members teams (60 at full size)."""
    return [1 + ((p - 1) * TEAM + k) % S.members for k in range(TEAM)]


def patients_of(member: int) -> list[int]:
    return [p for p in range(1, S.patients + 1) if member in team_of(p)]


def ended(p: int) -> bool:
    return p % 10 == 0


def user_of(member: int) -> str:
    return f"UL{member:06d}"


@dataclass
class World:
    """Instants and ids the seed and the requests share."""

    now: datetime
    tick_at: datetime  # the timed tick's instant: 3 days ago, 10:00 local (the bot's own scheduler ignores it)
    fiscal_year: int
    seed_notes: int = 0
    bench_meetings: dict[int, list[int]] = field(default_factory=dict)  # member -> meetings invited to
    open_tasks: list[int] = field(default_factory=list)

    @property
    def today(self) -> date:
        return self.now.date()


def make_world() -> World:
    now = datetime.now(JST).replace(microsecond=0)
    tick_day = now.date() - timedelta(days=3)
    fy = now.year if now.month >= 4 else now.year - 1
    return World(now=now, tick_at=datetime.combine(tick_day, clock_time(10, 0), JST), fiscal_year=fy)


def _processors(table, columns: list[str], dialect) -> list[Callable[[Any], Any] | None]:
    return [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]


def bulk(engine, table, columns: list[str], rows: Iterable[tuple]) -> int:
    """Insert rows (tuples in `columns` order, Python values) as fast as the
    driver allows: COPY on PostgreSQL, one executemany per 50,000 rows on
    SQLite (values converted as SQLAlchemy would bind them)."""
    raw = engine.raw_connection()
    count = 0
    try:
        cur = raw.cursor()
        if engine.dialect.name == "postgresql":
            with cur.copy(f'COPY "{table.name}" ({", ".join(columns)}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        else:
            procs = _processors(table, columns, engine.dialect)
            sql = f'INSERT INTO "{table.name}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})'
            cur.execute("BEGIN")
            batch: list[tuple] = []
            for row in rows:
                batch.append(tuple(p(v) if p and v is not None else v for p, v in zip(procs, row)))
                if len(batch) >= 50_000:
                    cur.executemany(sql, batch)
                    count += len(batch)
                    batch = []
            if batch:
                cur.executemany(sql, batch)
                count += len(batch)
            cur.execute("COMMIT")
        cur.close()
        if engine.dialect.name == "postgresql":
            raw.commit()
    finally:
        raw.close()
    return count


def seed(engine, w: World) -> dict[str, int]:
    """The whole data set, ids given explicitly (1..n per table) so every
    part can refer to the others; PostgreSQL's sequences are moved past them."""
    rng = random.Random(10)
    now, today = w.now, w.today
    counts: dict[str, int] = {}

    def put(model, columns: str, rows: Iterable[tuple]) -> None:
        table = model.__table__
        counts[table.name] = counts.get(table.name, 0) + bulk(engine, table, columns.split(), rows)

    put(m.Member, "id display_name profession organisation created_at", (
        (i, f"ベンチ{i}" if i <= CLIENTS else f"職員{i}", "訪問看護師" if i <= CLIENTS else rng.choice(PROFESSIONS),
         f"事業所{i % 300}", now - timedelta(days=400)) for i in range(1, S.members + 1)))
    put(m.Identity, "id platform external_id member_id",
        ((i, "slack", user_of(i), i) for i in range(1, S.members + 1)))

    def patient(p: int) -> tuple:
        name, kana = name_of(p)
        gone = ended(p)
        return (p, f"P-{p:04d}", name, kana, AREAS[p % len(AREAS)], CARE[p % len(CARE)], "yes",
                f"slack:CT{p % 2000:04d}", "ended" if gone else "active",
                ("在宅看取り", "病院死亡", "施設入所")[p % 3] if gone else None,
                today - timedelta(days=p % 300) if gone else None, None, "", None, None, 1 + p % S.members,
                now - timedelta(days=500 - p * 400 // S.patients))

    put(m.Patient, "id code name kana area care_level consent channel status outcome ended_on admitted_on hospital "
                   "request_key updated_at created_by_id created_at", (patient(p) for p in range(1, S.patients + 1)))
    put(m.CareTeamMember, "id patient_id member_id added_at", (
        ((p - 1) * TEAM + k + 1, p, member, now - timedelta(days=400))
        for p in range(1, S.patients + 1) for k, member in enumerate(team_of(p))))

    span = 300 * 24 * 60  # notes spread over 300 days, ids rising with time
    bodies = [json.dumps({"body": b}, ensure_ascii=False) for b in BODIES]

    def note(n: int) -> tuple:
        p = 1 + (n * 7919) % S.patients
        created = now - timedelta(minutes=2 + (S.notes - n) * span // S.notes)
        return (n, p, "daily", "緊急" if n % 97 == 0 else None, bodies[n % len(bodies)], team_of(p)[n % TEAM],
                created, f"seed:{n}", f"slack:CT{p % 2000:04d}", f"1700000000.{n:07d}", None)

    put(m.Note, "id patient_id form_id urgency body_json author_id created_at request_key channel message_id "
                "corrected_at", (note(n) for n in range(1, S.notes + 1)))
    w.seed_notes = S.notes

    def acks() -> Iterable[tuple]:
        ack_id = 0
        for n in range(1, S.notes + 1):
            if n % 10 < 7:
                p = 1 + (n * 7919) % S.patients
                created = now - timedelta(minutes=2 + (S.notes - n) * span // S.notes)
                ack_id += 1
                yield ack_id, n, team_of(p)[(n + 1) % TEAM], min(now, created + timedelta(minutes=30 + n % 2000))

    put(m.NoteAck, "id note_id member_id acked_at", acks())

    put(m.Facility, "id name kana area area_kana kind capacity phone contact_member_id accepts created_at", (
        (f, f"ショートステイ{AREAS[f % len(AREAS)][:2]}{f:04d}", f"ショートステイ{f}", AREAS[f % len(AREAS)], "",
         ("短期入所生活介護", "短期入所療養介護")[f % 2], 20, "0235-00-0000", None,
         ",".join(rng.sample(NEEDS, rng.randint(0, 3))), now - timedelta(days=400))
        for f in range(1, S.facilities + 1)))

    def figures() -> Iterable[tuple]:
        fid = 0
        for f in range(1, S.facilities + 1):
            age = timedelta(hours=rng.choice([1, 5, 20, 40, 60, 100]))
            for n in range(S.nights):
                fid += 1
                yield (fid, f, today + timedelta(days=n - 10), rng.choice([0, 0, 1, 2, 3]),
                       rng.choice(["どちらでも", "どちらでも", "男", "女"]), now - age, None, now - age)

    put(m.VacancyFigure, "id facility_id night beds sex updated_at updated_by_id confirmed_at", figures())

    fy, done_part = w.fiscal_year, S.tasks - S.open_tasks
    year_start = date(fy, 4, 1)
    put(m.PlanTask, "id fiscal_year category title due every source meeting_id created_by_id created_at request_key", (
        (t, fy, "ABCDEFGH"[t % 8], f"{WORDS[t % 10]}の取り組み{t:04d}", year_start + timedelta(days=t % 365),
         "month" if t <= done_part and t % 2 else None, "added", None, 1 + t % S.members,
         now - timedelta(days=200), None) for t in range(1, S.tasks + 1)))
    put(m.PlanTaskOwner, "id task_id member_id", (
        (o, t, member) for o, (t, member) in enumerate(
            ((t, 1 + (t * 11 + k * 7) % S.members) for t in range(1, S.tasks + 1) for k in range(1 + t % 2)),
            start=1)))

    def completions() -> Iterable[tuple]:
        per = S.completions // done_part  # 20 logged periods per task of the first half
        months = now.year * 12 + now.month - 1
        c = 0
        for t in range(1, done_part + 1):
            for k in range(per):
                back = k + (t // 2) % 2  # half the monthly tasks are done this month
                period = (f"{(months - back) // 12}-{(months - back) % 12 + 1:02d}" if t % 2
                          else str(fy - back))
                c += 1
                yield c, t, period, 1 + (t + k) % S.members, now - timedelta(days=30 * back + 1), ""

    put(m.PlanCompletion, "id task_id period member_id at comment", completions())
    w.open_tasks = list(range(done_part + 1, S.tasks + 1))

    # Meetings: the first tick_meetings start one day after the timed tick's
    # instant (their 1d reminder is due then); the rest from 10 days on, three a day.
    def meeting(i: int) -> tuple:
        if i <= S.tick_meetings:
            starts, kind, remind, channel = w.tick_at + timedelta(days=1), "部会", "1d", f"slack:CM{i:04d}"
        else:
            j = i - S.tick_meetings - 1
            day = today + timedelta(days=10 + j // 3)
            starts = datetime.combine(day, (clock_time(10), clock_time(14), clock_time(18, 30))[j % 3], JST)
            kind, remind, channel = KINDS[i % len(KINDS)], "7d,1d,2h", "slack:C0COUNCIL"
        return (i, f"第{i}回 {kind}", kind, starts, starts + timedelta(hours=2), "市役所 大会議室", "", channel,
                CLIENTS + 1 + (i * 37) % (S.members - CLIENTS), "scheduled", 0, remind, f"1800000001.{i:06d}",
                now - timedelta(days=20), now - timedelta(days=20), None, None)

    put(m.Meeting, "id title kind starts_at ends_at place url channel organiser_id status sequence remind message_id "
                   "created_at updated_at cancelled_at request_key", (meeting(i) for i in range(1, S.meetings + 1)))
    spread = S.meetings - S.tick_meetings
    w.bench_meetings = {c: [S.tick_meetings + 1 + (c * BENCH_MEETINGS + j) % spread for j in range(BENCH_MEETINGS)]
                        for c in range(1, CLIENTS + 1)}

    def invites() -> Iterable[tuple]:
        v = 0
        others = S.members - CLIENTS
        for i in range(1, S.meetings + 1):
            organiser = CLIENTS + 1 + (i * 37) % others
            chosen = [CLIENTS + 1 + (organiser + 1 + k * 13) % others for k in range(INVITED)]
            for k, member in enumerate(chosen):
                answered = k < 2 if i <= S.tick_meetings else k % 2 == 0
                v += 1
                yield v, i, member, "出席" if answered else None, now - timedelta(days=5) if answered else None
        for member, meetings in w.bench_meetings.items():
            for i in meetings:
                v += 1
                yield v, i, member, None, None

    put(m.MeetingInvite, "id meeting_id member_id answer answered_at", invites())

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            for name in counts:
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), "
                                  f"(SELECT max(id) FROM \"{name}\"))"))
            conn.execute(text("ANALYZE"))
        else:
            conn.exec_driver_sql("ANALYZE")
    # The bulk load's pages are written out now, not by a checkpoint in the
    # middle of the first row measured (PostgreSQL's after 2.4 million rows;
    # SQLite's log copied back into the file).
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("CHECKPOINT")
    else:  # outside a transaction: SQLite refuses a checkpoint inside one
        with engine.connect() as conn:
            conn.connection.dbapi_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return counts


# --- clients -------------------------------------------------------------------------

def _client(port: int, bodies: list[bytes], warm: int, start_at: float, cap: float) -> tuple[list, list]:
    """One client in its own process: sends `bodies` over one keep-alive
    connection, signing each as it goes. Returns ((ms, status, body, sent at)
    of each request after the first `warm`, until `cap` seconds of measuring
    have passed; (status, body) of the warm-up requests)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()
    time.sleep(max(0.0, start_at - time.time()))
    deadline = None
    out, warmed = [], []
    for i, body in enumerate(bodies):
        if i == warm:
            deadline = time.monotonic() + cap
        elif deadline is not None and time.monotonic() > deadline:
            break
        ts = int(time.time())
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(ts),
                   "X-Slack-Signature": sign(SECRET, body, ts)}
        t0, sent_at = time.perf_counter(), time.time()
        try:
            conn.request("POST", "/slack/events", body, headers)
            response = conn.getresponse()
            data, status = response.read(), response.status
        except (OSError, http.client.HTTPException) as e:
            data, status = repr(e).encode(), 0
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        ms = (time.perf_counter() - t0) * 1000
        if i >= warm:
            out.append((ms, status, data, sent_at))
        else:
            warmed.append((status, data))
    conn.close()
    return out, warmed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{_tail(log)}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on {port} not healthy after {timeout:.0f} s:\n{_tail(log)}")


def _wait_first_tick(url: str, log: Path, cap: float = 120.0) -> None:
    """Until the bot's first tick is over: it logged what it did, or the
    delivery table stopped growing for 5 s (a plain connection: the bot's
    engine would take SQLite's write lock to read)."""
    from sqlalchemy import create_engine

    from bot.store.db import normalise_url

    engine = create_engine(normalise_url(url))
    t0 = time.monotonic()
    last, since = None, t0
    try:
        while time.monotonic() - t0 < cap:
            if " tick: " in log.read_text(errors="replace"):
                break
            with engine.connect() as conn:
                count = conn.exec_driver_sql("SELECT count(*) FROM delivery").scalar()
            if count != last:
                last, since = count, time.monotonic()
            elif time.monotonic() - since > 5:
                break
            time.sleep(0.5)
    finally:
        engine.dispose()


def _wait_logged(log: Path, words: str, times: int, cap: float = 120.0) -> None:
    """Until `words` appear `times` times in the log (each serving process's start-up)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < cap and log.read_text(errors="replace").count(words) < times:
        time.sleep(0.5)


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _memory(pid: int) -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS in kB from /proc/<pid>/status."""
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                found[key] = int(value.split()[0])
    return found


# --- requests ------------------------------------------------------------------------

@dataclass
class Row:
    name: str
    make: Callable[[int, int, bool], tuple[bytes, str]]  # (member, i, real) -> (body, tag)
    check: Callable[[str, str], str]  # (reply text, tag) -> "ok" | "already" | "error"
    after: Callable[[list[str]], list[tuple[str, str]]] | None = None  # tags -> [(tag, problem)] from the fake
    unsent: Callable[[list[str]], None] | None = None  # tags of requests made but cut off by the cap


def _reply_text(data: bytes) -> str:
    raw = data.decode("utf-8", "replace")
    try:
        return json.dumps(json.loads(raw), ensure_ascii=False)
    except ValueError:
        return raw


# What the bot's failure and refusal replies say (common/db_down, error, reply_failed, not_found, choose, refused).
FAILED = ("⚠ いまデータベース", "データベースとの接続", "処理中に問題が起きました", "返事の準備中にエラー", "見つかりませんでした",
          "どの方ですか", "ケアチームの方だけ", "このボタンはもう使えません")


def _expect(marker: str) -> Callable[[str, str], str]:
    def check(reply: str, tag: str) -> str:
        want = marker or tag
        return "ok" if want in reply and not any(f in reply for f in FAILED) else "error"

    return check


class Requests:
    """Builds every row's request bodies for one run (one database)."""

    def __init__(self, w: World, fake: FakeSlack, names: dict[int, list[tuple[str, str]]]):
        self.w, self.fake, self.names = w, fake, names
        self.ids = itertools.count(1)
        self.tasks = iter(w.open_tasks)
        self.answers: dict[tuple[int, int], int] = {}  # clicks made per (member, meeting): the next answer
        self.clicked: dict[str, tuple[int, int]] = {}
        first, last = w.today + timedelta(days=15), w.today + timedelta(days=17)
        self.vacancy = f"{first.month}/{first.day}-{last.month}/{last.day} 女 吸引"

    def command(self, member: int, command: str, text_: str, real: bool) -> tuple[bytes, str]:
        n = next(self.ids)
        tag = f"{'b' if not real else 'r'}{n}"
        form = {"token": "legacy", "team_id": "T1", "team_domain": "pref", "channel_id": "C0TEAM",
                "channel_name": "team", "user_id": user_of(member), "user_name": f"bench{member}",
                "command": command, "text": text_, "api_app_id": "A1",
                "response_url": self.fake.response_url(tag), "trigger_id": f"load.{n}.{tag}"}
        return urlencode(form).encode(), tag

    def click(self, member: int, i: int, real: bool) -> tuple[bytes, str]:
        n = next(self.ids)
        tag = f"{'b' if not real else 'r'}{n}"
        meeting = self.w.bench_meetings[member][i % BENCH_MEETINGS]
        flip = self.answers.get((member, meeting), 0) if real else 0
        if real:
            self.answers[(member, meeting)] = flip + 1
            self.clicked[tag] = (member, meeting)
        choice = ("出席", "欠席")[flip % 2]  # every click changes the answer: a write each time
        payload = {
            "type": "block_actions", "user": {"id": user_of(member), "username": f"bench{member}", "team_id": "T1"},
            "api_app_id": "A1", "team": {"id": "T1"}, "trigger_id": f"load.{n}.{tag}",
            "response_url": self.fake.response_url(tag),
            "actions": [{"action_id": "council_rsvp", "block_id": "b", "type": "button",
                         "value": f"{meeting}:{choice}", "action_ts": f"{time.time():.6f}"}],
            "channel": {"id": "C0COUNCIL", "name": "council"},
            "container": {"type": "message", "channel_id": "C0COUNCIL", "message_ts": f"1800000002.{n:06d}"},
            "message": {"ts": f"1800000002.{n:06d}", "text": ""},
        }
        return urlencode({"payload": json.dumps(payload, ensure_ascii=False)}).encode(), tag

    def patient(self, member: int, i: int) -> tuple[str, str]:
        mine = self.names[member]
        return mine[i % len(mine)]

    def rows(self) -> list[Row]:
        def liaison_open(member, i, real):
            name, code = self.patient(member, i)
            return self.command(member, "/liaison", name, real)

        def liaison_list(member, i, real):
            name, code = self.patient(member, i)
            body, tag = self.command(member, "/liaison", f"{name} list", real)
            return body, code

        def note(member, i, real):
            name, code = self.patient(member, i)
            body, tag = self.command(member, "/liaison", f"{name} {BODIES[i % len(BODIES)]}（{i}回目）", real)
            return body, code

        def show(member, i, real):
            name, code = self.patient(member, i)
            body, tag = self.command(member, "/patient", f"show {name}", real)
            return body, code

        def plan_done(member, i, real):
            task = next(self.tasks, None) if real else 1
            if task is None:  # more requests than open tasks: repeats are "already done"
                task = self.w.open_tasks[i % len(self.w.open_tasks)]
            return self.command(member, "/plan", f"done 取り組み{task:04d}", real)

        def done_check(reply: str, tag: str) -> str:
            if "完了として記録しました" in reply:
                return "ok"
            return "already" if "すでに" in reply else "error"

        return [
            Row("/liaison <patient> (lookup + modal)", liaison_open, lambda reply, tag: "ok" if not any(
                f in reply for f in FAILED) else "error", after=self.views_opened),
            Row("/liaison <patient> list", liaison_list, _expect("の連絡票")),
            Row("/liaison <patient> <text> (quick note)", note, _expect("を登録しました")),
            Row(f"/vacancy {self.vacancy}", lambda member, i, real: self.command(member, "/vacancy", self.vacancy, real),
                _expect("ショートステイ空き")),
            Row("/patient show <name>", show, _expect("")),
            Row("/council", lambda member, i, real: self.command(member, "/council", "", real),
                _expect("これからの会議")),
            Row("/plan", lambda member, i, real: self.command(member, "/plan", "", real), _expect("事業計画")),
            Row("/plan done <part of a title> (a new task each time)", plan_done, done_check),
            Row("button: council RSVP (changes the answer)", self.click,
                lambda reply, tag: "ok" if reply.strip() in ("", "{}") else "error", after=self.answered,
                unsent=self.not_clicked),
            # (an RSVP whose earlier click failed finds the answer unchanged: "already", not an error)
        ]

    def not_clicked(self, tags: list[str]) -> None:
        """Clicks made but never sent (the phase's cap) did not change an
        answer: the next click of that member on that meeting is theirs."""
        for tag in tags:
            self.answers[self.clicked.pop(tag)] -= 1

    def views_opened(self, tags: list[str]) -> list[tuple[str, str]]:
        opened = {c.body.get("trigger_id", "").rsplit(".", 1)[-1] for c in self.fake.of("views.open")}
        return [(t, "no views.open for this trigger_id") for t in tags if t not in opened]

    def answered(self, tags: list[str]) -> list[tuple[str, str]]:
        """The RSVP's answer goes to the response_url: "changed" is ok, "unchanged"
        (an earlier click failed, so this one repeats the answer) is "already".
        The bot answers after the ack, in press order: waits up to a minute for the last."""
        deadline = time.monotonic() + 60
        while True:
            said = {c.path.rsplit("/", 1)[-1]: c.text() for c in self.fake.of("response_url")}
            if all(t in said for t in tags) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return [(t, "already" if "のままです" in said.get(t, "") else said.get(t, "no answer at the response_url"))
                for t in tags if "で回答しました" not in said.get(t, "")]


# --- one database ---------------------------------------------------------------------

@dataclass
class Figures:
    n: int = 0
    p50: float = math.nan
    p99: float = math.nan
    errors: int = 0
    already: int = 0
    sample: str = ""
    ok_with_warm_up: int = 0  # successful replies, warm-up included (the quick notes: what must be stored)
    cpu_ms: float = math.nan  # the server's CPU time per request sent, warm-up and work after the reply included
    # When the phase ran, in the clock of the servers' logs: a tail is matched
    # with what the log says happened then (a tick, a checkpoint).
    ran: str = ""
    slowest: str = ""  # when the slowest 1 % were sent: together (a stall) or spread (the queue)
    # Several serving processes: the CPU seconds each spent in the phase (an
    # uneven split means one process's interpreter queued more of the requests).
    split: str = ""


@dataclass
class Result:
    command: str
    database: str
    clients: int
    bot: Figures
    bare: Figures


RESULTS: list[Result] = []
EXTRAS: list[str] = []
POOL: Any = None


def _percentiles(ms: list[float]) -> tuple[float, float]:
    ms = sorted(ms)
    if not ms:
        return math.nan, math.nan
    return statistics.median(ms), ms[max(0, math.ceil(len(ms) * 0.99) - 1)]


def _phase(port: int, per_client: list[list[bytes]], warm: int) -> list[tuple[list, list]]:
    """Each client's results (a client stopped by the cap returns fewer)."""
    start_at = time.time() + 0.3
    return POOL.starmap(_client, [(port, bodies, warm, start_at, S.cap) for bodies in per_client])


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children so far: those
    alive, and those it has waited for (cutime, cstime)."""
    total = 0.0
    for each in [pid, *children_of(pid)]:
        try:
            with open(f"/proc/{each}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def _measure(row: Row, server: "_Server", members: list[int], count: int, warm: int, real: bool) -> Figures:
    made = [[row.make(member, i, real) for i in range(warm + count)] for member in members]
    cpu_before = _cpu_seconds(server.proc.pid)
    serving = children_of(server.proc.pid) if server.processes > 1 else []
    serving_before = [_cpu_seconds(pid) for pid in serving]
    began = time.time()
    finished = _phase(server.port, [[body for body, _ in client] for client in made], warm)
    done = [results for results, _ in finished]
    if real and row.unsent:
        row.unsent([tag for client, results in zip(made, done) for _, tag in client[warm + len(results):]])
    figures = Figures(n=sum(len(results) for results in done), ran=f"{_clock(began)}-{_clock(time.time())}")
    figures.split = " / ".join(f"{_cpu_seconds(pid) - before:.2f}" for pid, before in zip(serving, serving_before))
    figures.p50, figures.p99 = _percentiles([ms for results in done for ms, _, _, _ in results])
    figures.slowest = _slowest([(ms, at) for results in done for ms, _, _, at in results])
    if real:
        figures.ok_with_warm_up = sum(
            status == 200 and row.check(_reply_text(data), tag) == "ok"
            for client, (_, warmed) in zip(made, finished) for (_, tag), (status, data) in zip(client, warmed))
    tags = []
    for client, results in zip(made, done):
        for (_, tag), (_ms, status, data, _at) in zip(client[warm:], results):
            tags.append(tag)
            reply = _reply_text(data)
            if status != 200:
                verdict, reply = "error", f"HTTP {status}: {reply}"
            else:
                verdict = row.check(reply, tag) if real else "ok"
            if verdict == "error":
                figures.errors += 1
                figures.sample = figures.sample or reply
            elif verdict == "already":
                figures.already += 1
            else:
                figures.ok_with_warm_up += 1
    if real and row.after:
        for _tag, problem in row.after(tags):
            if problem == "already":
                figures.already += 1
                continue
            figures.errors += 1
            figures.sample = figures.sample or problem
    # After `row.after`, which waits for the work a press leaves for after the reply.
    sent = sum(len(results) + len(warmed) for results, warmed in finished) or 1
    figures.cpu_ms = (_cpu_seconds(server.proc.pid) - cpu_before) * 1000 / sent
    return figures


def _slowest(timed: list[tuple[float, float]]) -> str:
    """Whether the slowest 1 % of a phase's requests were sent together (one
    stall held them all) or across the phase (the queue's own variance)."""
    if len(timed) < 100:
        return ""
    timed.sort(reverse=True)
    worst = timed[:len(timed) // 100]
    sent = [at for _, at in worst]
    return (f"the {len(worst)} slowest ({worst[-1][0]:.0f}-{worst[0][0]:.0f} ms) were sent within "
            f"{max(sent) - min(sent):.2f} s of each other, {_clock(min(sent))}-{_clock(max(sent))}, of a phase of "
            f"{max(at for _, at in timed) - min(at for _, at in timed):.1f} s")


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at % 1 * 10)}"


def _pick_names(engine, w: World) -> tuple[dict[int, list[tuple[str, str]]], list[str]]:
    """For each benchmark member, the patients of their care teams whose
    name alone finds exactly them among the patients they may see (as
    /liaison and /patient show resolve it); and the patient lookup figures."""
    from bot.store.queries import patient_index

    lines = []
    with session_scope(engine) as session:
        rss0 = _memory(os.getpid()).get("VmRSS", 0)
        t0 = time.perf_counter()
        index = patient_index(session)
        built = time.perf_counter() - t0
        grown = (_memory(os.getpid()).get("VmRSS", 0) - rss0) / 1024
    names: dict[int, list[tuple[str, str]]] = {}
    for member in range(1, CLIENTS + 1):
        mine = set(patients_of(member))
        visible = index.only(mine)
        found = []
        for p in sorted(mine):
            if ended(p):
                continue
            name, _ = name_of(p)
            match, _rest = visible.search_leading(f"{name} list")
            if match.kind == "one" and match.items[0] == p:
                found.append((name, f"P-{p:04d}"))
        if not found:
            raise RuntimeError(f"member {member} has no patient findable by name")
        names[member] = found
    lines.append(f"patient lookup index over {S.patients:,} patients built in {built * 1000:.0f} ms "
                 f"(once per process; cached until a patient changes); this process grew by {grown:.0f} MB building it")
    # Lookup alone, warm: what people type, as an admin would search (the whole index) and as a member (own teams).
    # Lookup alone, warm, what people type: as an admin searches (the whole index), as a member searches for
    # their own patients (the commands' usual case), and for a patient outside their teams (not found).
    rng = random.Random(3)
    anyone = [rng.randint(1, S.patients) for _ in range(30)]
    own = sorted(patients_of(1))
    outside = [p for p in anyone if p not in set(own)][:10]

    def as_admin(q: str) -> None:
        index.search(q)

    def as_member(q: str) -> None:
        # What resolve_patient does: the member's own patients cut out of the
        # index, then, when none is found, the whole index (to audit a hidden hit).
        if index.only(own).search(q).kind == "none":
            index.search(q)

    def typed(picks: list[int]) -> dict[str, list[str]]:
        return {
            "full name": [name_of(p)[0] for p in picks],
            "family name": [name_of(p)[0].split()[0] for p in picks],
            "kana": [name_of(p)[1] for p in picks],
            "code": [f"P-{p:04d}" for p in picks],
            "typo": [name_of(p)[0].split()[0] + "〇" + name_of(p)[0].split()[1][1:] for p in picks],
        }

    for who, picks, search in (("whole index (as an admin)", anyone, as_admin),
                               ("a member's own patients", (own * 2)[:30], as_member),
                               ("a member, a patient outside their teams", outside, as_member)):
        every, parts = [], []
        for kind, qs in typed(picks).items():
            for q in qs[:3]:
                search(q)  # warm
            ms = []
            for q in qs:
                t0 = time.perf_counter()
                search(q)
                ms.append((time.perf_counter() - t0) * 1000)
            every.extend(ms)
            p50, p99 = _percentiles(ms)
            parts.append(f"{kind} {p50:.2f}/{p99:.2f}")
        p50, p99 = _percentiles(every)
        lines.append(f"patient lookup alone, {who}, {len(every)} searches: p50 {p50:.2f} ms, p99 {p99:.2f} ms "
                     f"({'OK' if p99 < 2 else 'OVER'} the 2 ms p99 target); p50/p99 by what was typed: "
                     f"{', '.join(parts)}")
    return names, lines


def _profile(url: str, fake: FakeSlack, reqs: Requests) -> list[str]:
    """RENKEI_BENCH_PROFILE=1: each row's requests once more, in process,
    through the bot's own WSGI app (signature check, Bolt, listeners, the
    core; no HTTP server) under cProfile, one client: where the time goes."""
    import cProfile
    import pstats

    from bot.app import create_app
    from bot.runtime import Runtime
    from bot.settings import load_settings
    from bot.web import make_wsgi
    from tests.slackreq import SlackClientSim

    settings = load_settings(database_url=url, config_dir=ROOT / "config", slack_bot_token="xoxb-bench",
                             slack_signing_secret=SECRET, slack_api_url=fake.api_url, admins_csv="")
    runtime = Runtime.build(settings)
    slack = SlackClientSim(make_wsgi(create_app(settings, runtime), runtime), SECRET, fake)
    from sqlalchemy import event

    counted: Counter[str] = Counter()
    event.listen(runtime.engine, "before_cursor_execute", lambda *_: counted.update(["statements"]))
    event.listen(runtime.engine, "commit", lambda *_: counted.update(["commits"]))
    lines = []
    for row in reqs.rows():
        bodies = [row.make(1, i, True)[0] for i in range(23)]
        for body in bodies[:3]:
            slack.post(body)
        counted.clear()
        profile = cProfile.Profile()
        t0 = time.perf_counter()
        profile.enable()
        for body in bodies[3:]:
            slack.post(body)
        profile.disable()
        each = (time.perf_counter() - t0) * 1000 / 20
        stats = pstats.Stats(profile).stats  # (file, line, name) -> (cc, nc, tottime, cumtime, callers)
        total = sum(v[2] for v in stats.values()) or 1
        top = sorted(stats.items(), key=lambda kv: -kv[1][2])[:5]
        where = ", ".join(f"{_where(f, ln, n)} {v[2] / total:.0%}" for (f, ln, n), v in top)
        lines.append(f"profile {row.name[:40]}: {each:.1f} ms per request under cProfile, {counted['statements'] / 20:.1f} "
                     f"SQL statements and {counted['commits'] / 20:.1f} commits (with the work a press leaves to its lanes); "
                     f"self time: {where}")
    background = getattr(runtime, "background", None)
    if background is not None:
        background.shutdown(wait=False)
    runtime.engine.dispose()
    return lines


def _where(file: str, line: int, name: str) -> str:
    if file == "~":  # a builtin: <method 'execute' of 'sqlite3.Cursor' objects>
        found = re.fullmatch(r"<(?:method|built-in method) '?([\w.]+)'?(?: of '([\w.]+)' objects)?>", name)
        return f"{found[2]}.{found[1]}" if found and found[2] else (found[1] if found else name)
    return f"{Path(file).parent.name}/{Path(file).name}:{line} {name}"


def _tick(url: str, w: World) -> list[str]:
    """Three ticks in process (the bot stopped): a minute before the timed
    one (as `renkei serve` ticks every minute, whatever was already late is
    recorded then: on a fresh database, the plan digests of past Mondays),
    the timed one with the meetings' reminders due, and a minute after it
    (nothing new due: what every minute costs)."""
    from bot import schedule
    from bot.runtime import Runtime
    from bot.settings import load_settings
    from bot.slack import blocks

    settings = load_settings(database_url=url, config_dir=ROOT / "config", slack_bot_token="",
                             slack_signing_secret="", admins_csv="")
    runtime = Runtime.build(settings, clock=lambda: w.tick_at)

    def send(message, key=None) -> bool:
        blocks.message(message)
        return True

    lines = []
    for name, at in (("the tick a minute before", w.tick_at - timedelta(minutes=1)),
                     ("ONE TICK with the reminders due", w.tick_at),
                     ("the tick a minute after (nothing new due)", w.tick_at + timedelta(minutes=1))):
        t0 = time.perf_counter()
        report = schedule.tick(runtime, at, send)
        took = time.perf_counter() - t0
        line = (f"{name}: {len(report.sent)} messages claimed, rendered and recorded, {len(report.skipped)} "
                f"recorded as skipped, {len(report.failed)} failed, in {took:.2f} s (every job; the send to Slack "
                f"is not timed)")
        if at == w.tick_at:
            line += f" ({'OK' if took < 2 else 'OVER'} 2 s)"
        lines.append(line)
    background = getattr(runtime, "background", None)
    if background is not None:
        background.shutdown()
    runtime.engine.dispose()
    return lines


def run(url: str, label: str) -> None:
    w = make_world()
    engine = make_engine(url)
    upgrade(engine)
    t0 = time.perf_counter()
    counts = seed(engine, w)
    took = time.perf_counter() - t0
    EXTRAS.append(f"[{label}] seeded {sum(counts.values()):,} rows in {took:.0f} s "
                  f"({'OK' if took < 180 else 'OVER'} 3 min): " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    print(EXTRAS[-1], flush=True)
    names, lines = _pick_names(engine, w)
    engine.dispose()
    for line in lines:
        EXTRAS.append(f"[{label}] {line}")
        print(EXTRAS[-1], flush=True)

    fake = FakeSlack().start()
    reqs = Requests(w, fake, names)
    # The same bot as several processes on one port (`renkei serve
    # --processes`), measured at 16 clients right after the one process on
    # each row, so both meet the same machine.
    processes = PROCESSES
    several_label = f"{'PG' if label == 'PostgreSQL' else label} {processes} proc"
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RENKEI_", "SLACK_"))}
        env.update(PYTHONPATH=str(ROOT), SLACK_BOT_TOKEN="xoxb-bench", SLACK_SIGNING_SECRET=SECRET,
                   RENKEI_SLACK_API_URL=fake.api_url, RENKEI_DATABASE_URL=url, RENKEI_CONFIG=str(ROOT / "config"))
        logs = Path(tempfile.gettempdir())  # kept for a look afterwards
        bot = _Server(logs / f"renkei-bench-load-{label}.log", [sys.executable, "-c", SERVE, "serve"], env, tmp, 1)
        bare = _Server(Path(tmp) / "bare.log", [sys.executable, "-m", "bench._bare_bolt"], env, str(ROOT))
        servers = [bot, bare]
        if processes > 1:
            several = _Server(logs / f"renkei-bench-load-{label}-{processes}.log",
                              [sys.executable, "-c", SERVE, "serve"], env, tmp, processes)
            servers.append(several)
        try:
            bot.start()
            bare.start()
            healthy = time.monotonic()
            _wait_first_tick(url, bot.log)
            _wait_logged(bot.log, "caches filled", 1)
            waited = time.monotonic() - healthy
            EXTRAS.append(f"[{label}] the bot's first scheduler tick (at start, on this fresh database: it records "
                          f"every late plan digest as skipped) and its caches filled at start-up ended {waited:.0f} s "
                          f"after /healthz; the requests start after both, so they meet only the ordinary tick "
                          f"every minute")
            print(EXTRAS[-1], flush=True)
            if processes > 1:
                several.start()  # after the first tick: its own find nothing late
                _wait_logged(several.log, "caches filled", processes)
            t0, load0 = time.perf_counter(), os.getloadavg()[0]
            for row in reqs.rows():
                for clients, count, warm in ((1, S.solo, S.solo_warm), (CLIENTS, S.each, S.each_warm)):
                    members = list(range(1, clients + 1))
                    ours = _measure(row, bot, members, count, warm, True)
                    theirs = _measure(row, bare, members, count, warm, False)
                    RESULTS.append(Result(row.name, label, clients, ours, theirs))
                    print(_line(RESULTS[-1]), flush=True)
                    if processes > 1 and clients > 1:
                        ours = _measure(row, several, members, count, warm, True)
                        RESULTS.append(Result(row.name, several_label, clients, ours, theirs))
                        print(_line(RESULTS[-1]), flush=True)
            EXTRAS.append(f"[{label}] all requests took {time.perf_counter() - t0:.0f} s; machine load average "
                          f"(1 min) {load0:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs")
            memory = _memory(bot.proc.pid)
            peak = memory.get("VmHWM", 0) / 1024
            EXTRAS.append(f"[{label}] bot peak RSS (VmHWM) {peak:.0f} MB, RSS now "
                          f"{memory.get('VmRSS', 0) / 1024:.0f} MB ({'OK' if peak < 150 else 'OVER'} "
                          f"150 MB); bare Bolt peak RSS {_memory(bare.proc.pid).get('VmHWM', 0) / 1024:.0f} MB")
            if processes > 1:
                peaks = [_memory(pid).get("VmHWM", 0) / 1024 for pid in children_of(several.proc.pid)]
                EXTRAS[-1] += (f"; with {processes} processes, each serving process's peak: "
                               + ", ".join(f"{p:.0f}" for p in peaks) + " MB")
            print(EXTRAS[-1], flush=True)
            with session_scope(make_engine(url)) as session:
                stored = session.exec(text("SELECT count(*) FROM note WHERE id > :n").bindparams(
                    n=w.seed_notes)).one()[0]
            said = sum(r.bot.ok_with_warm_up for r in RESULTS
                       if r.database in (label, several_label) and "quick note" in r.command)
            EXTRAS.append(f"[{label}] quick notes stored by the requests: {stored}; replies that said 'stored' "
                          f"(warm-up included): {said} ({'OK: each once' if stored == said else 'MISMATCH'})")
        finally:
            for server in servers:
                server.stop()
        if os.environ.get("RENKEI_BENCH_PROFILE", "") not in ("", "0"):
            for line in _profile(url, fake, reqs):
                EXTRAS.append(f"[{label}] {line}")
                print(EXTRAS[-1], flush=True)
        for server in (s for s in servers if s is not bare):
            EXTRAS.append(f"[{label}] bot log ({server.log}): "
                          + _log_summary(server.log.read_text(errors="replace")))
            print(EXTRAS[-1], flush=True)
    fake.stop()
    for line in _tick(url, w):
        EXTRAS.append(f"[{label}] {line}")
        print(EXTRAS[-1], flush=True)


class _Server:
    """A server process of the benchmark on a free port, its output in `log`."""

    def __init__(self, log: Path, argv: list[str], env: dict[str, str], cwd: str, processes: int = 0):
        """`argv` without the port; `processes`: the bot's serving processes
        (0: not the bot, the port is its one argument)."""
        self.log, self.env, self.cwd, self.processes = log, env, cwd, processes
        self.port = _free_port()
        self.argv = argv + (["--host", "127.0.0.1", "--port", str(self.port), "--processes", str(processes)]
                            if processes else [str(self.port)])
        self.proc: subprocess.Popen | None = None
        self._out = None

    def start(self) -> None:
        """Starts it and waits for /healthz and, for several processes,
        until each of them serves."""
        self._out = open(self.log, "wb")
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=self._out,
                                     stderr=subprocess.STDOUT)
        _wait_healthy(self.port, self.proc, self.log)
        deadline = time.monotonic() + 120
        while self.log.read_text(errors="replace").count("Serving on") < self.processes:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"not every serving process started:\n{_tail(self.log)}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
        if self._out is not None:
            self._out.close()


def _log_summary(log_text: str) -> str:
    """How many ERROR and WARNING lines the bot logged during the run, by
    logger and message start, and what its scheduler said."""
    kinds: Counter[str] = Counter()
    for line in log_text.splitlines():
        parts = line.split(" ", 4)  # date time level logger: message
        if len(parts) == 5 and parts[2] in ("ERROR", "WARNING"):
            kinds[f"{parts[2]} {parts[3]} {parts[4][:70]}"] += 1
    ticks = [line.split(": ", 1)[-1] for line in log_text.splitlines() if " tick: " in line]
    lines = log_text.splitlines()
    raised: Counter[str] = Counter()  # the exception line that ends each traceback
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            j = i + 1
            while j < len(lines) and (lines[j].startswith((" ", "\t")) or not lines[j].strip()):
                j += 1
            if j < len(lines):
                raised[lines[j][:110]] += 1
    return (f"{sum(kinds.values())} ERROR/WARNING lines, {log_text.count('Traceback')} tracebacks"
            + "".join(f"\n    {n} x {k}" for k, n in kinds.most_common(6))
            + "".join(f"\n    {n} x raised {k}" for k, n in raised.most_common(4))
            + (f"\n    scheduler: {len(ticks)} ticks reported something: {'; '.join(ticks[:5])}" if ticks else ""))


# --- the table ------------------------------------------------------------------------

def _verdict(r: Result) -> str:
    if r.clients == 1:
        ok = r.bot.p50 <= 2 * r.bare.p50
        return f"{'OK' if ok else 'OVER'} (p50 <= 2x bare)"
    return f"{'OK' if r.bot.p99 < 100 else 'OVER'} (p99 < 100 ms)"


def _line(r: Result) -> str:
    return (f"{r.command[:52]:<52} {r.database:<13} {r.clients:>2} {r.bot.n:>4} {r.bot.errors:>4} "
            f"{r.bot.p50:8.1f} {r.bot.p99:8.1f} {r.bare.p50:6.1f} {r.bare.p99:6.1f} "
            f"{r.bot.p50 / r.bare.p50:6.1f}x {r.bot.p99 / r.bare.p99:6.1f}x {r.bot.cpu_ms:6.1f} {r.bare.cpu_ms:6.1f}"
            f"  {_verdict(r):<22} {r.bot.ran}")


def table() -> str:
    head = (f"{'command':<52} {'database':<13} {'cl':>2} {'n':>4} {'err':>4} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'bare50':>6} {'bare99':>6} {'p50 ×':>7} {'p99 ×':>7} {'cpu':>6} {'bcpu':>6}  {'target':<22} ran")
    out = [head, "-" * len(head)]
    order = list(dict.fromkeys(r.command for r in RESULTS))  # the rows in the order they were measured
    for r in sorted(RESULTS, key=lambda r: (order.index(r.command), not r.database.startswith("SQLite"), r.clients,
                                            "proc" in r.database)):
        out.append(_line(r))
    notes = []
    for r in RESULTS:
        if r.bot.errors:
            notes.append(f"  {r.command} [{r.database}, {r.clients} cl]: {r.bot.errors} errors of {r.bot.n}; "
                         f"one reply: {r.bot.sample[:400]}")
        if r.bot.already:
            notes.append(f"  {r.command} [{r.database}, {r.clients} cl]: {r.bot.already} answered 'already done' or "
                         f"'unchanged' (counted as answered, not as errors)")
        if r.clients > 1 and r.bot.slowest:
            notes.append(f"  {r.command} [{r.database}, {r.clients} cl]: {r.bot.slowest}")
        if r.bot.split:
            notes.append(f"  {r.command} [{r.database}, {r.clients} cl]: CPU of each serving process in the phase: "
                         f"{r.bot.split} s")
        if r.bot.n and r.bot.n < (S.solo if r.clients == 1 else S.each * CLIENTS):
            notes.append(f"  {r.command} [{r.database}, {r.clients} cl]: only {r.bot.n} requests within the "
                         f"{S.cap:.0f} s cap")
    return "\n".join(out + (["errors and notes:"] + notes if notes else []))


def _revision() -> str:
    """The commit measured, and whether the work tree differed from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "bot", "templates", "config"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head or 'unknown'}{' with uncommitted changes in bot/, templates/ or config/' if dirty else ''}"


def main() -> None:
    global POOL
    if not logging.getLogger().handlers:  # the in-process parts: counted and summarised, not printed
        logging.getLogger().addHandler(logging.NullHandler())
    RESULTS.clear()
    EXTRAS.clear()
    # The client processes are forked first, before any thread (the fake Slack) exists.
    POOL = multiprocessing.get_context("fork").Pool(CLIENTS)
    try:
        print(f"load benchmark{' (QUICK: small data set, few requests)' if QUICK else ''}: "
              f"{S.patients:,} patients, {S.notes:,} notes, {S.facilities:,} facilities x {S.nights} nights, "
              f"{S.tasks:,} tasks / {S.completions:,} completions, {S.meetings:,} meetings; "
              f"{S.solo} requests per row at 1 client, {CLIENTS}x{S.each} at {CLIENTS} clients "
              f"(client processes, keep-alive), machine: {os.cpu_count()} CPUs; code: {_revision()}", flush=True)
        print(f"{'command':<52} {'database':<13} {'cl':>2} {'n':>4} {'err':>4} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'bare50':>6} {'bare99':>6} {'p50 ×':>7} {'p99 ×':>7} {'cpu':>6} {'bcpu':>6}  {'target':<22} ran",
              flush=True)
        on_each_database(run)
    finally:
        POOL.close()
        POOL.join()
    print()
    print(table())
    print()
    print("\n".join(EXTRAS))


if __name__ == "__main__":
    main()
