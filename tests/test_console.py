"""The console reaches every feature Slack reaches: buttons as numbered
choices (`:press`), forms as prompts or `:fill`, with the same field errors
and the same stored result."""

import io
import json

from sqlmodel import select

from bot.store.models import Note, NoteAck, Patient, VacancyEnquiry
from tests.conftest import console


def said(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text


def test_fill_switches_the_liaison_form_and_stores_a_condition_report(bot):
    c, out = console(bot)
    c.handle_line("/liaison 山田")
    assert "日常連絡" in said(out)
    c.handle_line(':fill 種類=状態変化報告 緊急度=至急 確認日=今日 変化の内容="昨夜から発熱 38.2℃" 体温=38.2')
    shown = said(out)
    assert "「状態変化報告」を登録しました" in shown and "[2] 確認しました" in shown
    with bot.session() as s:
        note = s.exec(select(Note)).one()
        assert note.form_id == "condition" and note.urgency == "至急"
        assert json.loads(note.body_json)["observed_on"] == "2026-11-24"


def test_pressing_the_echoed_ack_button_acknowledges_like_a_click(bot):
    c, out = console(bot)
    c.handle_line("/liaison 山田 本日訪問")
    said(out)
    c.handle_line(":as U0DEMONS1")
    c.handle_line(":press 2")
    shown = said(out)
    assert "確認を記録しました" in shown and "確認済み 1人" in shown
    c.handle_line(":press 2")
    assert "すでに確認済み" in said(out)
    with bot.session() as s:
        assert len(s.exec(select(NoteAck)).all()) == 1


def test_fill_shows_the_same_field_errors_as_a_modal_and_keeps_the_form_open(bot):
    c, out = console(bot)
    c.handle_line("/liaison 山田")
    c.handle_line(":fill 種類=状態変化報告 緊急度=至急 体温=50")
    shown = said(out)
    assert "「変化の内容」は必須です" in shown and "「体温（℃）」は33〜43の範囲" in shown
    c.handle_line(':fill 緊急度=通常 確認日=11/24 変化の内容="食欲低下"')
    assert "登録しました" in said(out)
    with bot.session() as s:
        assert s.exec(select(Note)).one().form_id == "condition"


def test_unknown_press_and_unknown_field_answer_clearly(bot):
    c, out = console(bot)
    c.handle_line(":press 1")
    assert "いま押せるボタンはありません" in said(out)
    c.handle_line(":fill 氏名=森")
    assert "いま開いているフォームはありません" in said(out)
    c.handle_line("/patient add")
    said(out)
    c.handle_line(":press 7")
    assert "いま押せるボタンはありません" in said(out)  # the patient form has none
    c.handle_line("/vacancy")
    said(out)
    c.handle_line(":press 7")
    assert "「7」番のボタンはありません。1〜2 から選んでください" in said(out)
    c.handle_line("/patient add")
    said(out)
    c.handle_line(":fill 血液型=A")
    shown = said(out)
    assert "「血液型」という項目はありません" in shown and "氏名" in shown


def test_a_form_in_a_terminal_asks_field_by_field(bot):
    answers = iter(["森 一", "もり はじめ", "", "要介護1", "あり"])
    c, out = console(bot, ask=lambda prompt: next(answers))
    c.handle_line("/patient add")
    assert "P-0004 森 一" in said(out)
    with bot.session() as s:
        patient = s.exec(select(Patient).where(Patient.code == "P-0004")).one()
        assert (patient.care_level, patient.consent) == ("要介護1", "yes")


def test_a_board_button_sends_the_enquiry_from_the_console(bot):
    c, out = console(bot)
    c.handle_line("/vacancy 東地区")
    assert "[1] 空き照会 1. 特養 あおば苑" in said(out)
    c.handle_line(":press 1")
    shown = said(out)
    assert "照会" in shown and "DM" in shown
    with bot.session() as s:
        assert len(s.exec(select(VacancyEnquiry)).all()) == 1


def test_the_first_week_fixes_reach_the_console_too(bot):
    c, out = console(bot)
    c.handle_line("/patient add 佐藤 キヨ")
    assert "まだ登録していません" in said(out)
    c.handle_line(":press 2")
    assert "佐藤 キヨ" in said(out)
    c.handle_line("/patient admit 山田さん 11/22 hospital=市立病院")
    assert "入院を記録しました" in said(out)
    c.handle_line("/patient 山田")
    assert "入院中: 11/22(日)から 市立病院" in said(out)
    c.handle_line("/liaison 山田 ! 呼吸が苦しそう")
    assert "【緊急】" in said(out)
    c.handle_line("/liaison 山田 help")
    assert "/liaison の使い方" in said(out)
    c.handle_line("/liaison 山田")
    c.handle_line(':fill 種類=状態変化報告 緊急度=通常 変化の内容="食欲低下"')
    said(out)
    c.handle_line(":press 1")  # 内容を表示
    shown = said(out)
    assert "確認日: 11/24(火)" in shown and "2026-11-24" not in shown
    c.handle_line(":as U0DEMOPH1")
    c.handle_line("/patient 小林")
    assert "見つかりませんでした" in said(out)


def test_the_first_week_fixes_reach_the_console_too_part_two(bot):
    c, out = console(bot)
    c.handle_line("/vacancy 来週月曜 - 来週水曜 ひがしちく")
    assert "全3泊" in (shown := said(out)) and "11/30・12/1・12/2 の夜" in shown
    c.handle_line("/vacancy 南地区")
    assert "見つかりませんでした" in said(out)
    c.handle_line("/vacancy 今週末 要介護3 P-0001")
    said(out)
    c.handle_line(":press 1")
    assert "空き照会を送りました" in said(out)
    c.handle_line("/patient edit 髙橋 area=東地区")
    assert "西地区 → 東地区" in said(out)
    c.handle_line("/patient list all")
    assert "管理者だけ" in said(out)
    c.handle_line("/liaison 山田 体温 38.5℃")
    said(out)
    c.handle_line(":press 1")  # 内容を表示, as the author
    assert "[1] 訂正する" in said(out)
    c.handle_line(":press 1")
    assert "訂正の理由（必須）" in said(out)
    c.handle_line(':fill 連絡内容="体温 37.5℃" 訂正の理由=書き間違い')
    assert "訂正しました" in said(out)
    with bot.session() as s:
        assert json.loads(s.exec(select(Note)).one().body_json)["body"] == "体温 37.5℃"
    c.handle_line("/patient end 山田 なくなった")
    assert "まだ記録していません" in said(out)
    c.handle_line(":press 1")
    assert "支援終了を記録しました" in said(out)
    c.handle_line(":as U0DEMOADM")
    c.handle_line("/patient reopen 山田 reason=誤って終了")
    assert "再開しました" in said(out)
