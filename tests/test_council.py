"""/council through signed requests and the scheduler tick: meetings,
answers, reminders at each offset, changes, cancellations, groups, agenda
and minutes. The demo clock is 2026-11-24 10:00 JST."""

from datetime import datetime

from sqlmodel import select

from bot import schedule
from bot.slack.deliver import scheduler_sender
from bot.store.db import session_scope
from bot.store.models import AuditEvent, Delivery, Meeting, MeetingInvite
from tests.conftest import JST, console, member_of, race_ticks


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=JST)


def buttons(message: dict) -> list[dict]:
    return [e for b in message.get("blocks", []) if b["type"] == "actions" for e in b["elements"]]


def tick(bot, instant: str):
    return schedule.tick(bot.runtime, at(instant), scheduler_sender(bot.runtime, bot.app.client))


def posts(bot, channel="C0COUNCIL"):
    bot.runtime.wait_idle()
    return [c for c in bot.fake.of("chat.postMessage") if c.body["channel"] == channel]


def organiser_answers(bot, answer: str) -> None:
    """The meeting's organiser answers, stored straight in the record (by
    another request or another process, not through this press)."""
    with session_scope(bot.runtime.engine) as s:
        meeting = s.exec(select(Meeting)).one()
        invite = s.exec(select(MeetingInvite).where(MeetingInvite.meeting_id == meeting.id,
                                                    MeetingInvite.member_id == meeting.organiser_id)).one()
        invite.answer = answer
        s.add(invite)


def add_meeting(bot, text="12/15(火) 18:30-20:00 第3回 推進協議会 place=市役所3階 <@U0DEMONS1> <@U0DEMODR1>"):
    r = bot.sim.command("/council", f"add {text}", channel="C0COUNCIL")
    assert "会議を登録しました" in r.text, r.text
    return posts(bot)[-1]


def test_add_announces_with_answer_buttons_and_is_found_by_a_forgiving_search(bot):
    post = add_meeting(bot)
    assert [b["text"]["text"] for b in buttons(post.body)] == ["出席", "欠席", "オンライン", "未定"]
    assert "12/15(火) 18:30〜20:00" in post.text() and "<@" not in post.text()  # nobody is mentioned
    assert "第3回 推進協議会" in bot.sim.command("/council").text
    for query in ("第3回", "第３回", "12/15", "１２月１５日", "協議会"):
        r = bot.sim.command("/council", query)
        assert "市役所3階" in r.text and "鈴木 看護師" not in r.text.replace("<@U0DEMONS1>", ""), query
    with bot.session() as s:
        meeting = s.exec(select(Meeting)).one()
        assert meeting.starts_at == at("2026-12-15T18:30") and meeting.ends_at == at("2026-12-15T20:00")
        assert len(s.exec(select(MeetingInvite)).all()) == 3  # the organiser and two invitees


def test_answers_change_until_the_start_and_the_counts_stay_current(bot):
    post = add_meeting(bot)
    attend, absent = buttons(post.body)[0], buttons(post.body)[1]
    bot.sim.click(attend["action_id"], attend["value"], user="U0DEMONS1", channel="C0COUNCIL")
    bot.sim.click(attend["action_id"], attend["value"], user="U0DEMONS1", channel="C0COUNCIL")  # a double tap
    assert "回答は「出席」のままです" in str(bot.responses()[-1])  # changed nothing, and said so
    with bot.session() as s:
        assert len(s.exec(select(AuditEvent).where(AuditEvent.action == "meeting.answer")).all()) == 1
    updated = bot.fake.wait_for("chat.update")[-1].body
    assert "出席 1" in str(updated)
    bot.sim.click(absent["action_id"], absent["value"], user="U0DEMONS1", channel="C0COUNCIL", message_ts="1.2")
    assert "「欠席」で回答しました" in str(bot.responses()[-1])
    bot.sim.click(attend["action_id"], attend["value"], user="U0DEMOPH1", channel="C0COUNCIL")
    assert "招待されていません" in str(bot.responses()[-1])
    r = bot.sim.command("/council", "show 第3回")
    assert "欠席" in r.text and "未回答" in r.text
    bot.clock.set(at("2026-12-15T18:31"))
    bot.sim.click(attend["action_id"], attend["value"], user="U0DEMODR1", channel="C0COUNCIL", message_ts="1.3")
    assert "すでに始まっている" in str(bot.responses()[-1])
    with bot.session() as s:
        answers = {member_of(s, u).id: None for u in ("U0DEMONS1",)}
        invite = s.exec(select(MeetingInvite).where(MeetingInvite.member_id == list(answers)[0])).one()
        assert invite.answer == "欠席"


