"""Two bot processes, one database, both running the scheduler.

`renkei serve` runs the scheduler tick once a minute on the wall clock
(`bot.schedule.start`), which cannot be moved to another week. So each
process here is `tests/tick_worker.py`: it builds its own Runtime and
WebClient from the environment exactly as `renkei serve` does, and calls
the very function serve's APScheduler job calls,
`bot.schedule.tick(runtime, at, scheduler_sender(runtime, client))`, only
at simulated instants. The processes are real OS processes with their own
connections, against one database and the fake Slack Web API.

On PostgreSQL (RENKEI_TEST_DATABASE_URL) and on one SQLite file, which
several serving processes share as well (`renkei serve --processes`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from bot.delivery import LEASE
from bot.store.models import Delivery, Facility, Meeting, Note
from tests.conftest import JST, PG_URL, ROOT, FakeClock, _fresh_postgres, member_of

# Set up on the Sunday evening before the simulated week (the demo figures
# are dated relative to this clock when seeded).
SET_UP_AT = datetime(2026, 11, 29, 20, 0, tzinfo=JST)
MONDAY = datetime(2026, 11, 30, 0, 0, tzinfo=JST)  # the simulated week: Mon 11/30 to Sun 12/6
# Liaison notes written during the week (their first post fails).
NOTES = [(datetime(2026, 11, 30, 10, 5, tzinfo=JST), "山田 退院後初回訪問、食欲あり"),
         (datetime(2026, 12, 2, 15, 10, tzinfo=JST), "髙橋 服薬カレンダーを導入"),
         (datetime(2026, 12, 5, 22, 40, tzinfo=JST), "山田 夜間に発熱 37.8℃")]


@pytest.fixture(params=["sqlite"] + (["postgresql"] if PG_URL else []))
def db_url(request, tmp_path):
    """Overrides conftest's: a SQLite file every process can open."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'renkei.db'}"
    _fresh_postgres(PG_URL)
    return PG_URL


@pytest.fixture
def clock():
    return FakeClock(SET_UP_AT)


# --- processes -------------------------------------------------------------------------------------------

def spawn_workers(bot, *instants: list[str]) -> list[subprocess.Popen]:
    """One tick worker per list of instants, all started at once; each
    returned connected and waiting (it said "ready") for `go`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RENKEI_"))}
    env.update({"RENKEI_DATABASE_URL": bot.runtime.engine.url.render_as_string(hide_password=False),
                "RENKEI_CONFIG": str(ROOT / "config"), "SLACK_BOT_TOKEN": "xoxb-test",
                "SLACK_SIGNING_SECRET": "test-signing-secret", "RENKEI_SLACK_API_URL": bot.fake.api_url})
    procs = [subprocess.Popen([sys.executable, "-m", "tests.tick_worker", *ticks], env=env, cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for ticks in instants]
    try:
        for p in procs:
            line = p.stdout.readline().strip()
            assert line == "ready", (line, p.communicate(timeout=30))
    except BaseException:
        kill(procs)
        raise
    return procs


def go(procs: list[subprocess.Popen]) -> list[subprocess.Popen]:
    """The barrier: every one is waiting on stdin; start them together."""
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    return procs


def kill(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def reports(procs: list[subprocess.Popen], timeout: float = 300) -> list[list[dict]]:
    """Each worker's tick reports, once all have ended (pipes read in parallel)."""
    try:
        with ThreadPoolExecutor(len(procs)) as pool:
            outputs = list(pool.map(lambda p: p.communicate(timeout=timeout), procs))
    finally:
        kill(procs)
    return ended_well(procs, [[json.loads(line) for line in out.splitlines()] for out, _ in outputs], outputs)


def ended_well(procs: list[subprocess.Popen], ticks: list[list[dict]], output) -> list[list[dict]]:
    """`ticks`, once every worker is seen to have ended cleanly and no tick to have raised."""
    assert all(p.returncode == 0 for p in procs), output
    assert not [t for worker in ticks for t in worker if "error" in t], output
    return ticks


