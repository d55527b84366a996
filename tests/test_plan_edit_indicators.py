"""/plan edit and the indicators the council records by hand, through
signed requests and the console: targets, trends per quarter, corrections,
the council's agenda, the Excel export, and bad input storing nothing. The
demo clock is 2026-11-24 (FY2026, third quarter)."""

from datetime import date

from sqlmodel import select

from bot.cli import main
from bot.store.models import AuditEvent, PlanIndicator, PlanIndicatorValue, PlanTask, PlanTaskOwner
from tests.conftest import ROOT, console


def test_edit_changes_what_is_given_and_the_task_is_found_by_its_new_title(bot):
    bot.sim.command("/plan", "add F 連携シートを改訂する owner=<@U0DEMOCM1> due=12/20")
    r = bot.sim.command("/plan", "edit 連携シート title=統一連絡票を改訂する due=１月１５日 owner=<@U0DEMONS1>")
    assert "変更しました（タスク名・期限・担当）" in r.text and "1/15(金)" in r.text and "<@U0DEMONS1>" in r.text
    assert "統一連絡票を改訂する" in bot.sim.command("/plan", "show とういつれんらくひょう").text
    r = bot.sim.command("/plan", "edit 統一連絡票 every=quarter due=なし")
    assert "期限・繰り返し" in r.text and "四半期ごと" in r.text
    assert "変更はありませんでした" in bot.sim.command("/plan", "edit 統一連絡票 every=quarter").text
    assert "担当: （未定）" in bot.sim.command("/plan", "edit 統一連絡票 owner=なし").text
    with bot.session() as s:
        task = s.exec(select(PlanTask)).one()
        assert (task.title, task.due, task.every) == ("統一連絡票を改訂する", None, "quarter")
        assert s.exec(select(PlanTaskOwner)).all() == []
        assert [e.detail for e in s.exec(select(AuditEvent).where(AuditEvent.action == "plan.edit"))] == [
            "title,due,owners", "due,every", "owners"]


def test_edit_refuses_bad_values_and_strangers_and_stores_nothing(bot):
    bot.sim.command("/plan", "add F 連携シートを改訂する due=12/20")
    for text, words in [("edit 連携シート due=2027-05-01", "2026年度"), ("edit 連携シート category=Z", "A〜H"),
                        ("edit 連携シート every=weekly", "month（毎月）"), ("edit 連携シート color=red", "「color=」"),
                        ("edit 宇宙開発 due=12/1", "見つかりませんでした"), ("edit", "タスクを指定してください"),
                        ("edit 連携シート owner=@だれか", "メンバーとして見つかりません"),
                        ("add G 公開講座 owner=@だれか", "メンバーとして見つかりません")]:
        assert words in bot.sim.command("/plan", text).text, text
    r = bot.sim.command("/plan", "edit 連携シート due=12/1", user="U0DEMOPH1")  # not owner, creator or admin
    assert "変更できるのは" in r.text
    with bot.session() as s:
        assert s.exec(select(PlanTask)).one().due == date(2026, 12, 20)  # and no 公開講座


def test_edit_without_changes_opens_the_form_filled_in(bot):
    bot.sim.command("/plan", "add B 部会を開催する due=12/10 every=month")
    bot.sim.command("/plan", "edit 部会")
    view = bot.open_view()
    assert view["callback_id"] == "plan_edit_submit" and view["title"]["text"] == "タスクの変更"
    assert "部会を開催する" in str(view["blocks"])
    r = bot.sim.submit(view, {"category": "B", "title": "在宅医療部会を開催する", "due": "2027-05-01",
                              "every": "month"})
    assert "2026年度" in r.json()["errors"]["due"]
    r = bot.sim.submit(view, {"category": "C", "title": "在宅医療部会を開催する", "due": "", "every": "once"},
                       view_id="V700")
    assert r.status == 200 and not r.body
    with bot.session() as s:
        task = s.exec(select(PlanTask)).one()
        assert (task.category, task.title, task.due, task.every) == ("C", "在宅医療部会を開催する", None, None)


def test_a_recorded_indicator_shows_its_value_target_and_trend_per_quarter(bot):
    r = bot.sim.command("/plan", "indicator add 相談窓口の相談件数 unit=件 target=１２０ kind=プロセス")
    assert "指標を追加しました" in r.text and "目標 120件以上" in r.text
    assert "すでにあります" in bot.sim.command("/plan", "指標 追加 相談窓口の相談件数").text
    assert "第1四半期を記録しました: 80件" in bot.sim.command(
        "/plan", "indicator record 相談件数 80 period=2026Q1").text
    bot.sim.command("/plan", "indicator record 相談件数 95件 period=第2四半期")
    r = bot.sim.command("/plan", "indicator record そうだん 130")  # this quarter, found by reading
    assert "2026年度第3四半期を記録しました: 130件" in r.text and "達成" in r.text
    r = bot.sim.command("/plan", "indicator record 相談件数 110 期間=11月")
    assert "130件 から 110件 に直しました" in r.text and "未達" in r.text
    r = bot.sim.command("/plan", "indicators")
    assert "*相談窓口の相談件数*（過程）: 110件（2026年度第3四半期）　目標 120件以上 ⚠ 未達" in r.text
    assert "四半期 ▆▇█・" in r.text  # 80, 95, 110, not yet
    assert "在宅看取り率" in r.text  # the computed ones come first
    with bot.session() as s:
        assert sorted((v.period, v.value) for v in s.exec(select(PlanIndicatorValue))) == [
            ("2026Q1", 80), ("2026Q2", 95), ("2026Q3", 110)]