def test_a_press_is_acknowledged_before_the_message_is_redrawn_and_two_quick_presses_land_in_order(bot):
    """Redrawing the pressed message (chat.update) and answering the
    presser (response_url) are Slack round trips: they come after the ack,
    in press order, so the later press is what the message shows."""
    import time

    post = add_meeting(bot)
    attend, absent = buttons(post.body)[0], buttons(post.body)[1]
    bot.fake.update_delay = 0.4
    before = len(bot.fake.of("chat.update"))
    t0 = time.perf_counter()
    first = bot.sim.click(attend["action_id"], attend["value"], user="U0DEMONS1", channel="C0COUNCIL", settle=False)
    second = bot.sim.click(absent["action_id"], absent["value"], user="U0DEMONS1", channel="C0COUNCIL", settle=False)
    acked = time.perf_counter() - t0
    assert first.status == second.status == 200 and acked < 0.4, acked  # neither waited for a redraw
    bot.runtime.wait_lanes()
    updates = [str(c.body) for c in bot.fake.of("chat.update")[before:]]
    # Each press asks for two redraws of this message (as pressed, and as the channel's announcement);
    # one still waiting when a newer one comes is dropped, so the last drawn is the later press.
    assert 2 <= len(updates) <= 4 and "欠席 1" in updates[-1] and "出席 1" not in updates[-1]
    assert ["「出席」" in str(r) for r in bot.responses()[-2:]] == [True, False]
    assert "「欠席」で回答しました" in str(bot.responses()[-1])


def test_a_redraw_shows_the_answers_stored_when_it_is_sent_not_when_the_button_was_pressed(bot):
    """Two answers whose transactions overlap each read the counts before
    the other committed; drawn at the press, the redraw that landed last
    showed one answer too few until the next press."""
    post = add_meeting(bot)
    attend = buttons(post.body)[0]
    bot.fake.update_delay = 0.4
    before = len(bot.fake.of("chat.update"))
    bot.sim.click(attend["action_id"], attend["value"], user="U0DEMONS1", channel="C0COUNCIL", settle=False)
    bot.sim.click(attend["action_id"], attend["value"], user="U0DEMODR1", channel="C0COUNCIL", settle=False)
    organiser_answers(bot, "出席")  # committed while that redraw waits
    bot.runtime.wait_lanes()
    updates = [str(c.body) for c in bot.fake.of("chat.update")[before:]]
    assert "出席 3" in updates[-1], updates[-1]


def test_a_press_on_the_announcement_redraws_it_once(bot):
    """The pressed message and the channel's announcement are the same
    message here: drawn and sent twice, each press cost two chat.update."""
    post = add_meeting(bot)
    attend = buttons(post.body)[0]
    before = len(bot.fake.of("chat.update"))
    bot.sim.click(attend["action_id"], attend["value"], user="U0DEMONS1", channel="C0COUNCIL",
                  message_ts=post.body["_ts"])
    bot.runtime.wait_idle()
    updates = bot.fake.of("chat.update")[before:]
    assert len(updates) == 1 and updates[0].body["ts"] == post.body["_ts"] and "出席 1" in str(updates[0].body)


def test_a_press_is_answered_at_once_while_posts_wait_for_a_slow_slack(bot):
    """Posts to channels (paced, here slow) have their own threads: an answer
    to a press does not queue behind them."""
    import time

    post = add_meeting(bot)
    attend = buttons(post.body)[0]
    bot.runtime.wait_idle()
    bot.fake.post_delay = 1.0
    for i in range(6):  # six notes posted to the team channel: the posting threads busy for a while
        assert "登録しました" in bot.sim.command("/liaison", f"山田 体温37.{i}度").text
    before = len(bot.fake.of("response_url"))
    t0 = time.perf_counter()
    bot.sim.click(attend["action_id"], attend["value"], user="U0DEMONS1", channel="C0COUNCIL")  # settles its lanes
    assert len(bot.fake.of("response_url")) == before + 1 and time.perf_counter() - t0 < 0.8
    assert "「出席」" in str(bot.responses()[-1])