def in_lockstep(procs: list[subprocess.Popen], instants: int) -> list[list[dict]]:
    """Each worker's tick reports, every instant started in all of them
    together and the next only once all have reported, as processes on
    one wall clock would. Left to run freely, one worker's simulated clock
    ran an instant (hours) ahead of the other's, found a claim the other
    had just made already past its 10-minute lease, and took it over: no
    post was doubled (the resend found it in the channel), but no two real
    clocks drift apart by hours."""
    errors = [[] for _ in procs]
    readers = [threading.Thread(target=lambda p=p, lines=lines: lines.extend(p.stderr), daemon=True)
               for p, lines in zip(procs, errors)]  # stderr read all along: a full pipe would stop the worker
    for reader in readers:
        reader.start()
    ticks: list[list[dict]] = [[] for _ in procs]
    try:
        for _ in range(instants):
            try:
                go(procs)
            except BrokenPipeError:  # a worker ended early: say why below
                break
            for p, mine in zip(procs, ticks):
                line = p.stdout.readline()
                if not line:
                    break
                mine.append(json.loads(line))
        for p in procs:
            p.stdin.close()
            p.wait(timeout=60)
    finally:
        kill(procs)
        for reader in readers:
            reader.join(10)
    assert all(len(t) == instants for t in ticks), errors
    return ended_well(procs, ticks, (ticks, errors))


def names(ticks: list[dict], what: str) -> list[str]:
    return [name for t in ticks for name in t[what]]


# --- what Slack received ---------------------------------------------------------------------------------

def posts(bot) -> list[dict]:
    return [c.body for c in bot.fake.of("chat.postMessage")]


def key_of(body: dict) -> str | None:
    return ((body.get("metadata") or {}).get("event_payload") or {}).get("key")


def said(body: dict) -> str:
    """A message as its reader sees it: where, what, and whether it is a
    thread reply (thread timestamps differ from run to run)."""
    return json.dumps([body["channel"], bool(body.get("thread_ts")), key_of(body), body.get("text") or "",
                       body.get("blocks") or []], ensure_ascii=False)


def statuses(bot) -> Counter:
    with bot.session() as s:
        return Counter(r.status for r in s.exec(select(Delivery)))


# --- 1. a simulated week ---------------------------------------------------------------------------------

def buttons(body: dict) -> dict[str, dict]:
    return {e["text"]["text"]: e for b in body.get("blocks", []) if b["type"] == "actions" for e in b["elements"]}


