"""One registry: every button a reply can show is registered, and a button
the registry does not know (an old message after an upgrade) gets a clear
answer, never an error or silence."""

from bot import commands
from bot.render import button_label
from bot.replies import Action
from bot.slack import blocks
from tests.conftest import blocks_text


def test_every_registered_action_has_a_label():
    for action_id in commands.ACTIONS:
        params = {"choose": {"label": "x"}, "liaison_form_type": {"label": "x"}, "vacancy_ask": {"n": 1, "name": "x"},
                  "council_rsvp": {"answer": "出席"}, "council_decide": {"n": 1}}.get(action_id, {})
        assert button_label(Action.make(action_id, **params)), action_id


def test_buttons_drawn_for_slack_are_all_registered(bot):
    bot.sim.command("/liaison", "山田 本日訪問")
    post = bot.fake.wait_for("chat.postMessage")[-1].body
    board = bot.sim.command("/vacancy", "").json()
    bot.sim.command("/patient", "add 山田 花子 やまだ はなこ")
    choose = bot.sim.command("/patient", "show 山田").json()
    for message in (post, board, choose):
        ids = [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
        assert ids and all(blocks.registered_id(i) in commands.ACTIONS for i in ids), ids
        assert len(ids) == len(set(ids))  # unique within the message, as Slack requires


def test_an_unknown_button_says_it_is_no_longer_valid(bot):
    r = bot.sim.click("renamed_in_an_old_release", "42")
    assert r.status == 200
    reply = bot.responses()[-1]
    assert "このボタンはもう使えません" in blocks_text(reply) and reply["replace_original"] is False


def test_a_known_button_with_a_broken_value_says_the_same(bot):
    bot.sim.click("note_ack", "not-a-number")
    assert "このボタンはもう使えません" in blocks_text(bot.responses()[-1])
    bot.sim.click("vacancy_ask", "{broken json")
    assert "このボタンはもう使えません" in blocks_text(bot.responses()[-1])


def test_a_failure_in_the_glue_answers_in_words_never_an_http_500(bot, monkeypatch):
    from bot.slack import blocks as slack_blocks

    def broken(*a, **k):
        raise RuntimeError("template bug")

    monkeypatch.setattr(slack_blocks, "message", broken)
    r = bot.sim.command("/patient", "list")
    assert r.status == 200 and "返事の準備中にエラーが起きました" in r.text
    r = bot.sim.click("note_show", "1")
    assert r.status == 200


def test_a_hash_conflict_while_switching_forms_is_said_over_the_form(bot):
    bot.sim.command("/liaison", "山田")
    view = {**bot.open_view(), "id": "V8", "hash": "old"}
    bot.fake.fail("views.update", "hash_conflict")
    bot.sim.click("liaison_form_type", "", view=view, selected="condition")
    pushed = bot.fake.wait_for("views.push")[-1].body["view"]
    assert "別の操作で更新されていました" in str(pushed)