def test_reminders_at_each_offset_go_once_and_only_to_those_who_have_not_answered(bot):
    post = add_meeting(bot)
    bot.sim.command("/council", "agenda 第3回 add 連携シートの改訂", user="U0DEMONS1")
    attend = buttons(post.body)[0]
    bot.sim.click(attend["action_id"], attend["value"], user="U0DEMONS1", channel="C0COUNCIL")
    bot.fake.clear()
    assert tick(bot, "2026-12-08T18:29").sent == []
    week = tick(bot, "2026-12-08T18:30")
    assert week.sent == ["meeting.reminder/meeting:1/2026-12-15T09:30:00+00:00/7d"]  # the channel only
    assert tick(bot, "2026-12-08T18:31").sent == []  # once
    day = tick(bot, "2026-12-14T18:30")
    dm_to = {c.body["channel"] for c in bot.fake.of("chat.postMessage")}
    assert "U0DEMODR1" in dm_to and "U0DEMONS1" not in dm_to  # the doctor has not answered
    assert any("まだ回答していない方が" in c.text() for c in bot.fake.of("chat.postMessage")
               if c.body["channel"] == "U0DEMOCM1")  # the organiser's list
    channel_posts = posts(bot)
    assert "連携シートの改訂" in channel_posts[-1].text()  # the day before carries the agenda
    assert all("<@" not in c.body["text"] for c in channel_posts)  # nobody is mentioned in the channel
    assert len(day.sent) >= 3
    two_hours = tick(bot, "2026-12-15T16:30")
    assert any(n.endswith("/2h") for n in two_hours.sent)


def test_a_reminder_is_built_once_when_sent_and_not_again_by_the_ticks_that_follow(bot, monkeypatch):
    """Every minute's tick finds the same meetings ahead; their reminders
    (counts, organiser, agenda) are built only for a send: once for the
    channel, every invitee and the organiser's list of who has not
    answered, not again a minute later."""
    from bot.council import messages

    add_meeting(bot)
    built = []
    real = messages.values
    monkeypatch.setattr(messages, "values", lambda *a, **k: built.append(a[1].id) or real(*a, **k))
    assert tick(bot, "2026-12-08T18:29").sent == [] and built == []
    day = tick(bot, "2026-12-14T18:30")
    assert any(name.endswith(":organiser/2026-12-15T09:30:00+00:00/1d") for name in day.sent)
    assert len(day.sent) >= 3 and built == [1]  # the channel, each invitee, the organiser: one read
    built.clear()
    assert tick(bot, "2026-12-14T18:31").sent == [] and built == []


def test_a_meeting_on_a_holiday_is_reminded_and_quiet_hours_wait_for_the_morning(bot):
    # 2027-01-11 is 成人の日; a 08:00 meeting's 2h reminder falls at 06:00, in quiet hours.
    add_meeting(bot, "2027/1/11 8:00 新年の部会 remind=1d,2h")
    assert any(n.endswith("/1d") for n in tick(bot, "2027-01-10T08:00").sent)
    assert tick(bot, "2027-01-11T06:00").deferred and not tick(bot, "2027-01-11T06:30").sent
    assert any(n.endswith("/2h") for n in tick(bot, "2027-01-11T07:00").sent)


def test_a_reminder_missed_while_down_is_sent_late_before_the_start_and_skipped_after(bot):
    add_meeting(bot, "12/15 18:30 第3回 推進協議会 remind=1d,2h <@U0DEMONS1>")
    late = tick(bot, "2026-12-15T10:00")  # the 1d reminder, 15.5 hours late: the meeting is still ahead
    assert any(n.endswith("/1d") for n in late.sent)
    after = tick(bot, "2026-12-15T18:45")  # the 2h reminder, missed until the meeting began
    assert after.sent == [] and any(n.endswith("/2h") for n in after.skipped)


def test_moving_a_meeting_resets_answers_tells_those_who_answered_and_old_slots_never_fire(bot):
    post = add_meeting(bot)
    attend = buttons(post.body)[0]
    bot.sim.click(attend["action_id"], attend["value"], user="U0DEMONS1", channel="C0COUNCIL")
    bot.fake.clear()
    r = bot.sim.command("/council", "edit 第3回 12/16 19:00")
    assert "回答をリセット" in r.text
    told = [c for c in posts(bot, "U0DEMONS1")]
    assert len(told) == 1 and "変更されました" in told[0].text() and "12/16(水) 19:00〜20:30" in told[0].text()
    assert tick(bot, "2026-12-08T18:30").sent == []  # the old 7d slot
    assert any(n.endswith("/7d") for n in tick(bot, "2026-12-09T19:00").sent)
    r = bot.sim.command("/council", "edit 第3回 place=別館", user="U0DEMONS1")
    assert "主催の方と管理者だけ" in r.text
    with bot.session() as s:
        assert all(i.answer is None for i in s.exec(select(MeetingInvite)))
        assert s.exec(select(Meeting)).one().sequence == 1