def set_up_week(bot) -> None:
    """The week of Mon 2026-11-30, as its team set it up on the Sunday
    evening (and, for the notes, during the week):

    - vacancy: staff for every facility. The demo figures were confirmed
      Sunday (ひまわり three days earlier), so ひまわり is stale from
      Monday's 08:30 prompt, あおば苑 and みなと from Wednesday's (48 h);
      みなと's figures end with the night of 12/5.
    - plan: the plan channel, a task overdue since 11/25 with two owners
      (Monday 09:00 digest, its thread reply, one DM to each owner) and one
      due later.
    - council: a 協議会 on Fri 12/4 14:00 (reminders 3d, 1d, 2h; the nurse
      answered, the doctor and the pharmacist did not), a 部会 on Wed 12/2
      08:00 (1d, 2h: the 2h reminder falls at 06:00 and waits for the end of
      quiet hours; the doctor answered absent) and a 部会 on Wed 12/9 10:00
      whose 7d reminder is this Wednesday.
    - liaison: three notes, written Mon 10:05, Wed 15:10 and Sat 22:40,
      whose channel post failed when written (the outbox job sends them).
    """
    for text in ("staff ひまわり add <@U0DEMONS1>", "staff みなと add <@U0DEMONS1>", "staff ひまわり add <@U0DEMOPH1>"):
        assert "担当者を追加しました" in bot.sim.command("/vacancy", text, user="U0DEMOADM").text
    assert "投稿先を" in bot.sim.command("/plan", "channel <#C0PLAN|plan>", user="U0DEMOADM").text
    for text in ("add F 連携シートを改訂する owner=<@U0DEMONS1> <@U0DEMOCM1> due=11/25",
                 "add E 事例検討会 owner=<@U0DEMOPH1> due=12/20"):
        assert "に追加しました" in bot.sim.command("/plan", text, channel="C0PLAN").text
    for text in ("12/4(金) 14:00-16:00 第4回 推進協議会 remind=3d,1d,2h <@U0DEMONS1> <@U0DEMODR1> <@U0DEMOPH1>",
                 "12/2(水) 8:00 退院支援部会 remind=1d,2h <@U0DEMONS1> <@U0DEMODR1>",
                 "12/9(水) 10:00 看取り部会 <@U0DEMOPH1>"):
        assert "会議を登録しました" in bot.sim.command("/council", f"add {text}", channel="C0COUNCIL").text
    bot.runtime.wait_idle()
    council, discharge, _ = [c.body for c in bot.fake.of("chat.postMessage") if c.body["channel"] == "C0COUNCIL"]
    for post, answer, user in ((council, "出席", "U0DEMONS1"), (discharge, "欠席", "U0DEMODR1")):
        button = buttons(post)[answer]
        bot.sim.click(button["action_id"], button["value"], user=user, channel="C0COUNCIL")
    for when, text in NOTES:
        bot.clock.set(when)
        bot.fake.fail("chat.postMessage", "internal_error")
        assert "登録しました" in bot.sim.command("/liaison", text, channel="C0TEAM").text
        bot.runtime.wait_idle()
    assert len(bot.fake.of("chat.postMessage!failed")) == 3 and not bot.fake.failures["chat.postMessage"]
    assert statuses(bot) == {"failed": 3}  # the three note posts, to be retried
    bot.fake.clear()


def week_instants() -> list[datetime]:
    """Every two hours of the week, plus each day's 07:00 (quiet hours end),
    08:30 (the morning prompt) and 09:00 (the digest), and a minute after
    each note: every item falls due at one of them, as it would at one of a
    1-minute tick's."""
    found = {MONDAY + timedelta(hours=h) for h in range(0, 7 * 24, 2)}
    for day in range(7):
        found |= {MONDAY + timedelta(days=day, hours=h) for h in (7, 8.5, 9)}
    found |= {written + timedelta(minutes=1) for written, _ in NOTES}
    return sorted(found)


