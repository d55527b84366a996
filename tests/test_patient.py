"""/patient through signed requests."""

from sqlmodel import select

from bot.store.models import AuditEvent, CareTeamMember, Patient, PatientEvent
from tests.conftest import without_echo


def test_list_shows_only_my_patients_with_names(bot):
    r = bot.sim.command("/patient", "list")
    assert r.status == 200
    body = r.json()
    assert body["response_type"] == "ephemeral"
    assert "山田 太郎" in r.text and "髙橋 ハナ" in r.text
    assert "小林" not in r.text  # not on that care team


def test_list_all_shows_others_patients_only_to_admins(bot):
    r = bot.sim.command("/patient", "list all")
    assert "P-0001 山田 太郎" in r.text and "管理者だけ" in r.text
    for secret in ("P-0003", "K.I.", "要介護4", "同意なし"):
        assert secret not in r.text
    r = bot.sim.command("/patient", "list all", user="U0DEMOADM")
    assert "P-0003 小林 一郎" in r.text and "[同意なし]" in r.text


def test_add_with_fullwidth_options_and_kana(bot):
    r = bot.sim.command("/patient", "add 中村 花子 なかむら はなこ area＝東地区 care=要介護２ consent=はい")
    assert "P-0004" in r.text and "中村 花子" in r.text
    with bot.session() as s:
        p = s.exec(select(Patient).where(Patient.code == "P-0004")).one()
        assert (p.kana, p.care_level, p.consent, p.area) == ("ナカムラ ハナコ", "要介護2", "yes", "東地区")
        assert s.exec(select(CareTeamMember).where(CareTeamMember.patient_id == p.id)).one()


def test_add_rejects_bad_care_level_and_stores_nothing(bot):
    r = bot.sim.command("/patient", "add 中村 花子 care=要介護9 color=red")
    assert "介護度" in r.text and "color" in r.text
    with bot.session() as s:
        assert s.exec(select(Patient).where(Patient.name == "中村 花子")).first() is None


def test_add_without_arguments_opens_the_modal_and_submit_stores(bot):
    r = bot.sim.command("/patient", "add")
    assert r.status == 200
    view = bot.open_view()
    assert view["callback_id"] == "patient_add_submit"
    r = bot.sim.submit(view, {"name": "", "kana": "x"})
    assert r.json()["response_action"] == "errors" and "name" in r.json()["errors"]
    r = bot.sim.submit(view, {"name": "森 一", "kana": "もり はじめ", "care": "要介護1", "consent": "yes"})
    assert r.status == 200 and not r.body
    dm = bot.fake.wait_for("chat.postMessage")[-1]
    assert dm.body["channel"] == "U0DEMOCM1" and "森 一" in dm.text()


def test_unknown_subcommand_gives_usage(bot):
    r = bot.sim.command("/patient", "frobnicate")
    assert "frobnicate" in r.text and "/patient add" in r.text


def test_an_outsider_learns_nothing_about_someone_elses_patient(bot):
    for text in ("show こばやし", "show 小林 一郎", "show P-0003", "こばやし", "team 小林", "consent 小林 yes"):
        r = bot.sim.command("/patient", text)
        for secret in ("P-0003", "小林", "要介護4", "東地区", "同意", "鈴木"):
            assert secret not in without_echo(r.text), (text, secret)
    with bot.session() as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "patient.lookup")).all()
        assert events and all(e.patient_code == "P-0003" and not e.allowed for e in events)
        assert s.exec(select(Patient).where(Patient.code == "P-0003")).one().consent == "no"
    # the admin sees everyone
    assert "小林 一郎" in bot.sim.command("/patient", "show こばやし", user="U0DEMOADM").text


def test_team_add_and_remove_by_mention(bot):
    r = bot.sim.command("/patient", "team 山田 add <@U0NEWPT1|pt>")
    assert "追加" in r.text and "<@U0NEWPT1>" in r.text
    r = bot.sim.command("/patient", "team P-0001 remove <@U0NEWPT1>")
    assert "削除" in r.text


def test_team_change_by_an_outsider_finds_nobody_and_changes_nothing(bot):
    r = bot.sim.command("/patient", "team 小林 add <@U0DEMOCM1>", user="U0DEMOCM1")
    assert "見つかりませんでした" in r.text
    with bot.session() as s:
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "team.add")).all() == []
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "patient.lookup")).one().allowed is False


