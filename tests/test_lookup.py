"""Patient lookup with the Japanese input people really type."""

import pytest

from bot.lookup import FuzzyIndex, normalise, normalise_code

PATIENTS = [
    ("P-0001", "山田 太郎", "ヤマダ タロウ"),
    ("P-0002", "山田 花子", "ヤマダ ハナコ"),
    ("P-0003", "髙橋 一郎", "タカハシ イチロウ"),
    ("P-0004", "佐藤 ミツ", "サトウ ミツ"),
    ("P-0005", "渡邊 清", "ワタナベ キヨシ"),
]


@pytest.fixture
def index():
    return FuzzyIndex(PATIENTS, keys=lambda p: (p[1], p[2]), ident=lambda p: int(p[0][2:]), code_prefix="P")


@pytest.mark.parametrize("query,code", [
    ("山田太郎", "P-0001"),            # no space
    ("山田　太郎", "P-0001"),          # ideographic space
    ("やまだ たろう", "P-0001"),       # hiragana reading
    ("ﾔﾏﾀﾞ ﾀﾛｳ", "P-0001"),           # half-width katakana
    ("山田太朗", "P-0001"),            # wrong kanji (typo)
    ("やまだたろ", "P-0001"),          # missing character
    ("高橋", "P-0003"),                # 髙 typed as 高
    ("たかはし", "P-0003"),
    ("渡辺", "P-0005"),                # 邊 typed as 辺
    ("p3", "P-0003"),                  # short code
    ("Ｐ－０００４", "P-0004"),        # full-width code
    ("P0005", "P-0005"),
    ("@佐藤", "P-0004"),                # a Slack mention, as the glue passes it on
    ("&lt;さとう みつ&gt;", "P-0004"),  # Slack-escaped brackets
])
def test_one_clear_match(index, query, code):
    match = index.search(query)
    assert match.kind == "one", (query, match)
    assert match.item[0] == code


def test_family_name_shared_by_two_asks_which(index):
    match = index.search("山田")
    assert match.kind == "many"
    assert {p[0] for p in match.items} == {"P-0001", "P-0002"}


def test_nothing_close_is_none_with_suggestions(index):
    assert index.search("鈴木").kind == "none"
    match = index.search("佐籐")  # 藤 mistyped as 籐: too far to act on, still suggested
    assert match.kind == "none" and match.items[0][0] == "P-0004"


def test_unknown_code_is_not_fuzzy_matched(index):
    assert index.search("P-0099").kind == "none"


def test_leading_name_and_rest_keeps_the_text(index):
    match, rest = index.search_leading("やまだ たろう 熱が\n38度 <@U1>")
    assert match.item[0] == "P-0001" and rest == "熱が\n38度 <@U1>"
    match, rest = index.search_leading("P-0003 list 5")
    assert match.item[0] == "P-0003" and rest == "list 5"


def test_normalise_and_code():
    assert normalise("ﾔﾏﾀﾞ・ﾀﾛｳ") == normalise("やまだ たろう") == "ヤマダタロウ".casefold()
    assert normalise_code("ｐ－７", "P") == "P-0007"
    assert normalise_code("山田", "P") is None


def test_a_slack_mention_reaches_lookup_as_its_name(index):
    from bot.people import as_typed
    from bot.slack.inbound import typed

    text, mentions = typed("<@U123|佐藤> 本日訪問")
    assert [m.external_id for m in mentions] == ["U123"]
    assert as_typed(text).split() == ["@佐藤", "本日訪問"]
    assert index.search_leading(text)[0].kind == "one"