def expected_week(bot) -> dict[str, str]:
    """Every delivery key the week must send, and where it must land (a
    channel, or the Slack user of a DM), worked out from the set-up alone."""
    with bot.session() as s:
        member = {u: member_of(s, u).id for u in ("U0DEMOCM1", "U0DEMONS1", "U0DEMODR1", "U0DEMOPH1", "U0DEMOSS1")}
        facility = {f.name: f.id for f in s.exec(select(Facility))}
        meeting = {m.title: m for m in s.exec(select(Meeting))}
        notes = [n.id for n in s.exec(select(Note).order_by(Note.id))]
    want: dict[str, str] = {}
    # ひまわり's figures are 3 days old from Monday; あおば苑's and みなと's
    # (confirmed Sunday) reach 48 h by Wednesday's prompt; みなと's end with
    # the night of 12/5. A weekend is no day off (only holidays and 年末年始).
    himawari = [("ショートステイ ひまわり", "U0DEMONS1"), ("ショートステイ ひまわり", "U0DEMOPH1")]
    aoba, minato = ("特養 あおば苑", "U0DEMOSS1"), ("老健 みなと", "U0DEMONS1")
    for day, staff in (("2026-11-30", himawari), ("2026-12-01", himawari), ("2026-12-02", [*himawari, aoba, minato]),
                       ("2026-12-03", [*himawari, aoba, minato]), ("2026-12-04", [*himawari, aoba, minato]),
                       ("2026-12-05", [*himawari, aoba, minato]), ("2026-12-06", [*himawari, aoba])):
        for name, user in staff:
            want[f"vacancy.freshness/facility:{facility[name]}:member:{member[user]}/{day}"] = user
    want["plan.digest/plan:channel/2026-11-30"] = "C0PLAN"
    for user in ("U0DEMONS1", "U0DEMOCM1"):  # the owners of the overdue task
        want[f"plan.digest/plan:owner:{member[user]}/2026-11-30"] = user
    for note in notes:
        want[f"note.post/note:{note}/post"] = "C0TEAM"
    # (meeting, offset, who has not answered: DMs from the day before, organiser's list at 1d)
    for title, offset, silent in (("第4回 推進協議会", "3d", []),
                                  ("第4回 推進協議会", "1d", ["U0DEMOCM1", "U0DEMODR1", "U0DEMOPH1"]),
                                  ("第4回 推進協議会", "2h", ["U0DEMOCM1", "U0DEMODR1", "U0DEMOPH1"]),
                                  ("退院支援部会", "1d", ["U0DEMOCM1", "U0DEMONS1"]),
                                  ("退院支援部会", "2h", ["U0DEMOCM1", "U0DEMONS1"]),
                                  ("看取り部会", "7d", [])):
        m = meeting[title]
        slot = f"{m.starts_at.isoformat()}/{offset}"
        want[f"meeting.reminder/meeting:{m.id}/{slot}"] = "C0COUNCIL"
        for user in silent:
            want[f"meeting.reminder/meeting:{m.id}:member:{member[user]}/{slot}"] = user
        if offset == "1d":
            want[f"meeting.reminder/meeting:{m.id}:organiser/{slot}"] = "U0DEMOCM1"
    return want


