"""The scheduler tick and the morning freshness prompts, driven by
`renkei jobs run-due --at` (the CLI's main) or `tick` at explicit instants.

あおば苑's demo figures were confirmed 2026-11-24 07:00 JST; with the 48 h
limit they are stale at the 11/26 08:30 slot, so its staff (U0DEMOSS1) get a
DM with 「変わりなし」 and 「更新する」."""

import re
from datetime import datetime

import pytest
from sqlmodel import select

from bot import schedule
from bot.cli import main as cli_main
from bot.slack.deliver import scheduler_sender
from bot.store.models import Delivery, Facility, FacilityStaff
from tests.conftest import JST, ROOT, member_of, race_ticks


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=JST)


def buttons(message: dict) -> dict:
    return {e["action_id"]: e for b in message.get("blocks", []) if b["type"] == "actions" for e in b["elements"]}


@pytest.fixture
def run_due(bot, monkeypatch, capsys):
    monkeypatch.setenv("RENKEI_DATABASE_URL", bot.runtime.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("RENKEI_CONFIG", str(ROOT / "config"))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("RENKEI_SLACK_API_URL", bot.fake.api_url)

    def run(instant: str) -> str:
        code = cli_main(["jobs", "run-due", "--at", instant])
        out = capsys.readouterr().out
        assert code == 0, out
        return out

    return run


def prompt_subject(bot, user="U0DEMOSS1", facility=1) -> str:
    """Prompts are keyed by member, not by a platform id."""
    with bot.session() as s:
        return f"facility:{facility}:member:{member_of(s, user).id}"


def dms(bot, user="U0DEMOSS1"):
    return [c for c in bot.fake.of("chat.postMessage") if c.body["channel"] == user]


def tick(bot, instant: datetime):
    return schedule.tick(bot.runtime, instant, scheduler_sender(bot.runtime, bot.app.client))


def test_run_due_sends_the_freshness_prompt_once(bot, run_due):
    assert "0 sent" in run_due("2026-11-25T08:30+09:00")  # figures still fresh
    out = run_due("2026-11-26T08:30+09:00")
    assert "1 sent" in out and f"vacancy.freshness/{prompt_subject(bot)}/2026-11-26" in out
    (dm,) = dms(bot)
    assert "特養 あおば苑" in dm.text() and "変わりなし" in dm.text() and "更新する" in dm.text()
    # the same instant again, and a minute later: nothing new
    assert "0 sent" in run_due("2026-11-26T08:30+09:00")
    assert "0 sent" in run_due("2026-11-26T08:31+09:00")
    assert len(dms(bot)) == 1
    subject = prompt_subject(bot)
    with bot.session() as s:
        row = s.exec(select(Delivery)).one()
        assert (row.kind, row.subject, row.slot, row.status, row.attempts) == (
            "vacancy.freshness", subject, "2026-11-26", "sent", 1)


def test_unchanged_button_confirms_and_stops_the_prompts(bot):
    tick(bot, at("2026-11-26T08:30"))
    dm = bot.fake.wait_for("chat.postMessage")[-1]
    bot.clock.set(at("2026-11-26T08:40"))
    r = bot.sim.command("/vacancy", "東地区")
    assert "あおば苑" in r.text.split("未確認")[1]  # stale before the tap
    confirm = buttons(dm.body)["vacancy_confirm"]
    bot.sim.click("vacancy_confirm", confirm["value"], user="U0DEMOSS1")
    reply = bot.responses()[-1]
    assert reply["replace_original"] is True and "変わりなし" in str(reply)
    r = bot.sim.command("/vacancy", "東地区")
    assert "あおば苑" in r.text.split("未確認")[0] and "10分前更新" not in r.text and "たった今" in r.text
    assert tick(bot, at("2026-11-27T08:30")).sent == []


def test_update_button_opens_the_modal_for_that_facility(bot):
    tick(bot, at("2026-11-26T08:30"))
    dm = bot.fake.wait_for("chat.postMessage")[-1]
    bot.clock.set(at("2026-11-26T09:00"))
    update = buttons(dm.body)["vacancy_update"]
    bot.sim.click("vacancy_update", update["value"], user="U0DEMOSS1")
    view = bot.open_view()
    assert view["blocks"][0]["element"]["initial_option"]["value"] == update["value"]
    bot.sim.submit(view, {"facility": update["value"], "beds": "0", "first": "2026-11-26", "last": "2026-11-30",
                          "sex": "どちらでも"}, user="U0DEMOSS1")
    assert "満床" in bot.fake.wait_for("chat.postMessage", count=2)[-1].text()
    # someone else cannot use the button to change the figures
    bot.sim.click("vacancy_update", update["value"], user="U0DEMOCM1")
    assert "担当者" in str(bot.responses()[-1])


def test_no_prompt_on_a_holiday_or_the_new_year_break(bot):
    bot.clock.set(at("2026-12-20T10:00"))
    bot.sim.command("/vacancy", "set あおば 2 12/28-1/12", user="U0DEMOSS1")
    assert holiday_free(bot, "2026-12-30T08:30") and holiday_free(bot, "2027-01-01T09:00")
    assert holiday_free(bot, "2027-01-11T08:30")  # 成人の日
    assert len(tick(bot, at("2027-01-04T08:30")).sent) == 1  # first working day


def holiday_free(bot, instant: str) -> bool:
    return tick(bot, at(instant)).sent == [] and dms(bot) == []


def test_missed_slot_is_sent_late_within_grace_and_skipped_after(bot, caplog):
    assert len(tick(bot, at("2026-11-26T15:00")).sent) == 1  # 6.5 h late, grace 12 h: still useful
    caplog.set_level("INFO", logger="bot.schedule")
    report = tick(bot, at("2026-11-27T21:00"))  # the 11/27 slot is 12.5 h late
    assert report.sent == [] and report.skipped == [f"vacancy.freshness/{prompt_subject(bot)}/2026-11-27"]
    assert f"skipped vacancy.freshness/{prompt_subject(bot)}/2026-11-27" in caplog.text
    with bot.session() as s:
        assert s.exec(select(Delivery).where(Delivery.slot == "2026-11-27")).one().status == "skipped"
    assert len(dms(bot)) == 1


def test_quiet_hours_hold_a_late_prompt(bot):
    bot.runtime.settings.team.schedule.late_grace_hours = 24
    report = tick(bot, at("2026-11-26T22:00"))
    assert report.sent == [] and report.deferred
    assert len(tick(bot, at("2026-11-27T07:05")).sent) == 1  # quiet hours over, 22.5 h late < 24 h


def test_failed_send_is_retried_on_a_later_tick(bot):
    bot.fake.fail("chat.postMessage")
    assert len(tick(bot, at("2026-11-26T08:30")).failed) == 1
    with bot.session() as s:
        row = s.exec(select(Delivery)).one()
        assert (row.status, row.attempts, row.last_error) == ("failed", 1, "SendError: internal_error")
    assert tick(bot, at("2026-11-26T08:30")).sent == []  # same instant: not yet
    assert len(tick(bot, at("2026-11-26T08:32")).sent) == 1
    with bot.session() as s:
        row = s.exec(select(Delivery)).one()
        assert (row.status, row.attempts) == ("sent", 2)
    assert len(dms(bot)) == 1


def test_a_sends_record_does_not_wait_for_the_disk_and_the_connection_waits_again_after(bot):
    """The record of a send commits without waiting for the disk (a lost one
    leaves the row pending for the lease and the history check); its claim,
    and every later use of the connection, still waits."""
    from sqlalchemy import event

    engine, sqlite = bot.runtime.engine, bot.runtime.engine.dialect.name == "sqlite"
    seen: list[tuple[str, object]] = []
    used = {}

    def durability(dbapi_conn):
        if sqlite:
            return dbapi_conn.execute("PRAGMA synchronous").fetchone()[0]
        with dbapi_conn.cursor() as cur:
            cur.execute("SHOW synchronous_commit")
            return cur.fetchone()[0]

    def watch(conn, cursor, statement, *_):
        if re.match(r"(INSERT INTO|UPDATE) delivery ", statement) and "'skipped'" not in str(_):
            used[id(cursor.connection)] = cursor.connection
            # On PostgreSQL the setting is in the statement, for its own transaction.
            seen.append((statement.split()[0], durability(cursor.connection) if sqlite else "set_config(" in statement))

    event.listen(engine, "before_cursor_execute", watch)
    try:
        assert len(tick(bot, at("2026-11-26T08:30")).sent) == 1
    finally:
        event.remove(engine, "before_cursor_execute", watch)
    # the claim waits (FULL), the record does not (NORMAL)
    assert seen[-2:] == ([("INSERT", 2), ("UPDATE", 1)] if sqlite else [("INSERT", False), ("UPDATE", True)])
    for dbapi_conn in used.values():
        assert durability(dbapi_conn) in (2, "on")
        if not sqlite:
            dbapi_conn.rollback()
    with bot.session() as s:
        assert s.exec(select(Delivery).where(Delivery.status == "sent")).one()


def test_delivery_rows_are_read_once_as_settled_or_still_claimable(bot):
    from bot import delivery

    rows = {"sent": ("sent", 1), "skipped": ("skipped", 0), "given-up": ("failed", delivery.MAX_ATTEMPTS),
            "retry": ("failed", 1), "in-flight": ("pending", 1),
            "last-try": ("pending", delivery.MAX_ATTEMPTS)}  # a lease may still take it over
    with bot.session() as s:
        for subject, (status, attempts) in rows.items():
            s.add(Delivery(kind="k", subject=subject, slot="1", status=status, attempts=attempts,
                           created_at=at("2026-11-26T08:00"), claimed_at=at("2026-11-26T08:00")))
        s.add(Delivery(kind="other", subject="sent", slot="2", status="sent", attempts=1,
                       created_at=at("2026-11-26T08:00"), claimed_at=at("2026-11-26T08:00")))
        s.commit()
        keys = [(subject, "1") for subject in rows] + [("never", "1"), ("sent", "2")]
        assert delivery.settled(s, "k", keys) == {
            ("sent", "1"): True, ("skipped", "1"): True, ("given-up", "1"): True,
            ("retry", "1"): False, ("in-flight", "1"): False, ("last-try", "1"): False}


def test_a_later_tick_finds_a_sent_prompt_settled_without_claiming_it_again(bot, monkeypatch):
    assert len(tick(bot, at("2026-11-26T08:30")).sent) == 1
    claims = []

    def send_each(engine, messages, *rest):
        claims.extend(messages)
        yield from ()

    monkeypatch.setattr(schedule, "send_each", send_each)
    report = tick(bot, at("2026-11-26T08:31"))
    assert report.sent == [] and report.taken == [f"vacancy.freshness/{prompt_subject(bot)}/2026-11-26"]
    assert claims == []
    assert len(dms(bot)) == 1


def test_a_prompt_is_read_when_sent_and_not_again_by_the_ticks_that_follow(bot, monkeypatch):
    """Every minute's tick finds the same stale facilities; what a prompt
    shows (the facility, its nights) is read only for a prompt being sent,
    once per facility, not for each facility every minute."""
    from bot.vacancy import figures

    read = []
    real = figures.upcoming
    monkeypatch.setattr(figures, "upcoming", lambda s, facility_id, *a, **k: read.append(facility_id)
                        or real(s, facility_id, *a, **k))
    assert len(tick(bot, at("2026-11-26T08:30")).sent) == 1  # あおば苑's one staff member
    assert read == [1]  # みなと and ひまわり are stale too, but have no staff to prompt
    read.clear()
    later = tick(bot, at("2026-11-26T08:31"))
    assert later.sent == [] and later.taken == [f"vacancy.freshness/{prompt_subject(bot)}/2026-11-26"]
    assert read == []


def test_staff_changed_after_a_tick_are_prompted_by_the_next_one(bot):
    """Each facility's staff are kept per process for the ticks
    (bot.vacancy.jobs); a change through `/vacancy staff` is seen at once."""
    prompt = "vacancy.freshness/{}/{}".format
    assert tick(bot, at("2026-11-26T08:30")).sent == [prompt(prompt_subject(bot), "2026-11-26")]
    bot.clock.set(at("2026-11-26T08:40"))
    added = bot.sim.command("/vacancy", "staff あおば苑 add <@U0DEMONS1|suzuki>", user="U0DEMOADM")
    assert "追加" in added.text, added.text
    # the new staff member gets that morning's prompt; the one already told does not again
    assert tick(bot, at("2026-11-26T08:41")).sent == [prompt(prompt_subject(bot, "U0DEMONS1"), "2026-11-26")]
    (dm,) = dms(bot, "U0DEMONS1")
    assert "特養 あおば苑" in dm.text() and "変わりなし" in dm.text()
    bot.clock.set(at("2026-11-26T09:00"))
    removed = bot.sim.command("/vacancy", "staff あおば苑 remove <@U0DEMOSS1|sato>", user="U0DEMOADM")
    assert "外し" in removed.text or "削除" in removed.text, removed.text
    assert tick(bot, at("2026-11-27T08:30")).sent == [prompt(prompt_subject(bot, "U0DEMONS1"), "2026-11-27")]
    assert len(dms(bot, "U0DEMOSS1")) == 1  # the removed member: only the first morning's


def test_two_processes_racing_the_same_tick_send_once(bot):
    with bot.session() as s:  # more recipients: staff for every facility
        for user in ("U0DEMONS1", "U0DEMODR1"):
            member = member_of(s, user)
            for facility in s.exec(select(Facility)).all():
                s.add(FacilityStaff(facility_id=facility.id, member_id=member.id))
    sent = race_ticks(bot, at("2026-11-26T08:30"), lambda post: (post.dm_to, post.values["facility"]["id"]))
    # all three facilities are stale by then: あおば苑 has 3 staff, みなと and ひまわり 2 each
    assert sorted(sent) == sorted(set(sent)) and len(sent) == 7
    with bot.session() as s:
        rows = s.exec(select(Delivery).where(Delivery.slot == "2026-11-26")).all()
        assert len(rows) == 7 and {(r.status, r.attempts) for r in rows} == {("sent", 1)}
        # earlier mornings nobody ticked on (the "downtime") are recorded as skipped, not sent
        assert {r.status for r in s.exec(select(Delivery).where(Delivery.slot != "2026-11-26"))} == {"skipped"}


def test_two_real_processes_running_due_at_once_send_each_prompt_once(bot):
    """Two `renkei jobs run-due` processes against one database at the same instant."""
    import os
    import subprocess
    import sys

    with bot.session() as s:
        member = member_of(s, "U0DEMONS1")
        for facility in s.exec(select(Facility)).all():
            s.add(FacilityStaff(facility_id=facility.id, member_id=member.id))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RENKEI_"))}
    env.update({"RENKEI_DATABASE_URL": bot.runtime.engine.url.render_as_string(hide_password=False),
                "RENKEI_CONFIG": str(ROOT / "config"), "SLACK_BOT_TOKEN": "xoxb-test",
                "RENKEI_SLACK_API_URL": bot.fake.api_url})
    command = [sys.executable, "-m", "bot.cli", "jobs", "run-due", "--at", "2026-11-26T08:30+09:00"]
    procs = [subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    prompts = [(c.body["channel"], c.text()) for c in bot.fake.of("chat.postMessage")]
    recipients = [channel for channel, _ in prompts]
    # あおば苑: 伊藤 + 鈴木; みなと and ひまわり: 鈴木 → four DMs, none twice
    assert len(prompts) == 4 and len(set(prompts)) == 4
    assert sorted(recipients) == ["U0DEMONS1", "U0DEMONS1", "U0DEMONS1", "U0DEMOSS1"]
