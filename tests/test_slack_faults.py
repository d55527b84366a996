"""Slack failing in every way it does, through the real app and the fake
Web API: 429 with Retry-After, 5xx with an HTML body, reset connections
and timeouts whose outcome the bot cannot know. A note's post goes out
exactly once in the end; the author hears of a problem only when the post
is finally given up, in Japanese; posts to one channel keep Slack's pace."""

import json
import re

from sqlmodel import select

from bot import schedule
from bot.delivery import MAX_ATTEMPTS
from bot.slack.deliver import scheduler_sender
from bot.store.models import Delivery, Note


def team_posts(bot, channel="C0TEAM"):
    bot.runtime.wait_idle()
    return [c for c in bot.fake.of("chat.postMessage") if c.body["channel"] == channel]


def dms_to_author(bot):
    bot.runtime.wait_idle()
    return [c for c in bot.fake.of("chat.postMessage") if c.body["channel"] == "U0DEMOCM1"]


def tick_later(bot, minutes=2):
    bot.runtime.wait_idle()  # the request's own attempt has finished
    bot.clock.advance(minutes=minutes)
    return schedule.tick(bot.runtime, bot.clock(), scheduler_sender(bot.runtime, bot.app.client))


def note_row(bot):
    with bot.session() as s:
        note = s.exec(select(Note)).one()
        row = s.exec(select(Delivery).where(Delivery.subject == f"note:{note.id}")).one()
        return note, row


def test_a_rate_limit_is_waited_out_and_the_note_posted_once(bot):
    bot.fake.fault("chat.postMessage", "ratelimited")
    r = bot.sim.command("/liaison", "山田 夕方に再訪", channel="C0TEAM")
    assert "登録しました" in r.text
    posts = team_posts(bot)
    assert len(posts) == 1 and bot.fake.of("chat.postMessage!ratelimited") and dms_to_author(bot) == []
    assert note_row(bot)[1].status == "sent"


def test_a_5xx_is_not_told_to_the_author_and_the_tick_posts_it_once(bot):
    bot.fake.fault("chat.postMessage", "server_error")
    bot.sim.command("/liaison", "山田 夕方に再訪", channel="C0TEAM")
    assert team_posts(bot) == [] and dms_to_author(bot) == []  # no "the team was not told" for a passing error
    assert note_row(bot)[1].status == "failed"
    assert tick_later(bot).sent == ["note.post/note:1/post"]
    assert len(team_posts(bot)) == 1 and note_row(bot)[0].message_id
    assert tick_later(bot).sent == [] and len(team_posts(bot)) == 1


def test_a_post_whose_answer_was_lost_is_found_and_not_sent_again(bot):
    """Timeout and reset after Slack took the message: the outcome is
    unknown; the retry finds the post by its key in the channel's history."""
    bot.app.client.timeout = 0.5
    for fault in ("timeout", "reset"):
        bot.fake.clear()
        bot.fake.fault("chat.postMessage", fault)
        bot.sim.command("/liaison", f"山田 {fault} の確認", channel="C0TEAM")
        posts = team_posts(bot)
        assert len(posts) == 1 and dms_to_author(bot) == [], fault  # it arrived; nobody was told otherwise
        assert posts[0].body["metadata"]["event_payload"]["key"].startswith("note.post/note:")
        report = tick_later(bot)
        assert len(report.sent) == 1 and len(team_posts(bot)) == 1, fault  # found, not posted again
    with bot.session() as s:
        notes = s.exec(select(Note)).all()
        assert all(n.message_id for n in notes)  # the found post is the note's post (ack counts update it)
        assert {r.status for r in s.exec(select(Delivery))} == {"sent"}


def test_a_reset_before_slack_took_it_is_sent_again_once(bot):
    bot.fake.fault("chat.postMessage", "reset_before")
    bot.sim.command("/liaison", "山田 夕方に再訪", channel="C0TEAM")
    assert team_posts(bot) == []
    tick_later(bot)
    assert len(team_posts(bot)) == 1


def test_the_author_is_told_in_japanese_only_when_the_post_is_given_up(bot):
    bot.fake.fault("chat.postMessage", "server_error", times=MAX_ATTEMPTS)
    bot.sim.command("/liaison", "山田 夕方に再訪", channel="C0TEAM")
    for attempt in range(2, MAX_ATTEMPTS):
        tick_later(bot)
        assert dms_to_author(bot) == [], attempt
    tick_later(bot)
    dm = dms_to_author(bot)
    assert len(dm) == 1 and "何度か再送しても届きませんでした" in dm[0].text()
    assert "html" not in dm[0].text().lower() and "non-JSON" not in dm[0].text()
    assert tick_later(bot).sent == [] and team_posts(bot) == []  # given up: not tried again
    assert note_row(bot)[1].attempts == MAX_ATTEMPTS


def test_a_permanent_refusal_is_told_at_once_and_not_retried(bot):
    bot.fake.fail("chat.postMessage", "channel_not_found")
    bot.sim.command("/liaison", "山田 夕方に再訪", channel="C0TEAM")
    dm = dms_to_author(bot)
    assert len(dm) == 1 and "チャンネルに参加していないか" in dm[0].text() and "招待" in dm[0].text()
    assert tick_later(bot).sent == [] and team_posts(bot) == []


def test_a_reset_while_opening_a_form_is_retried_by_the_client(bot):
    bot.fake.fault("views.open", "reset_before")
    r = bot.sim.command("/liaison", "山田")
    assert r.status == 200 and bot.fake.of("views.open")  # the second try opened it


def test_posts_to_one_channel_keep_slacks_pace(bot, unpaced):
    unpaced.interval = 0.3
    for i in range(4):
        bot.sim.command("/liaison", f"山田 {i}回目の連絡", channel="C0TEAM")
    posts = team_posts(bot)
    assert len(posts) == 4
    gaps = [b.at - a.at for a, b in zip(posts, posts[1:])]
    assert min(gaps) >= 0.25, gaps


def test_a_burst_to_one_channel_does_not_hold_up_a_post_to_another(bot, unpaced):
    """Posts to one channel wait their turn in Slack's pace without taking
    the posting threads along: a note for another channel, written after
    ten for the team channel, goes out at once, and the team channel's
    posts keep their order."""
    unpaced.interval = 0.3
    for i in range(10):
        bot.sim.command("/liaison", f"山田 {i}回目の連絡", channel="C0TEAM")
    bot.sim.command("/liaison", "髙橋 別の連絡", channel="C0OTHER")
    other = team_posts(bot, channel="C0OTHER")
    team = team_posts(bot)
    assert len(other) == 1 and len(team) == 10
    assert other[0].at < team[3].at, [round(p.at - team[0].at, 2) for p in [*team, *other]]
    notes = [int(re.search(r"note:(\d+)", json.dumps(p.body))[1]) for p in team]  # the delivery key
    assert notes == sorted(notes)