def test_a_simulated_week_from_two_processes_sends_every_message_exactly_once(bot):
    """Two processes tick the same instants of the week of Mon 2026-11-30
    together; between them Slack receives every reminder, digest, prompt
    and note post of the week exactly once, each delivery row is `sent` by
    one process and found taken by the other, and none is left `pending` or
    `failed`. What the week must send is listed from the set-up alone.

    The instants (`week_instants`, 108 of them): every two hours, plus each
    instant something falls due between them, so each item goes at the
    instant a 1-minute tick would send it. Not every 15 minutes: a tick costs
    ~100-200 ms here (the plan digest job builds the whole digest for every
    week in its lookback on every tick, parsing the plan template's YAML
    each time), and 2 x 672 ticks on two cores take minutes."""
    set_up_week(bot)
    want = expected_week(bot)
    instants = [t.isoformat() for t in week_instants()]
    started = time.monotonic()
    a, b = in_lockstep(spawn_workers(bot, ["--lockstep", *instants], ["--lockstep", *instants]), len(instants))
    took = time.monotonic() - started
    received = posts(bot)
    print(f"{len(instants)} ticks from each of two processes in {took:.1f} s: "
          f"{len(names(a, 'sent'))} + {len(names(b, 'sent'))} sent")

    # Each delivery key sent by exactly one process.
    assert not names(a, "failed") and not names(b, "failed"), (a, b)
    assert not set(names(a, "sent")) & set(names(b, "sent"))
    assert sorted(names(a, "sent") + names(b, "sent")) == sorted(want)
    # They met: at the instant one sent an item, the other found it taken
    # (a note, once posted, is no longer due at all).
    for mine, other in ((a, b), (b, a)):
        for tick_mine, tick_other in zip(mine, other):
            assert tick_mine["at"] == tick_other["at"]
            for name in tick_mine["sent"]:
                assert name in tick_other["taken"] or name.startswith("note.post/"), (tick_mine, tick_other)

    # Slack received each message once, where it belongs.
    top = [p for p in received if not p.get("thread_ts")]
    assert Counter(key_of(p) for p in top) == Counter(list(want)), Counter(key_of(p) for p in top)
    assert all(p["channel"] == want[key_of(p)] for p in top)
    # The digest's one thread reply, keyed after the digest.
    (reply,) = [p for p in received if p.get("thread_ts")]
    assert reply["channel"] == "C0PLAN" and key_of(reply).endswith("#reply0") and "連携シートを改訂する" in said(reply)
    assert all(n == 1 for n in Counter(said(p) for p in received).values())
    # What the readers see.
    digest = next(p for p in top if p["channel"] == "C0PLAN")
    assert "期限切れ 1件" in said(digest)
    assert all("連携シートを改訂する" in said(p) for p in top if key_of(p).startswith("plan.digest/plan:owner"))
    notes = sorted((key_of(p), said(p)) for p in top if p["channel"] == "C0TEAM")
    assert [code in text for (_, text), code in zip(notes, ("P-0001", "P-0002", "P-0001"))] == [True] * 3

    # The delivery table agrees: one `sent` row per message, the note posts
    # on their second attempt, nothing pending or failed; what was skipped
    # was due before the week (the bot was not running then).
    with bot.session() as s:
        rows = s.exec(select(Delivery)).all()
    assert {r.status for r in rows} == {"sent", "skipped"}, [(r.kind, r.subject, r.slot, r.status) for r in rows]
    sent = {f"{r.kind}/{r.subject}/{r.slot}": r.attempts for r in rows if r.status == "sent"}
    assert sent == {key: 2 if key.startswith("note.post/") else 1 for key in want}
    assert all(r.slot < "2026-11-30" for r in rows if r.status == "skipped"), [
        (r.kind, r.subject, r.slot) for r in rows if r.status == "skipped"]
    # Each went when it was due: prompts at 08:30, the digest at 09:00, a
    # note a minute after it was written, a reminder due at night at 07:00.
    when = {f"{r.kind}/{r.subject}/{r.slot}": r.sent_at for r in rows if r.status == "sent"}
    for key, sent_at in when.items():
        kind, _, slot = key.split("/", 2)
        if kind == "vacancy.freshness":
            assert sent_at == datetime.fromisoformat(f"{slot}T08:30+09:00"), key
        elif kind == "plan.digest":
            assert sent_at == MONDAY + timedelta(hours=9), key
    assert sorted(sent_at for key, sent_at in when.items() if key.startswith("note.post/")) == [
        written + timedelta(minutes=1) for written, _ in NOTES]
    with bot.session() as s:  # 退院支援部会, Wed 08:00: its 2h reminder, due at 06:00
        early = s.exec(select(Meeting).where(Meeting.title == "退院支援部会")).one().starts_at.isoformat() + "/2h"
    early = {sent_at for key, sent_at in when.items() if key.endswith(early)}
    assert early == {datetime(2026, 12, 2, 7, 0, tzinfo=JST)}, early


# --- 2. a process killed in the middle of a tick ---------------------------------------------------------

KILL_AT = datetime(2026, 12, 5, 10, 0, tzinfo=JST)  # a Saturday morning
REMINDERS = 40


def set_up_reminders(bot) -> list[str]:
    """40 meetings on Tue 12/8 10:00, each with a 3-day reminder due at
    KILL_AT (to the channel only: nobody is reminded by DM that early). Such
    a reminder may go late until the next one is due, a day before the
    start: long after the lease. At KILL_AT あおば苑's morning prompt (a DM)
    is due too, 1.5 h late. The 41 delivery keys, in the order a tick sends
    them."""
    for number in range(1, REMINDERS + 1):
        text = f"add 12/8(火) 10:00 第{number}回 事例検討部会 remind=3d,1d"
        assert "会議を登録しました" in bot.sim.command("/council", text, channel="C0COUNCIL").text
    bot.runtime.wait_idle()
    with bot.session() as s:
        meetings = s.exec(select(Meeting).order_by(Meeting.id)).all()
        prompt = f"vacancy.freshness/facility:1:member:{member_of(s, 'U0DEMOSS1').id}/2026-12-05"
    bot.fake.clear()
    return [prompt, *(f"meeting.reminder/meeting:{m.id}/{m.starts_at.isoformat()}/3d" for m in meetings)]


