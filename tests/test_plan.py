"""/plan through signed requests, the console and `renkei import plan`:
the handbook template, add, done (forgiving), undo, mine, recurring tasks
across periods, and bad input. The demo clock is 2026-11-24 (FY2026)."""

from datetime import date

from sqlmodel import select

from bot.cli import main
from bot.store.models import PlanCompletion, PlanTask
from tests.conftest import ROOT, console


def imported(bot, monkeypatch, capsys, path=ROOT / "config" / "plan" / "template.yaml"):
    monkeypatch.setenv("RENKEI_DATABASE_URL", bot.runtime.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("RENKEI_CONFIG", str(ROOT / "config"))
    code = main(["import", "plan", str(path), "--year", "2026"])
    return code, capsys.readouterr()


def test_the_handbook_template_loads_and_the_overview_shows_progress_per_item(bot, monkeypatch, capsys):
    code, out = imported(bot, monkeypatch, capsys)
    assert code == 0 and "16件" in out.out
    r = bot.sim.command("/plan")
    assert "2026年度 事業計画" in r.text and "G □□□□□□□□□□ 0/3" in r.text and "普及・啓発" in r.text
    assert "期限切れ" in r.text and "推進協議会で評価指標" in r.text  # due 5/31, not done
    with bot.session() as s:
        assert {t.category for t in s.exec(select(PlanTask))} == set("ABCDEFGH")


def test_a_plan_file_with_a_wrong_line_stores_nothing(bot, monkeypatch, capsys, tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("tasks:\n  - {category: F, title: 連携シート, due: 06-30}\n  - {category: Z, title: 謎}\n"
                    "  - {category: G, title: 講座, due: 2027-04-30}\n", encoding="utf-8")
    code, out = imported(bot, monkeypatch, capsys, path)
    assert code == 1 and "3行目: 項目「Z」" in out.err and "4行目: due 2027-04-30 は 2026年度" in out.err
    with bot.session() as s:
        assert s.exec(select(PlanTask)).all() == []


def test_add_done_undo_and_mine_with_a_forgiving_search(bot):
    r = bot.sim.command("/plan", "add F 統一連絡票（入退院時連携シート）を改訂する owner=<@U0DEMOCM1> due=12/20")
    assert "F（効率的な情報共有" in r.text and "12/20(日)" in r.text
    r = bot.sim.command("/plan", "mine")
    button = [e for b in r.json()["blocks"] if b["type"] == "actions" for e in b["elements"]][0]
    assert button["text"]["text"].startswith("完了: 統一連絡票")
    r = bot.sim.command("/plan", "done れんけいシート 研修で周知済み", user="U0DEMONS1")
    assert "完了として記録しました" in r.text
    r = bot.sim.command("/plan", "done 連携シート")
    assert "すでに" in r.text and "完了しています" in r.text  # who already did it, and when
    r = bot.sim.command("/plan", "連携シート")
    assert "研修で周知済み" in r.text and "2026年度: 完了" in r.text
    assert "取り消しました" in bot.sim.command("/plan", "undo 連携シート").text
    bot.sim.click(button["action_id"], button["value"])
    assert "完了として記録しました" in str(bot.responses()[-1])
    assert "未完了タスクはありません" in bot.sim.command("/plan", "mine").text


def test_a_recurring_task_logs_one_completion_per_period(bot):
    bot.sim.command("/plan", "add B 部会を開催する every=month")
    assert "11月分を完了" in bot.sim.command("/plan", "done 部会").text
    assert "11月分をすでに" in bot.sim.command("/plan", "done 部会").text
    bot.clock.advance(days=10)  # 12/4
    assert "12月分を完了" in bot.sim.command("/plan", "done 部会").text
    with bot.session() as s:
        assert sorted(c.period for c in s.exec(select(PlanCompletion))) == ["2026-11", "2026-12"]


def test_bad_input_gets_a_clear_answer_and_nothing_is_stored(bot):
    for text, words in [("add Z 何か", "A〜H のいずれか"), ("add F", "タスク名を入れてください"),
                        ("add F 講座 due=2027-05-01", "2026年度"), ("add F 講座 due=2/30", "という日付はありません"),
                        ("add F 講座 every=weekly", "month（毎月）か quarter"), ("done 宇宙開発", "見つかりませんでした")]:
        assert words in bot.sim.command("/plan", text).text, text
    with bot.session() as s:
        assert s.exec(select(PlanTask)).all() == []


def test_plan_reaches_the_console(bot):
    c, out = console(bot)
    c.handle_line("/plan add G 市民公開講座を開催する owner=@U0DEMOCM1 due=12/1")
    c.handle_line("/plan mine")
    c.handle_line(":press 1")
    assert "完了として記録しました" in out.getvalue()
    with bot.session() as s:
        assert s.exec(select(PlanTask)).one().due == date(2026, 12, 1)  # read in FY2026


def test_the_weekly_digest_goes_monday_once_with_details_in_its_thread_and_owners_get_a_dm(bot):
    from datetime import datetime

    from bot import schedule
    from bot.slack.deliver import scheduler_sender
    from tests.conftest import JST

    def tick(text):
        at = datetime.fromisoformat(text).replace(tzinfo=JST)
        return schedule.tick(bot.runtime, at, scheduler_sender(bot.runtime, bot.app.client))

    bot.sim.command("/plan", "add F 連携シートを改訂する owner=<@U0DEMONS1> due=11/25", channel="C0PLAN")
    bot.sim.command("/plan", "add G 市民公開講座 owner=<@U0DEMODR1> due=11/26", channel="C0PLAN")
    bot.sim.command("/plan", "mute", user="U0DEMODR1")
    bot.fake.clear()
    report = tick("2026-11-30T09:00")  # Monday
    assert "plan.digest/plan:channel/2026-11-30" in report.sent
    bot.runtime.wait_idle()
    posted = [c for c in bot.fake.of("chat.postMessage") if c.body["channel"] == "C0PLAN"]
    assert len(posted) == 2 and "期限切れ 2件" in posted[0].text()
    assert posted[1].body["thread_ts"] and "連携シートを改訂する" in posted[1].text()  # details in the thread
    dms = [c for c in bot.fake.of("chat.postMessage") if "期限切れタスク" in c.text()]
    assert [c.body["channel"] for c in dms] == ["U0DEMONS1"]  # the doctor muted the DM
    assert "完了: 連携シート" in str(dms[0].body["blocks"])
    assert tick("2026-11-30T09:05").sent == []  # once
    # 2027-01-11 is 成人の日: that week's digest goes on Tuesday
    assert not [n for n in tick("2027-01-11T09:00").sent if "plan:channel" in n]
    assert "plan.digest/plan:channel/2027-01-11" in tick("2027-01-12T09:00").sent


def test_the_digest_stays_within_slack_limits_with_5000_tasks(bot):
    from bot.store.models import PlanTask

    with bot.session() as s:
        s.add_all(PlanTask(fiscal_year=2026, category="ABCDEFGH"[i % 8], title=f"タスク{i} " + "長い名前" * 10,
                           due=date(2026, 11, 1 + i % 20), created_at=bot.clock()) for i in range(5000))
    r = bot.sim.command("/plan", "digest")
    message = r.json()
    assert "ほか" in r.text and len(message["blocks"]) <= 50
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in message["blocks"])


def test_the_plan_exports_to_csv_excel_reads_and_to_xlsx(bot, tmp_path, monkeypatch, capsys):
    import csv

    from openpyxl import load_workbook

    bot.sim.command("/plan", "add F 連携シートを改訂する owner=<@U0DEMONS1> due=12/20")
    bot.sim.command("/plan", "done 連携シート 研修で周知")
    monkeypatch.setenv("RENKEI_DATABASE_URL", bot.runtime.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("RENKEI_CONFIG", str(ROOT / "config"))
    csv_path, xlsx_path = tmp_path / "plan.csv", tmp_path / "plan.xlsx"
    assert main(["export", "plan", "--year", "2026", str(csv_path)]) == 0
    raw = csv_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[1][:4] == ["F", "効率的な情報共有のための取組み（地域連携パス、連絡様式の統一）", "連携シートを改訂する",
                           "2026-12-20"] and rows[1][5] == "鈴木 看護師"
    assert any(r and r[-1] == "研修で周知" for r in rows)  # the log follows the tasks after a blank line
    assert main(["export", "plan", "--year", "2026", str(xlsx_path)]) == 0
    book = load_workbook(xlsx_path)
    assert book.sheetnames[:2] == ["タスク", "完了の記録"]  # then one sheet per indicator
    assert book["タスク"]["C2"].value == "連携シートを改訂する" and book["完了の記録"]["F2"].value == "研修で周知"


def test_rollover_starts_next_year_from_recurring_and_unfinished_tasks(bot, monkeypatch, capsys):
    bot.sim.command("/plan", "add B 部会を開催する every=month")
    bot.sim.command("/plan", "add F 連携シートを改訂する owner=<@U0DEMONS1> due=2/28")
    bot.sim.command("/plan", "add G 公開講座 due=11/30")
    bot.sim.command("/plan", "done 公開講座")
    bot.sim.command("/plan", "done 部会")
    monkeypatch.setenv("RENKEI_DATABASE_URL", bot.runtime.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("RENKEI_CONFIG", str(ROOT / "config"))
    assert main(["plan", "rollover", "2027"]) == 0 and "2件を引き継ぎました" in capsys.readouterr().out
    assert main(["plan", "rollover", "2027"]) == 0 and "0件を引き継ぎました" in capsys.readouterr().out
    with bot.session() as s:
        new = {t.title: t for t in s.exec(select(PlanTask).where(PlanTask.fiscal_year == 2027))}
        assert set(new) == {"部会を開催する", "連携シートを改訂する"}
        assert new["連携シートを改訂する"].due == date(2028, 2, 28) and new["部会を開催する"].source == "rollover"


def test_indicators_are_computed_from_the_teams_own_work(bot):
    from datetime import timedelta

    from bot.store.models import Note, NoteAck, Patient
    from tests.conftest import member_of

    for name, kana, outcome in (("甲 一", "こう いち", "在宅看取り"), ("乙 二", "おつ に", "在宅看取り"),
                                ("丙 三", "へい さん", "病院死亡"), ("丁 四", "てい し", "転居")):
        bot.sim.command("/patient", f"add {name} {kana}")
        bot.sim.command("/patient", f"end {name} outcome={outcome} date=11/20")
    bot.sim.command("/liaison", "山田 一つ目")
    bot.sim.command("/liaison", "山田 二つ目")
    bot.sim.command("/liaison", "山田 三つ目")
    with bot.session() as s:
        notes = s.exec(select(Note).order_by(Note.id)).all()
        nurse, author = member_of(s, "U0DEMONS1"), member_of(s, "U0DEMOCM1")
        s.add(NoteAck(note_id=notes[0].id, member_id=nurse.id, acked_at=notes[0].created_at + timedelta(hours=2)))
        s.add(NoteAck(note_id=notes[1].id, member_id=nurse.id, acked_at=notes[1].created_at + timedelta(hours=30)))
        s.add(NoteAck(note_id=notes[2].id, member_id=author.id, acked_at=notes[2].created_at))  # the author only
        assert s.exec(select(Patient).where(Patient.outcome == "転居")).one()
    r = bot.sim.command("/plan", "indicators")
    assert "在宅看取り率*（結果）: 67%（2/3）" in r.text  # 転居 is not a death
    assert "かかりつけ医師数*（構造）: 1人" in r.text  # 高橋 医師 is on 山田's team
    assert "介護支援専門員 1人・訪問看護師 1人" in r.text
    assert "連絡票への応答*（過程）: 33%（1/3）" in r.text
    assert "空床情報の鮮度*（過程）: 67%（2/3）" in r.text  # ひまわり's figures are 72 hours old


def test_add_without_arguments_is_a_form_with_the_same_checks(bot):
    bot.sim.command("/plan", "add")
    view = bot.open_view()
    assert view["callback_id"] == "plan_add_submit"
    r = bot.sim.submit(view, {"category": "F", "title": "連携シートを改訂する", "due": "2027-05-01"})
    assert "2026年度" in r.json()["errors"]["due"]
    r = bot.sim.submit(view, {"category": "F", "title": "連携シートを改訂する", "due": "2026-12-20", "every": "once"},
                       view_id="V500")
    assert r.status == 200 and not r.body
    with bot.session() as s:
        task = s.exec(select(PlanTask)).one()
        assert (task.category, task.due, task.every) == ("F", date(2026, 12, 20), None)


def test_only_an_admin_sets_the_plan_channel_and_mute_can_be_undone(bot):
    from bot.store.models import PlanMute, TeamSetting

    assert "管理者だけ" in bot.sim.command("/plan", "channel <#C0OTHER|other>").text
    r = bot.sim.command("/plan", "channel <#C0PLAN|plan>", user="U0DEMOADM")
    assert "投稿先を" in r.text and "<#C0PLAN>" in r.text
    assert "止めました" in bot.sim.command("/plan", "mute").text
    assert "再開しました" in bot.sim.command("/plan", "unmute").text
    with bot.session() as s:
        assert s.exec(select(TeamSetting)).one().value == "slack:C0PLAN"
        assert s.exec(select(PlanMute)).all() == []