def test_end_with_outcome_and_date(bot):
    r = bot.sim.command("/patient", "end 山田 outcome=看取り date=11/20")
    assert "在宅看取り" in r.text
    with bot.session() as s:
        p = s.exec(select(Patient).where(Patient.code == "P-0001")).one()
        assert p.status == "ended" and p.outcome == "在宅看取り" and p.ended_on.isoformat() == "2026-11-20"
    r = bot.sim.command("/liaison", "山田 追加の連絡")
    assert "支援終了" in r.text


def test_end_rejects_future_date_and_unknown_outcome(bot):
    assert "未来" in bot.sim.command("/patient", "end 山田 outcome=転居 date=2026-12-31").text
    assert "outcome=" in bot.sim.command("/patient", "end 山田 outcome=宇宙").text
    assert "ありません" in bot.sim.command("/patient", "end 山田 outcome=転居 date=2/30").text
    with bot.session() as s:
        assert s.exec(select(Patient).where(Patient.code == "P-0001")).one().status == "active"


def test_a_hospital_stay_is_not_the_end_of_care(bot):
    r = bot.sim.command("/patient", "end 山田 outcome=入院")
    assert "入院は支援の終了ではありません" in r.text and "/patient admit" in r.text
    r = bot.sim.command("/patient", "admit 山田 11/22 hospital=市立病院")
    assert "入院を記録しました" in r.text and "市立病院" in r.text
    assert "入院中: 11/22(日)から 市立病院" in bot.sim.command("/patient", "show 山田").text
    assert "登録しました" in bot.sim.command("/liaison", "山田 退院前カンファレンスの日程調整").text
    r = bot.sim.command("/patient", "discharge 山田 今日")
    assert "退院を記録しました" in r.text and "/liaison P-0001 退院" in r.text
    assert "入院中" not in bot.sim.command("/patient", "show 山田").text
    assert "入院中として記録されていません" in bot.sim.command("/patient", "discharge 山田").text
    with bot.session() as s:
        events = s.exec(select(PatientEvent).order_by(PatientEvent.id)).all()
        assert [(e.kind, e.on.isoformat(), e.detail) for e in events] == [
            ("admit", "2026-11-22", "市立病院"), ("discharge", "2026-11-24", "市立病院")]
        assert {a.action for a in s.exec(select(AuditEvent))} >= {"patient.admit", "patient.discharge"}


