"""/liaison through signed requests: modal, submit, channel post, privacy."""

import json

from sqlmodel import select

from bot.store.models import AuditEvent, Note, NoteAck
from tests.conftest import make_bot, statements_run, without_echo


def _post_for(bot, count=1):
    return bot.fake.wait_for("chat.postMessage", count)[count - 1]


def _open_form(bot, form_id, patient="山田", **kw):
    """/liaison <patient>, then pick the form type in the modal's first field."""
    bot.sim.command("/liaison", patient, **kw)
    view = {**bot.open_view(), "id": "V1", "hash": "h"}
    bot.sim.click("liaison_form_type", "", view=view, selected=form_id)
    return bot.fake.wait_for("views.update")[-1].body["view"]


def test_modal_opens_for_care_team_member_with_form_selector_first(bot):
    r = bot.sim.command("/liaison", "やまだ たろう")
    assert r.status == 200
    view = bot.open_view()
    assert view["callback_id"] == "liaison_submit"
    first = view["blocks"][1]
    assert first["block_id"] == "form_type" and first["dispatch_action"] is True
    titles = [o["text"]["text"] for o in first["element"]["options"]]
    assert titles == ["日常連絡", "状態変化報告", "退院時連携", "服薬・処方連絡"]


def test_changing_form_type_redraws_the_modal(bot):
    bot.sim.command("/liaison", "P-0001")
    view = {**bot.open_view(), "id": "V42", "hash": "h1"}
    bot.sim.click("liaison_form_type", "", view=view, selected="discharge")
    update = bot.fake.wait_for("views.update")[-1].body
    assert update["view_id"] == "V42"
    ids = [b.get("block_id") for b in update["view"]["blocks"]]
    assert "key_person" in ids and "adl_eating" in ids
    adl = next(b for b in update["view"]["blocks"] if b.get("block_id") == "adl_toilet")
    assert [o["value"] for o in adl["element"]["options"]] == ["自立", "見守り", "一部介助", "全介助"]


def test_submit_with_missing_and_out_of_range_fields_shows_errors_and_stores_nothing(bot):
    view = _open_form(bot, "condition")
    r = bot.sim.submit(view, {"form_type": "condition", "urgency": "緊急", "change": "x" * 2001, "temperature": "50"})
    body = r.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"observed_on", "change", "temperature"}
    assert "2000文字まで" in body["errors"]["change"]
    with bot.session() as s:
        assert s.exec(select(Note)).all() == []


