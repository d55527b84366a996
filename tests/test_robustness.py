"""Every command answers every input with something useful: thousands of
odd inputs, built from the pieces people really type, must never end in
the generic error reply, and every reply must render for both Slack and
the console."""

import random
import zlib

import pytest

from bot import commands
from bot.people import Handle, Place
from bot.render import render_text
from bot.requests import COMMAND, Request, Who
from bot.slack import blocks
from bot.slack.inbound import typed

PIECES = [
    "", " ", "　", "山田", "やまだ", "ﾔﾏﾀﾞ", "太郎", "P-0001", "p2", "Ｐ－０００３", "P-9999", "小林", "髙橋",
    "add", "list", "show", "team", "end", "consent", "channel", "help", "set", "full", "history", "facilities",
    "facility", "staff", "edit", "remove", "追加", "一覧", "満床", "履歴",
    "12/10", "12/10-12/14", "2/30", "13/45", "明日", "今週末", "2026-12-01", "11/20", "1/5-3/30", "昨日",
    "0", "-3", "999", "３", "2床", "女", "男", "吸引", "生活", "療養", "東地区", "鶴岡 東", "あおば苑", "みなと",
    "outcome=在宅看取り", "outcome=", "date=2026-11-20", "date=あした", "care=要介護２", "care=要支援3",
    "consent=はい", "consent=maybe", "area=", "=", "==", "key=value", "type=療養", "capacity=abc",
    "capacity=-1", "accepts=吸引,経管栄養", "contact=<@U0DEMOSS1>",
    "<@U0DEMONS1>", "<@U0DEMOPH1|tanaka>", "<#C0TEAM|team>", "<!channel>", "&lt;script&gt;", "&amp;",
    "<https://x.example|y>", "*太字*", "`code`", "\n", "😀", "\u200b", "ー", "・", "%", "'; DROP TABLE note;--",
    "あ" * 300, "9" * 30,
]


def _inputs(seed: int, count: int):
    rng = random.Random(seed)
    for _ in range(count):
        yield " ".join(rng.choice(PIECES) for _ in range(rng.randint(0, 6)))


@pytest.mark.parametrize("command", sorted(commands.COMMANDS))
@pytest.mark.parametrize("user", ["U0DEMOCM1", "U0DEMOSS1", "U0DEMOADM", "U0STRANGER"])
def test_no_input_ends_in_an_error(bot, command, user):
    for i, text in enumerate(_inputs(zlib.crc32(f"{command}{user}".encode()), 150)):
        plain, mentions = typed(text)
        who = Who(handle=Handle("slack", user), place=Place("slack", "C0TEAM"),
                  request_key=f"fuzz:{command}:{user}:{i}", mentions=mentions)
        reply = bot.runtime.handle(who, Request(COMMAND, command, plain))
        assert not reply.error, (command, text)
        if reply.form:
            blocks.view(reply.form)
            continue
        if reply.field_errors:
            continue
        assert render_text(reply.template, reply.values).strip(), (command, text)
        message = blocks.message(reply)
        assert message["blocks"] and all(len(b.get("text", {}).get("text", "")) <= 3000 for b in message["blocks"])
        assert all(blocks.registered_id(e["action_id"]) in commands.ACTIONS
                   for b in message["blocks"] if b["type"] == "actions" for e in b["elements"])
        for post in reply.posts:
            blocks.message(post)