def test_cancelling_sends_one_notice_and_no_further_reminders(bot):
    post = add_meeting(bot)
    attend = buttons(post.body)[0]
    bot.sim.click(attend["action_id"], attend["value"], user="U0DEMONS1", channel="C0COUNCIL")
    bot.fake.clear()
    r = bot.sim.command("/council", "cancel 第3回")
    assert "中止にしました" in r.text
    bot.runtime.wait_idle()
    assert [c.text() for c in posts(bot, "U0DEMONS1")][0].count("中止") >= 1
    assert sum("は中止になりました" in c.text() for c in posts(bot)) == 1
    assert tick(bot, "2026-12-08T18:30").sent == [] and tick(bot, "2026-12-14T18:30").sent == []
    bot.sim.click(attend["action_id"], attend["value"], user="U0DEMODR1", channel="C0COUNCIL", message_ts="9.9")
    assert "中止になっています" in str(bot.responses()[-1])


def test_bad_input_gets_a_clear_answer_and_nothing_is_stored(bot):
    for text, words in [("add 2/30 10:00 会議", "という日付はありません"), ("add 12/20 25:00 会議", "という時刻はありません"),
                        ("add 12/20 18:30-17:00 会議", "終わりの時刻が始まりより前"), ("add 11/20 10:00 会議", "すでに過ぎています"),
                        ("add 12/20 10:00", "件名を入れてください"), ("add 12/20 10:00 会議 remind=7x", "読み取れません"),
                        ("add 12/20 10:00 会議 invite=ない", "というグループはありません"), ("show 宇宙会議", "見つかりませんでした")]:
        assert words in bot.sim.command("/council", text).text, text
    with bot.session() as s:
        assert s.exec(select(Meeting)).all() == []


def test_groups_invite_their_members_and_minutes_are_kept(bot):
    r = bot.sim.command("/council", "group add 推進協議会委員 <@U0DEMONS1> <@U0DEMODR1>")
    assert "推進協議会委員" in r.text
    add_meeting(bot, "12/20 10時 部会 invite=推進協議会委員")
    with bot.session() as s:
        assert len(s.exec(select(MeetingInvite)).all()) == 3
    bot.sim.command("/council", "minutes 部会", user="U0DEMONS1")
    assert not bot.fake.of("views.open")  # only the organiser and admins
    bot.sim.command("/council", "minutes 部会")
    view = bot.open_view()
    bot.sim.submit(view, {"minutes": "連携シートを議論した", "decisions": "連携シートを改訂する\n次回は2月"})
    r = bot.sim.command("/council", "部会")
    assert "連携シートを議論した" in r.text and "2. 次回は2月" in r.text
    with bot.session() as s:
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "meeting.add")).one()
        assert s.exec(select(Delivery).where(Delivery.kind == "meeting.reminder")).all() == []


def test_two_processes_ticking_at_once_send_each_reminder_once(bot):
    add_meeting(bot)
    sent = race_ticks(bot, at("2026-12-14T18:30"), lambda post: (str(post.place), post.dm_to, post.template))
    # the channel, two invitees and the organiser have not answered: 4 DMs, 1 channel post, 1 organiser list
    assert len(sent) == len(set(sent)) == 5
    with bot.session() as s:
        rows = s.exec(select(Delivery).where(Delivery.kind == "meeting.reminder", Delivery.status == "sent")).all()
        assert len(rows) == 5