def test_submit_stores_and_posts_minimal_message_with_buttons(bot):
    view = _open_form(bot, "condition", channel="C0TEAM")
    r = bot.sim.submit(view, {"form_type": "condition", "urgency": "至急", "observed_on": "2026-11-24",
                              "change": "昨夜から発熱 38.2℃", "temperature": "38.2"})
    assert r.status == 200 and r.body == b""
    post = _post_for(bot)
    assert post.body["channel"] == "C0TEAM"
    text = post.text()
    assert "P-0001" in text and "Y.T." in text and "状態変化報告" in text and "至急" in text
    assert "山田" not in text and "発熱" not in text  # no name, no body in the channel
    buttons = [e["text"]["text"] for b in post.body["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["内容を表示", "確認しました"]
    with bot.session() as s:
        note = s.exec(select(Note)).one()
        assert note.urgency == "至急" and json.loads(note.body_json)["temperature"] == 38.2
        assert note.message_id is not None  # remembered for ack updates


def test_resubmitted_view_is_stored_once(bot):
    bot.sim.command("/liaison", "山田")
    view = bot.open_view()
    values = {"form_type": "daily", "body": "訪問しました"}
    bot.sim.submit(view, values, view_id="V777")
    bot.sim.submit(view, values, view_id="V777", headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    with bot.session() as s:
        assert len(s.exec(select(Note)).all()) == 1


def test_retried_command_delivery_stores_the_quick_note_once(bot):
    first = bot.sim.command("/liaison", "山田 本日訪問、食欲あり", trigger_id="trig.same")
    again = bot.sim.command("/liaison", "山田 本日訪問、食欲あり", trigger_id="trig.same",
                            headers={"X-Slack-Retry-Num": "1"})
    assert "登録しました" in first.text and "登録済み" in again.text
    with bot.session() as s:
        assert len(s.exec(select(Note)).all()) == 1


def test_a_quick_note_is_one_insert_that_a_repeat_finds_refused(bot):
    """Stored by one INSERT ... ON CONFLICT DO NOTHING (no savepoint around
    it); the same trigger again inserts nothing and reads the row stored."""
    with statements_run(bot.runtime.engine) as statements:
        first = bot.sim.command("/liaison", "山田 本日訪問、食欲あり", trigger_id="trig.once")
        again = bot.sim.command("/liaison", "山田 本日訪問、食欲あり", trigger_id="trig.once")
    assert "登録しました" in first.text and "登録済み" in again.text, (first.text, again.text)
    inserts = [s for s in statements if s.startswith("INSERT INTO note ")]
    assert len(inserts) == 2 and all("ON CONFLICT (request_key) DO NOTHING" in s for s in inserts), inserts
    assert not [s for s in statements if s.startswith("SAVEPOINT")], statements
    bot.runtime.wait_idle()
    with bot.session() as s:
        stored = s.exec(select(Note)).one()
    assert stored.request_key.endswith("trig.once") and stored.message_id  # posted once, its message remembered


def test_quick_note_with_markup_pings_nobody(bot):
    bot.sim.command("/liaison", "山田 &lt;!channel&gt; <@U123> <https://evil.example|安全なリンク> 確認を")
    with bot.session() as s:
        note = s.exec(select(Note)).one()
    bot.sim.click("note_show", str(note.id))
    shown = json.dumps(bot.responses()[-1]["blocks"], ensure_ascii=False)
    assert "&lt;!channel&gt;" in shown and "&lt;@U123&gt;" in shown and "&lt;https://evil.example|安全なリンク&gt;" in shown
    assert "<!channel>" not in shown and "<@U123>" not in shown and "<https://" not in shown


def test_show_button_gives_full_note_to_team_and_refuses_others(bot):
    bot.sim.command("/liaison", "山田 夜間せん妄あり")
    with bot.session() as s:
        note = s.exec(select(Note)).one()
    bot.sim.click("note_show", str(note.id), user="U0DEMONS1")
    shown = bot.responses()[-1]
    assert shown["response_type"] == "ephemeral" and "夜間せん妄あり" in str(shown) and "山田 太郎" in str(shown)
    bot.sim.click("note_show", str(note.id), user="U0DEMOPH1")  # pharmacist, not on 山田's team
    refused = bot.responses()[-1]
    assert "夜間せん妄" not in str(refused) and "ケアチームの方だけ" in str(refused)
    with bot.session() as s:
        reads = s.exec(select(AuditEvent).where(AuditEvent.action == "note.read")).all()
        assert [(e.actor, e.allowed) for e in reads] == [("slack:U0DEMONS1", True), ("slack:U0DEMOPH1", False)]


def test_admin_may_read_any_note(bot):
    bot.sim.command("/liaison", "山田 連絡")
    with bot.session() as s:
        note = s.exec(select(Note)).one()
    bot.sim.click("note_show", str(note.id), user="U0DEMOADM")
    assert "連絡" in str(bot.responses()[-1]) and "ケアチームの方だけ" not in str(bot.responses()[-1])


def test_acknowledge_once_per_person_and_count_updates(bot):
    bot.sim.command("/liaison", "山田 薬の変更あり")
    _post_for(bot)
    with bot.session() as s:
        note = s.exec(select(Note)).one()
    bot.sim.click("note_ack", str(note.id), user="U0DEMONS1")
    bot.sim.click("note_ack", str(note.id), user="U0DEMONS1")
    bot.sim.click("note_ack", str(note.id), user="U0DEMODR1")
    updates = bot.fake.wait_for("chat.update", 3)
    assert "確認済み 2人" in updates[-1].text()
    assert "すでに確認済み" in str(bot.responses()[1])
    with bot.session() as s:
        assert len(s.exec(select(NoteAck)).all()) == 2


def test_list_is_ephemeral_newest_first_and_limited(bot):
    for i in range(3):
        bot.sim.command("/liaison", f"P-0001 連絡{i}")
        bot.clock.advance(minutes=5)
    r = bot.sim.command("/liaison", "山田 list 2")
    assert r.json()["response_type"] == "ephemeral"
    text = r.text
    assert text.index("連絡2") < text.index("連絡1") and "連絡0" not in text
    assert "数字" in bot.sim.command("/liaison", "山田 list たくさん").text


def test_list_shows_each_notes_author_and_acknowledgement_count(bot):
    """The counts and authors are read for the whole list at once: each
    note must still get its own."""
    bot.sim.command("/liaison", "山田 一件目")
    bot.clock.advance(minutes=5)
    bot.sim.command("/liaison", "山田 二件目", user="U0DEMODR1")
    _post_for(bot, 2)
    with bot.session() as s:
        first, second = s.exec(select(Note).order_by(Note.id)).all()
    bot.sim.click("note_ack", str(first.id), user="U0DEMONS1")
    bot.sim.click("note_ack", str(first.id), user="U0DEMODR1")
    listing = bot.sim.command("/liaison", "山田 list").json()["text"]
    line_of = {word: next(line for line in listing.splitlines() if word in line) for word in ("一件目", "二件目")}
    assert "<@U0DEMOCM1>" in line_of["一件目"] and "（確認2）" in line_of["一件目"], listing
    assert "<@U0DEMODR1>" in line_of["二件目"] and "（確認0）" in line_of["二件目"], listing


def test_non_team_member_cannot_write_or_list_and_learns_nothing(bot):
    for text in ("小林 発熱あり", "小林 list", "P-0003 訪問"):
        r = bot.sim.command("/liaison", text, user="U0DEMOCM1")
        assert "見つかりませんでした" in r.text and "ケアチームに入っていない方は表示されません" in r.text
        assert "P-0003" not in without_echo(r.text) and "小林" not in without_echo(r.text)
    with bot.session() as s:
        assert s.exec(select(Note)).all() == []
        refused = s.exec(select(AuditEvent).where(AuditEvent.action == "patient.lookup")).all()
        assert {(e.patient_code, e.allowed) for e in refused} == {("P-0003", False)}


def test_withdrawn_consent_blocks_new_notes_and_says_why(bot):
    r = bot.sim.command("/liaison", "小林 発熱あり", user="U0DEMONS1")
    assert "同意" in r.text
    with bot.session() as s:
        assert s.exec(select(Note)).all() == []


def test_too_long_quick_note_is_not_lost_the_form_opens_with_it(bot):
    r = bot.sim.command("/liaison", "山田 " + "あ" * 2100)
    assert "2000文字まで" in r.text and "2100" in r.text and "本文を入れたままフォームを開きました" in r.text
    body = next(b for b in bot.open_view()["blocks"] if b.get("block_id") == "body")
    assert body["element"]["initial_value"] == "あ" * 2100
    with bot.session() as s:
        assert s.exec(select(Note)).all() == []


def test_unknown_patient_suggests_closest(bot):
    r = bot.sim.command("/liaison", "山口 太郎 発熱")
    assert "見つかりません" in r.text or "どの方" in r.text
    assert "P-0001" in r.text


def test_no_argument_gives_usage(bot):
    r = bot.sim.command("/liaison", "")
    assert "/liaison 対象者" in r.text


def test_patient_channel_setting_routes_the_post(bot):
    bot.sim.command("/patient", "channel 山田 <#C0YAMADA|yamada-team>")
    bot.sim.command("/liaison", "山田 本日訪問", channel="C0OTHER")
    assert _post_for(bot).body["channel"] == "C0YAMADA"


def test_full_channel_detail_posts_the_body(db_url, fake, clock):
    from bot.settings import TeamConfig

    fake.clear()
    team = TeamConfig.model_validate({"privacy": {"channel_detail": "full"}})
    bot = make_bot(db_url, fake, clock, team=team)
    try:
        bot.sim.command("/liaison", "山田 食欲が戻りました")
        assert "食欲が戻りました" in _post_for(bot).text()
    finally:
        bot.runtime.background.shutdown(wait=True)
        bot.runtime.engine.dispose()


def test_bad_signature_gets_401_and_stores_nothing(bot):
    r = bot.sim.command("/liaison", "山田 偽物", signature="v0=deadbeef")
    assert r.status == 401
    r = bot.sim.command("/liaison", "山田 古い", timestamp=1_000_000_000)
    assert r.status == 401
    with bot.session() as s:
        assert s.exec(select(Note)).all() == []


def test_database_down_tells_user_to_retry_and_keeps_nothing(bot, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from bot.liaison import notes

    def broken_audit(*a, **k):
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(notes, "audit", broken_audit)
    r = bot.sim.command("/liaison", "山田 途中で落ちる")
    assert "データベース" in r.text and "もう一度" in r.text
    with bot.session() as s:
        assert s.exec(select(Note)).all() == []  # the note insert was rolled back


def test_healthz_and_a_dead_database(bot):
    from bot.store.db import make_engine

    assert bot.sim.get("/healthz").status == 200
    live = bot.runtime.engine
    bot.runtime.engine = make_engine("postgresql://postgres@127.0.0.1:9/nowhere")  # nothing listens there
    try:
        assert bot.sim.get("/healthz").status == 503
        r = bot.sim.command("/liaison", "山田 つながらない")
        assert r.status == 200 and "データベースにつながらない" in r.text
    finally:
        bot.runtime.engine = live
    with bot.session() as s:
        assert s.exec(select(Note)).all() == []


def test_failed_channel_post_keeps_the_note_and_tells_the_author(bot):
    bot.fake.fail("chat.postMessage", "not_in_channel")
    r = bot.sim.command("/liaison", "山田 夕方に再訪", channel="C0PRIVATE")
    assert "登録しました" in r.text
    dm = bot.fake.wait_for("chat.postMessage")[-1]
    assert dm.body["channel"] == "U0DEMOCM1" and "招待" in dm.text() and "P-0001" in dm.text()
    with bot.session() as s:
        assert len(s.exec(select(Note)).all()) == 1


def test_a_note_post_that_failed_is_retried_by_the_tick_exactly_once(bot):
    from bot import schedule
    from bot.slack.deliver import scheduler_sender
    from bot.store.models import Delivery

    bot.fake.fail("chat.postMessage", "internal_error")
    bot.sim.command("/liaison", "山田 褥瘡の処置を変更", channel="C0TEAM")
    with bot.session() as s:
        row = s.exec(select(Delivery).where(Delivery.kind == "note.post")).one()
        assert (row.status, row.attempts) == ("failed", 1)
    bot.fake.clear()
    send = scheduler_sender(bot.runtime, bot.app.client)
    bot.clock.advance(minutes=2)
    report = schedule.tick(bot.runtime, bot.clock(), send)
    assert report.sent == ["note.post/note:1/post"]
    posts = [c for c in bot.fake.of("chat.postMessage") if c.body["channel"] == "C0TEAM"]
    assert len(posts) == 1 and "P-0001" in posts[0].text()
    bot.clock.advance(minutes=2)
    assert schedule.tick(bot.runtime, bot.clock(), send).sent == []
    with bot.session() as s:
        assert s.exec(select(Note)).one().message_id is not None


def test_a_note_whose_post_never_ran_is_posted_by_the_tick(bot):
    """The process died between storing the note and posting it."""
    from bot import schedule
    from bot.slack.deliver import scheduler_sender

    bot.runtime.after = lambda fn, **lane: None  # the background post never happens
    r = bot.sim.command("/liaison", "山田 夜間の転倒なし", channel="C0TEAM")
    assert "登録しました" in r.text
    assert bot.fake.of("chat.postMessage") == []
    bot.clock.advance(minutes=3)
    schedule.tick(bot.runtime, bot.clock(), scheduler_sender(bot.runtime, bot.app.client))
    (post,) = bot.fake.of("chat.postMessage")
    assert post.body["channel"] == "C0TEAM" and "夜間" not in post.text()


def test_choosing_a_patient_twice_from_the_same_list_stores_one_note(bot):
    bot.sim.command("/patient", "add 山田 花子 やまだ はなこ")
    r = bot.sim.command("/liaison", "山田 本日訪問")
    (button, _) = [e for b in r.json()["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert json.loads(button["value"])["text"] == "P-0001 本日訪問"
    bot.sim.click(button["action_id"], button["value"], message_ts="1800000000.000777")
    bot.sim.click(button["action_id"], button["value"], message_ts="1800000000.000777")
    with bot.session() as s:
        assert len(s.exec(select(Note)).all()) == 1
    assert "登録済み" in str(bot.responses()[-1])


def test_times_are_shown_in_the_configured_timezone(db_url, fake, clock):
    fake.clear()
    bot = make_bot(db_url, fake, clock, timezone="UTC")
    try:
        bot.sim.command("/liaison", "山田 記録")
        listing = bot.sim.command("/liaison", "山田 list").json()["text"]
        assert "11/24(火) 01:00" in listing  # 10:00 in Tokyo is 01:00 UTC
    finally:
        bot.runtime.background.shutdown(wait=True)
        bot.runtime.engine.dispose()
    tokyo = make_bot(db_url, fake, clock)  # and back: the zone follows the deployment's settings
    try:
        assert "11/24(火) 10:00" in tokyo.sim.command("/liaison", "山田 list").json()["text"]
    finally:
        tokyo.runtime.background.shutdown(wait=True)
        tokyo.runtime.engine.dispose()


def test_a_form_refused_on_submit_says_why_on_the_field(bot):
    bot.sim.command("/liaison", "山田")
    view = bot.open_view()
    r = bot.sim.submit(view, {"form_type": "daily", "body": "訪問しました"}, user="U0DEMOPH1")  # not on the team
    assert "P-0001 のケアチームの方だけが行えます" in r.json()["errors"]["form_type"]
    bot.sim.command("/patient", "consent 山田 no")
    r = bot.sim.submit(view, {"form_type": "daily", "body": "訪問しました"}, view_id="V2")
    assert "同意が「なし（撤回）」" in r.json()["errors"]["form_type"]
    with bot.session() as s:
        assert s.exec(select(Note)).all() == []


def test_a_help_or_subcommand_word_is_never_stored_as_a_note(bot):
    for word in ("help", "ヘルプ", "edit", "削除", "訂正"):
        r = bot.sim.command("/liaison", f"山田 {word}")
        assert "/liaison の使い方" in r.text, word
    assert "何も保存していません" in bot.sim.command("/liaison", "山田 edit").text
    with bot.session() as s:
        assert s.exec(select(Note)).all() == []
    assert not bot.fake.of("chat.postMessage")


def test_a_form_name_opens_that_form_with_the_text_in_it(bot):
    bot.sim.command("/liaison", "山田 状態変化 昨夜から発熱")
    view = bot.open_view()
    first = next(b for b in view["blocks"] if b.get("block_id") == "form_type")
    assert first["element"]["initial_option"]["value"] == "condition"
    change = next(b for b in view["blocks"] if b.get("block_id") == "change")
    assert change["element"]["initial_value"] == "昨夜から発熱"
    bot.sim.command("/liaison", "山田 退院")
    assert bot.open_view()["blocks"][1]["element"]["initial_option"]["value"] == "discharge"
    with bot.session() as s:
        assert s.exec(select(Note)).all() == []


def test_a_slack_error_opening_the_form_is_told_to_the_user(bot):
    bot.fake.fail("views.open", "expired_trigger_id")
    r = bot.sim.command("/liaison", "山田")
    assert r.status == 200 and "もう一度お試しください" in r.text and "3秒" in r.text
    bot.fake.fail("views.open", "internal_error")
    bot.sim.click("vacancy_update", "1", user="U0DEMOSS1")
    assert "internal_error" in str(bot.responses()[-1])


def _view_holding(view: dict, values: dict) -> dict:
    """The view as Slack sends it with a press: with what is typed in it."""
    state = {block_id: {"value": {"type": "plain_text_input", "value": value}} for block_id, value in values.items()}
    return {**view, "id": "V5", "hash": "h5", "state": {"values": state}}


def test_switching_the_form_type_keeps_the_main_text_and_dates_start_as_today(bot):
    bot.sim.command("/liaison", "山田")
    view = bot.open_view()
    bot.sim.click("liaison_form_type", "", view=_view_holding(view, {"body": "昨夜から37.8℃"}), selected="condition")
    switched = bot.fake.wait_for("views.update")[-1].body["view"]
    change = next(b for b in switched["blocks"] if b.get("block_id") == "change")
    observed = next(b for b in switched["blocks"] if b.get("block_id") == "observed_on")
    assert change["element"]["initial_value"] == "昨夜から37.8℃"
    assert observed["element"]["initial_date"] == "2026-11-24"


def test_an_observed_on_date_cannot_be_in_the_future(bot):
    view = _open_form(bot, "condition")
    r = bot.sim.submit(view, {"form_type": "condition", "urgency": "通常", "observed_on": "2026-11-25",
                              "change": "食欲低下"})
    assert "今日（11/24(火)）までの日付" in r.json()["errors"]["observed_on"]


def test_a_refused_form_switch_says_why(bot):
    bot.sim.command("/liaison", "山田")
    view = {**bot.open_view(), "id": "V6", "hash": "h6"}
    bot.sim.command("/patient", "consent 山田 no")
    bot.sim.click("liaison_form_type", "", view=view, selected="condition")
    pushed = bot.fake.wait_for("views.push")[-1].body["view"]
    assert "同意" in json.dumps(pushed, ensure_ascii=False)


def test_an_urgent_quick_note_calls_the_care_team_and_asks_for_an_answer(bot):
    bot.sim.command("/liaison", "山田 ！ 返信要 呼吸が苦しそうです", channel="C0TEAM")
    post = _post_for(bot)
    text = post.text()
    assert "【緊急】" in text and "<@U0DEMONS1>" in text and "<@U0DEMODR1>" in text
    assert "<@U0DEMOCM1> 緊急" not in text  # the author is not called
    assert "山田" not in text and "呼吸" not in text  # still no name and no body
    with bot.session() as s:
        note = s.exec(select(Note)).one()
        assert note.urgency == "緊急"
        assert json.loads(note.body_json) == {"body": "呼吸が苦しそうです", "reply_needed": "yes"}
    bot.sim.command("/liaison", "山田 普通の連絡")
    assert "🚨" not in _post_for(bot, 2).text()


def test_a_stored_form_is_confirmed_by_dm_saying_whether_the_team_was_told(bot):
    view = _open_form(bot, "condition", channel="C0TEAM")
    values = {"form_type": "condition", "urgency": "通常", "observed_on": "2026-11-24", "change": "食欲低下"}
    bot.sim.submit(view, values, view_id="V31")
    bot.runtime.wait_idle()
    dm = [c for c in bot.fake.of("chat.postMessage") if c.body["channel"] == "U0DEMOCM1"][-1].text()
    assert "登録しました" in dm and "に通知しました" in dm
    bot.fake.fail("chat.postMessage", "not_in_channel")
    bot.sim.submit(view, values, view_id="V32")
    bot.runtime.wait_idle()
    dm = [c for c in bot.fake.of("chat.postMessage") if c.body["channel"] == "U0DEMOCM1"][-1].text()
    assert "登録しました" in dm and "通知はできませんでした" in dm


def test_a_quick_note_does_not_claim_the_team_was_told_before_it_was(bot):
    r = bot.sim.command("/liaison", "山田 本日訪問")
    assert "に通知します" in r.text and "通知しました" not in r.text


def test_a_note_is_corrected_never_overwritten(bot):
    bot.sim.command("/liaison", "山田 体温 38.5℃", channel="C0TEAM")
    post = _post_for(bot)
    with bot.session() as s:
        note = s.exec(select(Note)).one()
    bot.sim.click("note_show", str(note.id), user="U0DEMONS1")  # a team member, not the author
    assert "訂正する" not in json.dumps(bot.responses()[-1], ensure_ascii=False)
    bot.sim.click("note_correct", str(note.id), user="U0DEMONS1")
    assert "書いた方（と管理者）だけ" in json.dumps(bot.responses()[-1], ensure_ascii=False)
    bot.sim.click("note_show", str(note.id))
    assert "訂正する" in json.dumps(bot.responses()[-1], ensure_ascii=False)
    bot.sim.click("note_correct", str(note.id))
    view = bot.open_view()
    body = next(b for b in view["blocks"] if b.get("block_id") == "body")
    assert body["element"]["initial_value"] == "体温 38.5℃"
    r = bot.sim.submit(view, {"body": "体温 37.5℃"})
    assert "correction_reason" in r.json()["errors"]  # a reason is required
    bot.sim.submit(view, {"body": "体温 37.5℃", "correction_reason": "書き間違い"}, view_id="V77")
    bot.runtime.wait_idle()
    updated = bot.fake.wait_for("chat.update")[-1].body
    assert updated["ts"] == post.body.get("ts", updated["ts"]) and "訂正あり" in json.dumps(updated, ensure_ascii=False)
    bot.sim.click("note_show", str(note.id), user="U0DEMONS1")
    shown = json.dumps(bot.responses()[-1], ensure_ascii=False)
    assert "体温 37.5℃" in shown and "訂正前" in shown and "体温 38.5℃" in shown and "書き間違い" in shown
    with bot.session() as s:
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "note.correct",
                                               AuditEvent.allowed == True)).one()  # noqa: E712


def test_an_older_redraw_that_reaches_slack_last_is_drawn_again(db_url, fake, clock):
    """Two processes on one database each redraw a note's post after an
    acknowledgement. Process A drew one acknowledgement; before its
    chat.update lands, B stores the second, draws both and sends first.
    A's older draw would stay on screen; A reads the count again after
    sending and draws once more."""
    from bot.jobs import JobEnv
    from bot.liaison.posts import announcement_when_sent
    from bot.runtime import Runtime
    from bot.store.db import session_scope
    from tests.conftest import member_of

    fake.clear()
    bot = make_bot(db_url, fake, clock, processes=2)
    other = Runtime.build(bot.runtime.settings, clock=clock)  # the second process
    try:
        bot.sim.command("/liaison", "山田 薬の変更あり")
        _post_for(bot)
        with bot.session() as s:
            note = s.exec(select(Note)).one()
            env = JobEnv(s, bot.runtime.settings, bot.runtime.forms)
            mine, theirs = announcement_when_sent(env, note), announcement_when_sent(env, note)
            nurse, doctor = member_of(s, "U0DEMONS1").id, member_of(s, "U0DEMODR1").id

        def ack(member_id):
            with session_scope(bot.runtime.engine) as s:
                s.add(NoteAck(note_id=note.id, member_id=member_id, acked_at=clock()))

        on_screen: list[int] = []

        def send_late(drawn):
            if not on_screen:  # the other process's press arrives while this update is on its way
                ack(doctor)
                other.redraw(theirs, lambda theirs_drawn: on_screen.append(theirs_drawn.values["ack_count"]))
            on_screen.append(drawn.values["ack_count"])

        ack(nurse)
        bot.runtime.redraw(mine, send_late)
        assert on_screen == [2, 1, 2]  # B's draw, A's older one, A's again: the screen ends right
        on_screen.clear()
        bot.runtime.redraw(mine, on_screen.append)
        assert len(on_screen) == 1  # nothing moved: one send, as before
    finally:
        other.engine.dispose()
        bot.runtime.background.shutdown(wait=True)
        bot.runtime.engine.dispose()
