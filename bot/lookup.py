"""Japanese-aware fuzzy lookup for patients, facilities and anything named.

Keys are normalised once when the index is built, the query once per search:
full/half width folded (NFKC), hiragana folded to katakana, spaces and
middle dots dropped, common name-kanji variants (髙→高, 邊→辺, ...) folded.
Matching then goes exact → substring → rapidfuzz
`ratio` (cheap enough for 100k keys; WRatio is ten times slower)."""

from __future__ import annotations

import html
import re
import unicodedata
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Callable, Generic, Iterable, TypeVar

import jaconv
from rapidfuzz import fuzz, process

from bot.people import as_typed

T = TypeVar("T")
MAX_QUERY = 200  # characters of a query that are looked at

# Variant kanji that appear in family names and are typed either way.
_NAME_VARIANTS = str.maketrans({
    "髙": "高", "﨑": "崎", "嵜": "崎", "邊": "辺", "邉": "辺", "齋": "斎", "齊": "斎",
    "斉": "斎", "澤": "沢", "濱": "浜", "濵": "浜", "廣": "広", "櫻": "桜", "國": "国",
    "嶋": "島", "嶌": "島", "冨": "富", "德": "徳", "眞": "真", "實": "実", "惠": "恵",
    "藏": "蔵", "龍": "竜", "壽": "寿", "與": "与", "萬": "万", "來": "来", "團": "団",
    "ヶ": "ケ", "ヵ": "カ",
})
_DROP = re.compile(r"[\W_]+")  # spaces, dots, brackets, punctuation
# Honorifics typed after a name (山田さん, 髙橋様), as they read once normalised.
_HONORIFIC = re.compile(r"(?<=..)(サン|サマ|様|氏|殿|クン|チャン)$")
_DASHES = str.maketrans({"ー": "-", "−": "-", "‐": "-", "–": "-", "—": "-", "―": "-"})


def fold(text: str) -> str:
    """Full-width letters, digits and symbols to half-width; half-width kana
    to full-width (NFKC). Case and kana kind are kept."""
    return unicodedata.normalize("NFKC", text)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", html.unescape(as_typed(text)))
    text = jaconv.hira2kata(text).translate(_NAME_VARIANTS)
    return _DROP.sub("", text).casefold()


def normalise_code(text: str, prefix: str) -> str | None:
    """`P-0007`, `p7`, `Ｐ－０００７`, `P0007` -> `P-0007`; anything else -> None."""
    text = unicodedata.normalize("NFKC", html.unescape(as_typed(text))).strip().translate(_DASHES)
    m = re.fullmatch(rf"{prefix}-?0*(\d{{1,6}})", text, flags=re.IGNORECASE)
    return f"{prefix.upper()}-{int(m.group(1)):04d}" if m else None


def _pieces(key: str) -> set[str]:
    """What the inverted index lists a key under: each character and each
    two-character run (a query of one character, such as the family name
    森, is found by the first; longer ones by their rarest run)."""
    return {*key, *(key[j:j + 2] for j in range(len(key) - 1))}


@dataclass
class Match(Generic[T]):
    """`one`: act on `items[0]`. `many`: ask which. `none`: `items` are suggestions."""

    kind: str
    query: str
    items: list[T] = field(default_factory=list)

    @property
    def item(self) -> T:
        return self.items[0]