def test_a_death_word_is_asked_never_guessed(bot):
    r = bot.sim.command("/patient", "end 山田 なくなった date=11/23")
    assert "まだ記録していません" in r.text
    buttons = [e for b in r.json()["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["text"]["text"] for b in buttons] == ["在宅看取り", "病院死亡"]
    with bot.session() as s:
        assert s.exec(select(Patient).where(Patient.code == "P-0001")).one().status == "active"
    bot.sim.click(buttons[0]["action_id"], buttons[0]["value"])
    with bot.session() as s:
        p = s.exec(select(Patient).where(Patient.code == "P-0001")).one()
        assert (p.status, p.outcome, p.ended_on.isoformat()) == ("ended", "在宅看取り", "2026-11-23")


def test_an_admin_reopens_a_care_ended_by_mistake_with_a_reason(bot):
    bot.sim.command("/patient", "end 山田 outcome=転居")
    r = bot.sim.command("/patient", "reopen 山田 reason=誤って終了")
    assert "管理者だけ" in r.text
    assert "理由" in bot.sim.command("/patient", "reopen 山田", user="U0DEMOADM").text
    r = bot.sim.command("/patient", "reopen 山田 reason=誤って終了", user="U0DEMOADM")
    assert "再開しました" in r.text
    assert "登録しました" in bot.sim.command("/liaison", "山田 再開後の訪問").text
    with bot.session() as s:
        reopen = s.exec(select(AuditEvent).where(AuditEvent.action == "patient.reopen",
                                                 AuditEvent.allowed == True)).one()  # noqa: E712
        assert "誤って終了" in reopen.detail and "転居" in reopen.detail


def test_ambiguous_name_offers_buttons_that_rerun(bot):
    bot.sim.command("/patient", "add 山田 花子 やまだ はなこ")
    r = bot.sim.command("/patient", "show 山田")
    blocks = r.json()["blocks"]
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert len(buttons) == 2
    bot.sim.click(buttons[0]["action_id"], buttons[0]["value"])
    replaced = bot.responses()[-1]
    assert replaced["replace_original"] is True and "山田 太郎" in str(replaced)


def test_adding_the_same_person_again_points_at_the_existing_code(bot):
    r = bot.sim.command("/patient", "add 山田 太郎 やまだ たろう")
    assert "P-0004" in r.text and "同じ氏名の方がすでにいます: P-0001" in r.json()["text"]


def test_consent_withdrawn_and_given_again(bot):
    r = bot.sim.command("/patient", "consent 山田 いいえ")
    assert "なし（撤回）" in r.text
    assert "同意" in bot.sim.command("/liaison", "山田 訪問").text
    r = bot.sim.command("/patient", "consent 山田 yes")
    assert "「あり」" in r.text
    assert "登録しました" in bot.sim.command("/liaison", "山田 訪問").text
    assert "見つかりませんでした" in bot.sim.command("/patient", "consent 小林 yes").text
    assert "yes か no" in bot.sim.command("/patient", "consent 山田 たぶん").text


def test_a_given_name_in_kana_is_kept_whole(bot):
    r = bot.sim.command("/patient", "add 髙橋 ハナ たかはし はな area=東地区")
    assert "髙橋 ハナ（タカハシ ハナ）" in r.text
    with bot.session() as s:
        p = s.exec(select(Patient).where(Patient.name == "髙橋 ハナ", Patient.area == "東地区")).one()
        assert p.kana == "タカハシ ハナ"


def test_an_ambiguous_kana_word_is_asked_and_nothing_is_stored_until_chosen(bot):
    r = bot.sim.command("/patient", "add 佐藤 キヨ care=要介護2")
    assert "まだ登録していません" in r.text
    with bot.session() as s:
        assert s.exec(select(Patient).where(Patient.name.like("佐藤%"))).all() == []
    buttons = [e for b in r.json()["blocks"] if b["type"] == "actions" for e in b["elements"]]
    labels = [b["text"]["text"] for b in buttons]
    assert labels == ["佐藤（キヨ）", "佐藤 キヨ（ふりがななし）"]
    bot.sim.click(buttons[1]["action_id"], buttons[1]["value"])
    assert "佐藤 キヨ" in bot.responses()[-1]["blocks"][0]["text"]["text"]
    with bot.session() as s:
        p = s.exec(select(Patient).where(Patient.name == "佐藤 キヨ")).one()
        assert (p.kana, p.care_level) == ("", "要介護2")


def test_names_split_the_way_they_are_typed():
    from bot.patients.names import splits

    assert splits("山田 太郎 やまだ たろう".split()) == [("山田 太郎", "ヤマダ タロウ")]
    assert splits("髙橋 ハナ たかはし はな".split()) == [("髙橋 ハナ", "タカハシ ハナ")]
    assert splits("やまだ はな".split()) == [("やまだ はな", "ヤマダ ハナ")]
    assert splits("山田 太郎".split()) == [("山田 太郎", "")]
    assert len(splits("森 はる".split())) == 2


def test_removing_the_last_member_of_a_care_team_is_refused(bot):
    bot.sim.command("/patient", "add 森 一 もり はじめ")
    r = bot.sim.command("/patient", "team 森 remove <@U0DEMOCM1>")
    assert "誰もいなくなるため" in r.text and "何も変更していません" in r.text
    bot.sim.command("/patient", "team 森 add <@U0DEMONS1>")
    assert "削除" in bot.sim.command("/patient", "team 森 remove <@U0DEMOCM1>").text
    assert "誰もいなくなる" in bot.sim.command("/patient", "team 森 remove <@U0DEMONS1>", user="U0DEMONS1").text


def test_a_patient_alone_means_show_and_honorifics_are_ignored(bot):
    for text in ("山田さん", "やまださま", "山田 太郎様", "P-0001"):
        r = bot.sim.command("/patient", text)
        assert "P-0001" in r.text and "山田 太郎" in r.text and "ケアチーム" in r.text, text
    assert "登録しました" in bot.sim.command("/liaison", "髙橋様 本日訪問").text


def test_a_doubled_registration_form_registers_one_patient(bot):
    bot.sim.command("/patient", "add")
    view = bot.open_view()
    values = {"name": "森 一", "kana": "もり はじめ", "care": "要介護1", "consent": "yes"}
    bot.sim.submit(view, values, view_id="V900")
    bot.sim.submit(view, values, view_id="V900", headers={"X-Slack-Retry-Num": "1"})
    with bot.session() as s:
        assert len(s.exec(select(Patient).where(Patient.name == "森 一")).all()) == 1
    dms = [c for c in bot.fake.wait_for("chat.postMessage", 2) if c.body["channel"] == "U0DEMOCM1"]
    texts = sorted(d.text() for d in dms)  # DMs go out in the background, in either order
    assert sum("二重登録はしていません" in t for t in texts) == 1
    assert sum("を登録しました" in t for t in texts) == 1


def test_registering_patients_is_a_role(bot):
    r = bot.sim.command("/patient", "add 森 一 もり はじめ", user="U0DEMONS1")  # a visiting nurse
    assert "ケアマネジャー・退院調整の担当者と管理者が行います" in r.text
    bot.sim.command("/patient", "add", user="U0DEMONS1")
    assert not bot.fake.of("views.open")
    with bot.session() as s:
        assert s.exec(select(Patient).where(Patient.name == "森 一")).all() == []
        refused = s.exec(select(AuditEvent).where(AuditEvent.action == "patient.add")).all()
        assert refused and not any(e.allowed for e in refused)
    assert "登録しました" in bot.sim.command("/patient", "add 森 一 もり はじめ", user="U0DEMOADM").text
    # the same-name warning goes only to those who may register
    r = bot.sim.command("/patient", "add 森 一 もり はじめ")
    assert "同じ氏名の方がすでにいます" in r.text


def test_a_record_is_corrected_by_its_team_and_the_old_values_are_audited(bot):
    r = bot.sim.command("/patient", "edit 髙橋 name=髙橋 ハナエ kana=たかはし はなえ care=要介護３ area=西地区")
    assert "訂正しました" in r.text and "髙橋 ハナ → 髙橋 ハナエ" in r.text and "要介護2 → 要介護3" in r.text
    assert "P-0002" in bot.sim.command("/patient", "show はなえ").text  # the lookup sees the new reading
    assert "見つかりませんでした" in bot.sim.command("/patient", "edit 髙橋 area=東地区", user="U0DEMONS1").text
    assert "介護度" in bot.sim.command("/patient", "edit 髙橋 care=要介護9").text
    with bot.session() as s:
        p = s.exec(select(Patient).where(Patient.code == "P-0002")).one()
        assert (p.name, p.kana, p.care_level) == ("髙橋 ハナエ", "タカハシ ハナエ", "要介護3")
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "patient.edit")).one()
        assert "name: 髙橋 ハナ→髙橋 ハナエ" in event.detail and "care: 要介護2→要介護3" in event.detail