def test_the_calendar_feed_over_http_parses_back_with_a_stable_uid_and_a_rising_sequence(bot):
    import icalendar

    bot.runtime.settings.public_url = "https://renkei.example.jp"
    add_meeting(bot)
    r = bot.sim.command("/council", "ical", user="U0DEMONS1")
    url = next(w for w in r.json()["text"].split() if w.startswith("https://"))
    path = url[len("https://renkei.example.jp"):]
    first = icalendar.Calendar.from_ical(bot.sim.get(path).body)
    (event,) = first.walk("VEVENT")
    assert first["METHOD"] == "PUBLISH" and first.walk("VTIMEZONE")
    assert str(event["UID"]) == "meeting-1@renkei" and int(event["SEQUENCE"]) == 0
    assert event.decoded("DTSTART").isoformat() == "2026-12-15T18:30:00+09:00"
    bot.sim.command("/council", "edit 第3回 19:00")
    (moved,) = icalendar.Calendar.from_ical(bot.sim.get(path).body).walk("VEVENT")
    assert str(moved["UID"]) == "meeting-1@renkei" and int(moved["SEQUENCE"]) == 1
    bot.sim.command("/council", "cancel 第3回")
    (cancelled,) = icalendar.Calendar.from_ical(bot.sim.get(path).body).walk("VEVENT")
    assert str(cancelled["STATUS"]) == "CANCELLED" and str(cancelled["SUMMARY"]).startswith("【中止】")
    bot.clock.set(at("2027-01-20T10:00"))  # 30 days after the cancellation it is gone
    assert not icalendar.Calendar.from_ical(bot.sim.get(path).body).walk("VEVENT")
    # only the member's own meetings; an unknown token reveals nothing; reset revokes
    r = bot.sim.command("/council", "ical", user="U0DEMOPH1")
    other = next(w for w in r.json()["text"].split() if w.startswith("https://"))[len("https://renkei.example.jp"):]
    assert not icalendar.Calendar.from_ical(bot.sim.get(other).body).walk("VEVENT")
    missing = bot.sim.get("/calendar/not-a-token.ics")
    assert (missing.status, missing.body) == (404, b"")
    bot.sim.command("/council", "ical reset", user="U0DEMONS1")
    assert bot.sim.get(path).status == 404


def test_without_a_public_url_the_calendar_comes_as_a_file_by_dm(bot):
    add_meeting(bot)
    r = bot.sim.command("/council", "ical", user="U0DEMONS1")
    assert ".ics ファイル" in r.text
    upload = bot.fake.wait_for("file_upload")[-1].body["bytes"]
    assert "BEGIN:VCALENDAR" in upload and "第3回 推進協議会" in upload
    assert bot.fake.wait_for("files.completeUploadExternal")[-1].body["channel_id"] == "D0DEMONS1"