def kill_mid_tick(bot, victim: subprocess.Popen, after: int, monkeypatch) -> None:
    """Process A (`victim`, waiting to tick) ticks on a slow Slack: each
    post is taken at once and answered after 0.2 s, and the post numbered
    `after` is answered only after 5 s. While A waits for that answer (Slack
    took the message, A cannot know): SIGKILL."""
    fake, answer = bot.fake, bot.fake._answer

    def answering(method: str, body: dict, path: str) -> dict:
        reply = answer(method, body, path)  # recorded: Slack has taken it
        if method == "chat.postMessage" and len(fake.of(method)) == after:
            fake.post_delay = 5.0  # set before this very post's answer is held back
        return reply

    monkeypatch.setattr(fake, "_answer", answering)
    monkeypatch.setattr(fake, "post_delay", 0.2)
    go([victim])
    deadline = time.monotonic() + 60
    while len(fake.of("chat.postMessage")) < after:
        assert victim.poll() is None and time.monotonic() < deadline, victim.communicate()
        time.sleep(0.005)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    time.sleep(0.3)  # a post already on the wire when it died would still reach Slack
    fake.post_delay = 0.0
    kill([victim])
    assert victim.returncode == -signal.SIGKILL


def rows_by_key(bot) -> dict[str, Delivery]:
    """The delivery rows of what is due at KILL_AT (not the earlier prompts
    recorded as skipped)."""
    with bot.session() as s:
        return {f"{r.kind}/{r.subject}/{r.slot}": r for r in s.exec(select(Delivery).where(
            Delivery.status != "skipped"))}


@pytest.mark.parametrize("history", ["readable", "missing_scope"])
def test_a_process_killed_mid_tick_loses_nothing_and_resends_at_most_the_one_in_flight(bot, history, monkeypatch):
    """Process A dies (SIGKILL) while a tick is posting 41 messages. Nothing
    is lost: process B sends what A never claimed at once, and takes over
    A's one abandoned claim after the lease (bot.delivery.LEASE, 10 min).

    The bound: a tick sends one message at a time (and `renkei serve` runs
    one tick at a time, APScheduler's max_instances=1), so a killed process
    leaves at most ONE claim `pending`, the message in flight; every other
    claim it made is `sent` and is never sent again. The in-flight message
    may or may not have reached Slack. Its retry first looks for its
    delivery key in the channel's history (message metadata):
    - with the history readable, it is found and not posted again: 0 duplicates;
    - without (the app lacks the history scope, or Slack fails to answer),
      it is posted again: at most 1 duplicate per killed process."""
    keys = set_up_reminders(bot)
    after_lease = KILL_AT + LEASE + timedelta(minutes=1)
    # Both processes are up before A starts its tick (B waits to be told).
    a, b = spawn_workers(bot, [KILL_AT.isoformat()], [KILL_AT.isoformat(), after_lease.isoformat()])
    try:
        kill_mid_tick(bot, a, after=5, monkeypatch=monkeypatch)
    except BaseException:
        kill([b])
        raise

    # What A left: `sent` claims, ONE `pending` (the post Slack took but
    # never answered), and the rest not even claimed.
    rows = rows_by_key(bot)
    posted = [key_of(p) for p in posts(bot)]
    pending = [key for key, row in rows.items() if row.status == "pending"]
    assert len(pending) == 1, {key: row.status for key, row in rows.items()}
    (in_flight,) = pending
    assert in_flight == posted[-1] and len(posted) == len(set(posted)) >= 5
    assert sorted(key for key, row in rows.items() if row.status == "sent") == sorted(posted[:-1])
    assert set(rows) == set(posted) and len(rows) < len(keys)
    unclaimed = set(keys) - set(rows)

    # Process B, at the same instant: it sends what A never claimed, and
    # leaves the in-flight one alone (its lease has not run out).
    if history == "missing_scope":
        bot.fake.fail("conversations.history", "missing_scope", times=5)
    now, later = reports(go([b]))[0]
    assert sorted(now["sent"]) == sorted(unclaimed) and not now["failed"]
    assert sorted(now["taken"]) == sorted(rows) and in_flight in now["taken"]
    # After the lease, B takes the abandoned claim over: the message counts as sent.
    assert later["sent"] == [in_flight] and not later["failed"] and sorted(later["taken"]) == sorted(
        set(keys) - {in_flight})

    received = Counter(key_of(p) for p in posts(bot))
    rows = rows_by_key(bot)
    assert {row.status for row in rows.values()} == {"sent"} and set(rows) == set(keys)
    assert rows[in_flight].attempts == 2 and {row.attempts for k, row in rows.items() if k != in_flight} == {1}
    if history == "readable":
        # found by its key in the channel's history: not posted again
        assert received == Counter(keys), received
        assert len(bot.fake.of("conversations.history")) == 1
    else:
        # no way to tell: posted again, the one duplicate the bound allows
        assert received == Counter(keys) + Counter([in_flight]), received
        assert len(bot.fake.of("conversations.history!failed")) == 1


