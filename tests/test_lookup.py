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


def _big(pieces_from: int) -> FuzzyIndex:
    """3,000 patients (6,000 keys): past PIECES_FROM, so searches go through
    the inverted index; `pieces_from` above that forces the one-by-one path."""
    families = ["山田", "髙橋", "佐藤", "森", "小林", "渡邊", "中村", "森田", "山中", "林"]
    givens = ["太郎", "花子", "ミツ", "清", "一郎", "はる", "キヨ", "次郎", "和子", "勝"]
    readings = {"山田": "ヤマダ", "髙橋": "タカハシ", "佐藤": "サトウ", "森": "モリ", "小林": "コバヤシ",
                "渡邊": "ワタナベ", "中村": "ナカムラ", "森田": "モリタ", "山中": "ヤマナカ", "林": "ハヤシ"}
    rows = [(f"P-{i:04d}", f"{families[i % 10]} {givens[i // 10 % 10]}{'' if i < 100 else i}",
             f"{readings[families[i % 10]]} {i}") for i in range(1, 3001)]

    class Index(FuzzyIndex):
        PIECES_FROM = pieces_from

    return Index(rows, keys=lambda p: (p[1], p[2]), ident=lambda p: int(p[0][2:]), code_prefix="P")


@pytest.mark.parametrize("query", ["山田 太郎", "森", "林", "もり", "森田 花子", "ヤマナカ 12", "小林一郎",
                                   "佐藤ミツ2", "渡辺 清", "山田太朗", "さとう", "P-2999", "中村 和子1234"])
def test_the_inverted_index_finds_what_comparing_every_key_finds(query):
    indexed, linear = _big(2_000), _big(10 ** 9)
    assert indexed._pieces is not None and linear._pieces is None
    got, want = indexed.search(query), linear.search(query)
    assert (got.kind, got.items) == (want.kind, want.items), query


@pytest.mark.parametrize("pool", [10 ** 6, 100])  # all sharing one run; past the pool, those sharing two
@pytest.mark.parametrize("query", ["山田太朗", "佐藤ミツ2", "サトウ 1〇", "森田 花了", "ヤマダ 2"])
def test_a_typos_candidates_are_the_keys_sharing_its_runs(pool, query):
    """The keys a typo is scored against, found with sets (bot.lookup): the
    same positions as counting every shared run per key, both below the
    pool size and past it."""
    from collections import Counter

    from bot.lookup import _pieces

    index = _big(2_000)
    index.FUZZY_POOL = pool
    q = normalise(query)
    shared: Counter[int] = Counter()
    for piece in _pieces(q) - set(q):
        shared.update(index._pieces.get(piece, ()))
    want = sorted(p for p, n in shared.items() if n >= 2) if len(shared) > pool else sorted(shared)
    got = index._fuzzy_pool(q)
    assert got == want and got, query


def test_only_cuts_some_items_out_without_losing_their_keys_or_codes():
    mine = _big(2_000).only([2, 12, 22, 4000])  # 4000 does not exist
    assert [p[0] for p in mine.items] == ["P-0002", "P-0012", "P-0022"]
    assert {p[0] for p in mine.search("佐藤").items} == {"P-0002", "P-0012", "P-0022"}  # nobody else's
    assert mine.search("佐藤 ミツ").item[0] == "P-0022"
    assert mine.search("サトウ 12").item[0] == "P-0012"
    assert mine.search("P-22").item[0] == "P-0022"
    assert mine.search("P-0003").kind == "none"  # someone else's code finds nothing
