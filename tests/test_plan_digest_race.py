"""Two `renkei jobs run-due` processes on one PostgreSQL database, started at
the same moment: the weekly plan digest goes to the plan channel once (with
its one thread reply), each owner with overdue tasks gets one DM (a muted
owner none), and the delivery table records each once. A second round of
both sends nothing; a holiday Monday's digest goes on Tuesday, still once.

PostgreSQL only (RENKEI_TEST_DATABASE_URL): the race is between two
processes with their own connections to one database server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from sqlmodel import select

from bot.plan.tasks import owners
from bot.store.models import Delivery, PlanTask
from tests.conftest import PG_URL, ROOT, _fresh_postgres, member_of

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL only: set RENKEI_TEST_DATABASE_URL")

PLAN_CHANNEL = "C0PLAN"

# Each process imports everything first, says "ready", and runs the CLI's
# own main only once the test says "go" on stdin: both ticks start together.
GATED_CLI = (
    "import sys\n"
    "import bot.app, bot.features, bot.schedule, bot.slack.deliver\n"
    "from bot.cli import main\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.fixture
def db_url():
    """Overrides conftest's: this module runs on PostgreSQL only."""
    _fresh_postgres(PG_URL)
    return PG_URL


def run_due_twice_at_once(bot, instant: str) -> list[str]:
    """`renkei jobs run-due --at instant` in two processes at once; their outputs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RENKEI_"))}
    env.update({"RENKEI_DATABASE_URL": bot.runtime.engine.url.render_as_string(hide_password=False),
                "RENKEI_CONFIG": str(ROOT / "config"), "SLACK_BOT_TOKEN": "xoxb-test",
                "RENKEI_SLACK_API_URL": bot.fake.api_url})
    command = [sys.executable, "-c", GATED_CLI, "jobs", "run-due", "--at", instant]
    procs = [subprocess.Popen(command, env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.communicate(timeout=30)[0]
        for p in procs:  # the barrier: both are waiting on stdin
            p.stdin.write("go\n")
            p.stdin.flush()
        outputs = [p.communicate(timeout=60)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for p in procs), outputs
    (sent_a, taken_a), (sent_b, taken_b) = (counts(out) for out in outputs)
    assert sent_a + taken_a == sent_b + taken_b, outputs  # both met the same items
    return outputs


def counts(output: str) -> tuple[int, int]:
    """(sent, already taken) as one process reported them."""
    m = re.search(r"(\d+) sent, \d+ failed, .* (\d+) already taken", output)
    assert m, output
    return int(m[1]), int(m[2])


def sent_by(outputs: list[str], prefix: str = "plan.digest/") -> list[str]:
    return sorted(n for out in outputs for n in re.findall(r"^  sent: (\S+)$", out, re.M) if n.startswith(prefix))


def posts(bot) -> list[dict]:
    return [c.body for c in bot.fake.of("chat.postMessage")]


def said(body: dict) -> str:
    """A message as its reader sees it (thread timestamps aside)."""
    return body["channel"] + "|" + (body.get("text") or "") + json.dumps(body.get("blocks") or [], ensure_ascii=False)


def set_up_plan(bot) -> dict[str, int]:
    """The plan channel; tasks overdue from 11/30: one with two owners, one
    whose owner (the doctor) muted the DM, a second one for the nurse; and
    one due 12/20 (the pharmacist's). Member ids by Slack user."""
    assert "投稿先を" in bot.sim.command("/plan", f"channel <#{PLAN_CHANNEL}|plan>", user="U0DEMOADM").text
    for text in ("add F 連携シートを改訂する owner=<@U0DEMONS1> <@U0DEMOCM1> due=11/25",
                 "add G 市民公開講座 owner=<@U0DEMODR1> due=11/26",
                 "add C 多職種研修を開く owner=<@U0DEMONS1> due=11/27",
                 "add E 事例検討会 owner=<@U0DEMOPH1> due=12/20"):
        added = bot.sim.command("/plan", text, channel=PLAN_CHANNEL).text
        assert "に追加しました" in added and "担当: （未定）" not in added, added
    assert "止めました" in bot.sim.command("/plan", "mute", user="U0DEMODR1").text
    with bot.session() as s:
        ids = {u: member_of(s, u).id for u in ("U0DEMONS1", "U0DEMOCM1", "U0DEMODR1", "U0DEMOPH1")}
        sheet = s.exec(select(PlanTask).where(PlanTask.title == "連携シートを改訂する")).one()
        assert {m.id for m in owners(s, sheet)} == {ids["U0DEMONS1"], ids["U0DEMOCM1"]}
    bot.fake.clear()
    return ids


def assert_sent_once(bot, outputs: list[str], week: str, overdue: int, dm_to: list[str],
                     ids: dict[str, int]) -> int:
    """Between the two processes: the digest of `week` once in the plan
    channel with one thread reply, one overdue DM to each of `dm_to`, no
    message twice, and one `sent` delivery row (first attempt) for each.
    Returns how many items (of every job) the tick sent."""
    subjects = ["plan:channel"] + [f"plan:owner:{ids[u]}" for u in dm_to]
    assert sent_by(outputs) == sorted(f"plan.digest/{s}/{week}" for s in subjects), outputs
    # Every item due was new: what one process did not send, the other did.
    (sent_a, taken_a), (sent_b, taken_b) = (counts(out) for out in outputs)
    assert taken_a == sent_b and taken_b == sent_a, outputs
    due = sent_a + sent_b
    in_channel = [b for b in posts(bot) if b["channel"] == PLAN_CHANNEL]
    assert len(in_channel) == 2, in_channel  # the digest and its one thread reply
    head, reply = in_channel
    assert not head.get("thread_ts") and f"期限切れ {overdue}件" in said(head), head
    assert reply.get("thread_ts") and "連携シートを改訂する" in said(reply), reply
    dms = [b for b in posts(bot) if "期限切れタスク" in said(b)]
    assert sorted(b["channel"] for b in dms) == sorted(dm_to), dms
    nurse = said(next(b for b in dms if b["channel"] == "U0DEMONS1"))
    assert "連携シートを改訂する" in nurse and "多職種研修を開く" in nurse  # two tasks, one DM
    everything = [said(b) for b in posts(bot)]  # the morning's other prompts included
    assert len(everything) == len(set(everything)), everything
    with bot.session() as s:
        rows = s.exec(select(Delivery).where(Delivery.kind == "plan.digest", Delivery.slot == week)).all()
        assert sorted((r.subject, r.status, r.attempts) for r in rows) == sorted(
            (subject, "sent", 1) for subject in subjects)
        assert {r.status for r in s.exec(select(Delivery))} <= {"sent", "skipped"}  # nothing pending or failed
    return due


def test_two_processes_running_due_at_once_send_the_digest_and_each_overdue_dm_once(bot):
    ids = set_up_plan(bot)

    outputs = run_due_twice_at_once(bot, "2026-11-30T09:00+09:00")  # a working Monday
    # the doctor muted the DM; the pharmacist's task is not yet due
    due = assert_sent_once(bot, outputs, "2026-11-30", overdue=3, dm_to=["U0DEMONS1", "U0DEMOCM1"], ids=ids)
    with bot.session() as s:
        before = {r.id: (r.subject, r.slot, r.status, r.attempts, r.sent_at) for r in s.exec(select(Delivery))}

    # A second round of both, a few minutes later: nothing is sent again.
    bot.fake.clear()
    outputs = run_due_twice_at_once(bot, "2026-11-30T09:05+09:00")
    # none sent: the settled week's digest and DMs are not even built again
    assert [counts(out)[0] for out in outputs] == [0, 0] and due, outputs
    assert posts(bot) == []
    with bot.session() as s:
        assert {r.id: (r.subject, r.slot, r.status, r.attempts, r.sent_at)
                for r in s.exec(select(Delivery))} == before


def test_a_holiday_mondays_digest_goes_on_tuesday_once_when_two_processes_race(bot):
    ids = set_up_plan(bot)

    outputs = run_due_twice_at_once(bot, "2027-01-11T09:00+09:00")  # 成人の日
    assert sent_by(outputs) == [], outputs
    assert not [b for b in posts(bot) if b["channel"] == PLAN_CHANNEL or "期限切れタスク" in said(b)]

    bot.fake.clear()
    outputs = run_due_twice_at_once(bot, "2027-01-12T09:00+09:00")
    # by now the pharmacist's 12/20 task is overdue too
    assert_sent_once(bot, outputs, "2027-01-11", overdue=4, dm_to=["U0DEMONS1", "U0DEMOCM1", "U0DEMOPH1"],
                     ids=ids)