def test_a_digest_killed_while_its_thread_reply_was_in_flight_sends_each_once(bot, monkeypatch):
    """A post with a thread reply (the plan digest), killed while the reply
    is in flight: the digest's claim is `pending`; its retry finds the
    digest by its key in the channel's history and the reply by its own key
    (`…#reply0`) in the thread, so neither is posted again."""
    assert "投稿先を" in bot.sim.command("/plan", "channel <#C0PLAN|plan>", user="U0DEMOADM").text
    text = "add F 連携シートを改訂する owner=<@U0DEMONS1> <@U0DEMOCM1> due=11/25"
    assert "に追加しました" in bot.sim.command("/plan", text, channel="C0PLAN").text
    bot.fake.clear()
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=JST)
    after_lease = monday + LEASE + timedelta(minutes=1)
    a, b = spawn_workers(bot, [monday.isoformat()], [monday.isoformat(), after_lease.isoformat()])
    try:
        kill_mid_tick(bot, a, after=2, monkeypatch=monkeypatch)  # the digest answered, its reply in flight
    except BaseException:
        kill([b])
        raise
    head, reply = posts(bot)
    assert key_of(head) == "plan.digest/plan:channel/2026-11-30" and reply.get("thread_ts")
    assert key_of(reply) == key_of(head) + "#reply0"
    assert {key: row.status for key, row in rows_by_key(bot).items()} == {key_of(head): "pending"}

    now, later = reports(go([b]))[0]
    assert len(now["sent"]) == 2 and now["taken"] == [key_of(head)]  # the owners' DMs
    assert later["sent"] == [key_of(head)]  # found in the history
    in_channel = Counter(said(p) for p in posts(bot) if p["channel"] == "C0PLAN")
    assert in_channel[said(head)] == 1
    assert in_channel[said(reply)] == 1 and sum(in_channel.values()) == 2
    assert sorted(p["channel"] for p in posts(bot) if p["channel"] != "C0PLAN") == ["U0DEMOCM1", "U0DEMONS1"]
    assert {row.status for row in rows_by_key(bot).values()} == {"sent"}
    print(f"thread reply posted {in_channel[said(reply)]} times")