def test_care_team_access_is_read_once_and_follows_changes_in_the_same_transaction(bot):
    """care_teams is kept per transaction (a command checks it several
    times); adding or removing a member, or rolling a savepoint back, is
    seen at once, not at the next request."""
    from sqlalchemy import event

    from bot.privacy import in_care_team
    from tests.conftest import member_of

    reads = []
    with bot.session() as s:
        event.listen(s.connection(), "before_cursor_execute",
                     lambda *a: reads.append(1) if "FROM careteammember" in a[2] else None)
        pharmacist = member_of(s, "U0DEMOPH1")  # on 髙橋's team only
        kobayashi = s.exec(select(Patient).where(Patient.code == "P-0003")).one()
        assert not in_care_team(s, kobayashi, pharmacist.id)
        assert not in_care_team(s, kobayashi, pharmacist.id)
        assert len(reads) == 1
        row = CareTeamMember(patient_id=kobayashi.id, member_id=pharmacist.id, added_at=bot.clock())
        s.add(row)
        assert in_care_team(s, kobayashi, pharmacist.id)
        with s.begin_nested() as savepoint:
            s.delete(row)
            s.flush()
            assert not in_care_team(s, kobayashi, pharmacist.id)
            savepoint.rollback()
        assert in_care_team(s, kobayashi, pharmacist.id)
        yamada = s.exec(select(Patient).where(Patient.code == "P-0001")).one()
        with s.begin_nested() as savepoint:
            s.add(CareTeamMember(patient_id=yamada.id, member_id=pharmacist.id, added_at=bot.clock()))
            assert in_care_team(s, yamada, pharmacist.id)
            savepoint.rollback()
        assert not in_care_team(s, yamada, pharmacist.id)
        row.patient_id = yamada.id  # moved to another patient: an UPDATE at the flush
        s.flush()
        assert in_care_team(s, yamada, pharmacist.id) and not in_care_team(s, kobayashi, pharmacist.id)