def test_fewer_is_better_targets_read_as_ceilings(bot):
    bot.sim.command("/plan", "indicator add 救急搬送件数 unit=件 target=10以下 kind=結果")
    r = bot.sim.command("/plan", "indicator record 救急搬送件数 12")
    assert "目標 10件以下: ⚠ 未達" in r.text
    assert "目標 10件以下: 達成" in bot.sim.command("/plan", "indicator record 救急搬送件数 ８").text


def test_indicator_bad_input_gets_a_clear_answer_and_nothing_is_stored(bot):
    bot.sim.command("/plan", "indicator add 研修参加者数 unit=人 target=50")
    for text, words in [("indicator record 研修参加者数 たくさん", "数として読めません"),
                        ("indicator record 研修参加者数 30 period=来年", "期間「来年」を読めません"),
                        ("indicator record 研修参加者数 30 period=2026Q4", "まだ始まっていません"),
                        ("indicator record 宇宙開発 3", "見つかりませんでした"),
                        ("indicator record 研修参加者数", "名前と値"),
                        ("indicator add 訪問件数 target=多め", "数として読めません"),
                        ("indicator add 訪問件数 kind=気分", "構造・過程・結果"),
                        ("indicator delete 研修参加者数", "/plan indicator record")]:
        assert words in bot.sim.command("/plan", text).text, text
    with bot.session() as s:
        assert s.exec(select(PlanIndicatorValue)).all() == []
        assert [i.name for i in s.exec(select(PlanIndicator))] == ["研修参加者数"]


def test_an_indicator_behind_target_is_on_the_council_agenda(bot):
    from tests.test_council import add_meeting, posts, tick

    bot.sim.command("/plan", "indicator add 相談件数 unit=件 target=120")
    bot.sim.command("/plan", "indicator add 研修参加者数 unit=人 target=50")
    bot.sim.command("/plan", "indicator record 相談件数 90")
    bot.sim.command("/plan", "indicator record 研修参加者数 60")  # on target: not on the agenda
    add_meeting(bot)  # 第3回 推進協議会, 12/15, kind 協議会
    bot.fake.clear()
    tick(bot, "2026-12-14T18:30")
    text = posts(bot)[-1].text()
    assert "目標に届いていない指標 1件" in text and "相談件数: 90件（2026年度第3四半期）　目標 120件以上" in text
    assert "研修参加者数" not in text


def test_the_excel_export_has_a_sheet_and_a_line_chart_per_indicator(bot, tmp_path, monkeypatch):
    from openpyxl import load_workbook

    bot.sim.command("/plan", "indicator add 相談件数 unit=件 target=120")
    bot.sim.command("/plan", "indicator record 相談件数 80 period=Q1")
    bot.sim.command("/plan", "indicator record 相談件数 90")
    monkeypatch.setenv("RENKEI_DATABASE_URL", bot.runtime.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("RENKEI_CONFIG", str(ROOT / "config"))
    path = tmp_path / "plan.xlsx"
    assert main(["export", "plan", "--year", "2026", str(path)]) == 0
    book = load_workbook(path)
    assert book.sheetnames[:2] == ["タスク", "完了の記録"] and "在宅看取り率" in book.sheetnames
    sheet = book["相談件数"]
    assert [[c.value for c in row] for row in sheet.iter_rows(max_row=5, max_col=3)] == [
        ["四半期", "相談件数（件）", "目標"], ["2026年度第1四半期", 80, 120], ["2026年度第2四半期", None, 120],
        ["2026年度第3四半期", 90, 120], ["2026年度第4四半期", None, 120]]
    assert len(sheet._charts) == 1


def test_edit_and_indicators_reach_the_console(bot):
    c, out = console(bot)
    c.handle_line("/plan indicator add 研修参加者数 unit=人 target=50")
    c.handle_line("/plan indicator record 研修参加者数 42")
    c.handle_line("/plan 指標")
    assert "研修参加者数（過程）: 42人（2026年度第3四半期）　目標 50人以上 ⚠ 未達" in out.getvalue()
    c.handle_line("/plan add F 連携シートを改訂する due=12/20")
    c.handle_line("/plan edit れんけいシート due=1/15 owner=@U0DEMONS1")
    assert "変更しました（期限・担当）" in out.getvalue()
    with bot.session() as s:
        assert s.exec(select(PlanTask)).one().due == date(2027, 1, 15)


def test_the_weekly_digest_carries_the_recorded_indicators(bot):
    bot.sim.command("/plan", "indicator add 相談件数 unit=件 target=120")
    bot.sim.command("/plan", "indicator record 相談件数 90")
    r = bot.sim.command("/plan", "digest")
    assert "相談件数: 90件（2026年度第3四半期）（目標 120件以上 ⚠ 未達）" in r.text