class FuzzyIndex(Generic[T]):
    """Exact keys are a dict; substrings are found through an inverted index
    of characters and two-character runs (only the keys holding the query's
    rarest run are compared), so a search costs about the same at 100 or
    100,000 items. `ident` (an item's id, items given in ascending id order) lets
    `only` cut a small index of some items (a member's own patients) out of
    a big one without normalising anything again."""

    CLEAR = 75  # a fuzzy score this high, well ahead of the next, acts at once
    CLOSE = 60  # worth offering as a choice
    HINT = 30   # worth naming as "did you mean"
    MARGIN = 10
    PIECES_FROM = 2_000  # keys: fewer are compared one by one, faster than any index
    FUZZY_POOL = 5_000  # keys sharing a piece with a typo: more, and only those sharing two are scored

    def __init__(self, items: Iterable[T], keys: Callable[[T], Iterable[str]],
                 ident: Callable[[T], int] | None = None, code_prefix: str = ""):
        """`code_prefix` (needs `ident`): items are also found by their
        code, the prefix and the id (`P-0007` for patient 7)."""
        self._build(((item, keys(item)) for item in items), ident, code_prefix)

    @classmethod
    def of_pairs(cls, pairs: Iterable[tuple[T, Iterable[str]]], ident: Callable[[T], int] | None = None,
                 code_prefix: str = "") -> "FuzzyIndex[T]":
        """The same from (item, its keys) pairs, read as they come: a big
        index built from a query never holds all its rows at once."""
        index: FuzzyIndex[T] = cls.__new__(cls)
        index._build(pairs, ident, code_prefix)
        return index

    def _build(self, pairs: Iterable[tuple[T, Iterable[str]]], ident: Callable[[T], int] | None,
               code_prefix: str) -> None:
        items: list[T] = []
        normalised: list[list[str]] = []
        # Equal keys share one string: names and readings repeat (佐藤, 和子,
        # サトウカズコ), and the keys are most of a big index's memory.
        shared: dict[str, str] = {}
        for item, item_keys in pairs:
            items.append(item)
            normalised.append(sorted({shared.setdefault(n, n) for n in (normalise(k) for k in item_keys if k) if n}))
        self._fill(items, normalised, code_prefix, [ident(i) for i in items] if ident else None)

    def _fill(self, items: list[T], keys: list[list[str]], code_prefix: str, ids: list[int] | None) -> None:
        self.items = items
        self._code_prefix = code_prefix
        self._keys: list[str] = []
        self._owner = array("i")
        self._first_key = array("i")  # item i's keys are _keys[_first_key[i]:_first_key[i + 1]]
        for item_keys in keys:
            self._first_key.append(len(self._keys))
            for key in item_keys:
                self._keys.append(key)
                self._owner.append(len(self._first_key) - 1)
        self._first_key.append(len(self._keys))
        self._ids = array("q", ids) if ids is not None else None
        # A small index finds exact keys in a dict; a big one through the
        # inverted index below (a dict of 200,000 keys with a tuple each was
        # 23 MB of the patient index's 37, in every process).
        self._exact: dict[str, tuple[int, ...]] | None = None
        self._pieces: dict[str, array] | None = None
        if len(self._keys) < self.PIECES_FROM:
            self._exact = {}
            for position, key in enumerate(self._keys):
                self._exact[key] = (*self._exact.get(key, ()), self._owner[position])
            return
        # Each posting lists its keys shortest first (then in item order),
        # the order results are offered in, so a search stops early. Built
        # straight into arrays: lists of 1.8 million int objects first made
        # the process 60 MB bigger for good (freed, but not given back).
        by_length: dict[int, array] = {}
        for position, key in enumerate(self._keys):
            by_length.setdefault(len(key), array("i")).append(position)
        self._pieces = {}
        for length in sorted(by_length):
            for position in by_length[length]:
                for piece in _pieces(self._keys[position]):
                    posting = self._pieces.get(piece)
                    if posting is None:
                        posting = self._pieces[piece] = array("i")
                    posting.append(position)

    def only(self, ids: Iterable[int]) -> "FuzzyIndex[T]":
        """A small index of the items with these ids (needs `ident`)."""
        assert self._ids is not None, "built without ident"
        found = (self._position(i) for i in sorted(set(ids)))
        wanted = [i for i in found if i is not None]
        part: FuzzyIndex[T] = FuzzyIndex.__new__(FuzzyIndex)
        part._fill([self.items[i] for i in wanted],
                   [self._keys[self._first_key[i]:self._first_key[i + 1]] for i in wanted],
                   self._code_prefix, [self._ids[i] for i in wanted])
        return part

    def _position(self, item_id: int) -> int | None:
        """Where the item with this id is in `items` (ids are ascending)."""
        if self._ids is None:
            return None
        i = bisect_left(self._ids, item_id)
        return i if i < len(self._ids) and self._ids[i] == item_id else None

    def exact(self, query: str) -> list[T]:
        """Items with a key equal to `query` once both are normalised."""
        return [self.items[i] for i in self._equal(normalise(query))]

    def _equal(self, q: str) -> list[int]:
        """The items with a key equal to `q` (normalised), in item order."""
        if self._exact is not None:
            return list(self._exact.get(q, ()))
        posting = self._rarest(q)
        if not posting:
            return []
        # Keys of q's length sit together in a posting (shortest first).
        keys, owner = self._keys, self._owner
        start = bisect_left(posting, len(q), key=lambda p: len(keys[p]))
        found: dict[int, None] = {}
        for p in posting[start:]:
            key = keys[p]
            if len(key) != len(q):
                break
            if key == q:
                found[owner[p]] = None
        return list(found)

    def _rarest(self, q: str) -> array | None:
        """The shortest posting among q's pieces; None if a piece is in no key."""
        postings = []
        for piece in _pieces(q) if len(q) > 1 else (q,):
            posting = self._pieces.get(piece)
            if posting is None:
                return None
            postings.append(posting)
        return min(postings, key=len)

    def search(self, query: str, limit: int = 5, fuzzy: bool = True) -> Match[T]:
        # No name is this long: a pasted page would only cost time to fold and score.
        q = _HONORIFIC.sub("", normalise(query[:MAX_QUERY]))
        if not q:
            return Match("none", query)
        if self._code_prefix:
            code = normalise_code(query, self._code_prefix)
            if code is not None:
                found = self._position(int(code.rpartition("-")[2]))
                return Match("none", query) if found is None else Match("one", query, [self.items[found]])
        exact = self._equal(q)
        if exact:
            return self._decide(query, exact, limit)
        # Shorter keys first: "山田" prefers 山田花子 over 山田川ホーム.
        contains = self._holding(q, limit + 1)
        if contains:
            return self._decide(query, contains, limit)
        if not fuzzy:
            return Match("none", query)
        return self._fuzzy(query, q, limit)

    def _holding(self, q: str, enough: int) -> list[int]:
        """The items with a key that contains `q`, shortest key first, as
        many as `enough` (all when they are compared one by one)."""
        keys, owner = self._keys, self._owner
        if self._pieces is None:
            ranked = sorted((len(key), owner[p]) for p, key in enumerate(keys) if q in key)
            return self._unique(i for _, i in ranked)
        posting = self._rarest(q)
        if posting is None:
            return []
        found: dict[int, None] = {}
        for p in posting:
            if q in keys[p]:
                found[owner[p]] = None
                if len(found) >= enough:
                    break
        return list(found)

    def _fuzzy(self, query: str, q: str, limit: int) -> Match[T]:
        positions = self._fuzzy_pool(q)
        choices = self._keys if positions is None else [self._keys[p] for p in positions]
        best: dict[int, float] = {}
        for _key, score, at in process.extract(q, choices, scorer=fuzz.ratio, limit=limit * 4,
                                               score_cutoff=self.HINT):
            owner = self._owner[at if positions is None else positions[at]]
            best[owner] = max(best.get(owner, 0.0), score)
        ranked = sorted(best.items(), key=lambda kv: -kv[1])
        if not ranked:
            return Match("none", query)
        top = ranked[0][1]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        if top >= self.CLEAR and top - second >= self.MARGIN:
            return Match("one", query, [self.items[ranked[0][0]]])
        close = [self.items[i] for i, s in ranked if s >= self.CLOSE][:limit]
        if close:
            return Match("many", query, close)
        return Match("none", query, [self.items[i] for i, _ in ranked[:3]])

    def _fuzzy_pool(self, q: str) -> list[int] | None:
        """The keys worth scoring against a typo: in a big index, those that
        share a two-character piece with it (a key sharing none scores too
        low to be offered); None: all of them."""
        if self._pieces is None or len(q) < 2:
            return None
        # Sets and their C-level union and intersections: counting every
        # position in Python (a Counter, then a pass over it) was most of a
        # typo's search at 100,000 patients (1.1 of 1.2 ms).
        holding = [set(posting) for piece in _pieces(q) - set(q) if (posting := self._pieces.get(piece))]
        anyone = set().union(*holding)
        if len(anyone) <= self.FUZZY_POOL:
            return sorted(anyone)
        twice: set[int] = set()
        for i, some in enumerate(holding):
            for other in holding[i + 1:]:
                twice |= some & other
        return sorted(twice)

    def _decide(self, query: str, owners: list[int], limit: int) -> Match[T]:
        if len(owners) == 1:
            return Match("one", query, [self.items[owners[0]]])
        return Match("many", query, [self.items[i] for i in owners[:limit]])

    @staticmethod
    def _unique(owners: Iterable[int]) -> list[int]:
        return list(dict.fromkeys(owners))

    def search_leading(self, text: str, max_words: int = 3) -> tuple[Match[T], str]:
        """Find the item named at the start of `text`, return it and the rest.

        `山田 太郎 熱が出ました`, `やまだ list` and `P-0003 list 5` all work: the
        longest leading run of words that names something exactly (or as a
        substring) wins; failing that, the first word is matched fuzzily."""
        words = list(re.finditer(r"\S+", text))
        if not words:
            return Match("none", ""), ""

        def rest_after(n: int) -> str:
            # The rest keeps the user's own line breaks and markup untouched.
            return text[words[n - 1].end():].strip()

        for n in range(min(max_words, len(words)), 0, -1):
            if not normalise(words[n - 1].group()):
                continue  # `山田 ！ …`: the mark belongs to the rest, not to the name
            m = self.search(" ".join(w.group() for w in words[:n]), fuzzy=False)
            if m.kind != "none":
                return m, rest_after(n)
        return self.search(words[0].group()), rest_after(1)