def test_renkei_export_ical_writes_every_meeting(bot, tmp_path, monkeypatch, capsys):
    import icalendar

    from bot.cli import main
    from tests.conftest import ROOT

    add_meeting(bot)
    add_meeting(bot, "12/20 10時 部会")
    monkeypatch.setenv("RENKEI_DATABASE_URL", bot.runtime.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("RENKEI_CONFIG", str(ROOT / "config"))
    out = tmp_path / "council.ics"
    assert main(["export", "ical", str(out)]) == 0 and "2件" in capsys.readouterr().out
    assert len(icalendar.Calendar.from_ical(out.read_bytes()).walk("VEVENT")) == 2


def test_add_without_arguments_is_a_form_with_the_same_checks(bot):
    bot.sim.command("/council", "add", channel="C0COUNCIL")
    view = bot.open_view()
    assert view["callback_id"] == "council_add_submit"
    r = bot.sim.submit(view, {"title": "第4回 協議会", "kind": "協議会", "day": "2026-12-22", "start": "25:00"})
    assert "という時刻はありません" in r.json()["errors"]["start"]
    r = bot.sim.submit(view, {"title": "第4回 協議会", "kind": "協議会", "day": "2026-11-20", "start": "18:30"})
    assert "すでに過ぎています" in r.json()["errors"]["day"]
    r = bot.sim.submit(view, {"title": "第4回 協議会", "kind": "協議会", "day": "2026-12-22", "start": "18:30",
                              "end": "20:00", "place": "市役所3階"}, view_id="V400")
    assert r.status == 200 and not r.body
    assert any("第4回 協議会" in c.text() for c in posts(bot))  # announced in the channel it was opened from
    assert any("会議を登録しました" in c.text() for c in posts(bot, "U0DEMOCM1"))  # and confirmed by DM


def test_council_reaches_the_console_too(bot):
    c, out = console(bot)
    c.handle_line("/council add 12/15 18時半 第3回 推進協議会 @U0DEMONS1")
    c.handle_line(":press 1")  # 出席 on the echoed announcement
    assert "出席 1" in out.getvalue().rsplit("「出席」で回答しました", 1)[-1]  # redrawn, drawn when shown
    c.handle_line("/council 第3回")
    text = out.getvalue()
    assert "会議を登録しました" in text and "「出席」で回答しました" in text and "佐藤 ケアマネ: 出席" in text


def test_the_invitation_list_changes_only_by_edit(bot):
    bot.sim.command("/council", "group add 委員 <@U0DEMONS1>")
    add_meeting(bot, "12/20 10時 部会 invite=委員")
    bot.sim.command("/council", "group add 委員 <@U0DEMODR1>")  # later group changes do not touch the meeting
    with bot.session() as s:
        assert len(s.exec(select(MeetingInvite)).all()) == 2
    bot.sim.command("/council", "edit 部会 <@U0DEMOPH1>")
    bot.sim.command("/council", "edit 部会 外す <@U0DEMONS1>")
    with bot.session() as s:
        invited = {i.member_id for i in s.exec(select(MeetingInvite))}
        assert invited == {member_of(s, "U0DEMOCM1").id, member_of(s, "U0DEMOPH1").id}


def test_a_decision_becomes_a_plan_task_that_remembers_its_meeting(bot):
    add_meeting(bot)
    bot.sim.command("/council", "minutes 第3回")
    bot.sim.submit(bot.open_view(), {"minutes": "議論した", "decisions": "連携シートを改訂する\n研修を2回開く"})
    r = bot.sim.command("/council", "第3回")
    decide = [b for b in buttons(r.json()) if b["action_id"].startswith("council_decide")]
    assert [b["text"]["text"] for b in decide] == ["決定1をタスクにする", "決定2をタスクにする"]
    bot.sim.click(decide[0]["action_id"], decide[0]["value"])
    assert "決定をタスクにしました" in str(bot.responses()[-1])
    bot.sim.click(decide[0]["action_id"], decide[0]["value"], message_ts="2.2")
    assert "すでにタスクになっています" in str(bot.responses()[-1])
    r = bot.sim.command("/council", "decide 第3回 研修を2回開く C owner=<@U0DEMONS1> due=2/28")
    assert "決定をタスクにしました: C" in r.text and "研修を2回開く" in r.text and "2/28(日)" in r.text
    assert "この会議から生まれたタスク" in bot.sim.command("/council", "第3回").text
    assert "会議の決定から" in bot.sim.command("/plan", "研修を2回").text and "第3回" in \
        bot.sim.command("/plan", "研修を2回").text


def test_the_day_before_a_council_the_reminder_carries_a_draft_agenda_from_the_plan(bot):
    bot.sim.command("/plan", "add F 連携シートを改訂する due=12/10")
    bot.sim.command("/plan", "add G 公開講座 due=12/31")  # after the meeting: not on the agenda
    add_meeting(bot)  # 第3回 推進協議会, 12/15, kind 協議会
    bot.fake.clear()
    tick(bot, "2026-12-14T18:30")
    text = posts(bot)[-1].text()
    assert "議題案" in text and "連携シートを改訂する" in text and "公開講座" not in text


def test_with_several_processes_an_answer_stored_by_another_during_a_redraw_is_drawn_again(db_url, fake, clock):
    """`renkei serve --processes 2`: an answer stored by the other process
    after this redraw was drawn, while its chat.update is on its way, comes
    with that process's own redraw, which may reach Slack first. This one
    reads the counts again once sent and draws them once more."""
    from tests.conftest import make_bot

    fake.clear()
    bot = make_bot(db_url, fake, clock, processes=2)
    try:
        post = add_meeting(bot)
        attend = buttons(post.body)[0]
        bot.fake.update_delay = 0.4
        before = len(bot.fake.of("chat.update"))
        bot.sim.click(attend["action_id"], attend["value"], user="U0DEMONS1", channel="C0COUNCIL",
                      message_ts=post.body["_ts"], settle=False)
        bot.fake.wait_for("chat.update", before + 1)  # drawn and on its way
        organiser_answers(bot, "出席")  # stored by the other process
        bot.runtime.wait_idle()
        updates = [str(c.body) for c in bot.fake.of("chat.update")[before:]]
        assert len(updates) == 2 and "出席 1" in updates[0] and "出席 2" in updates[-1], updates
    finally:
        bot.fake.update_delay = 0.0
        bot.runtime.background.shutdown(wait=True)
        bot.runtime.engine.dispose()
