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
    CLEAR = 75  # a fuzzy score this high, well ahead of the next, acts at once
    CLOSE = 60  # worth offering as a choice
    HINT = 30   # worth naming as "did you mean"
    MARGIN = 10

    def __init__(self, items: Iterable[T], keys: Callable[[T], Iterable[str]],
                 code: Callable[[T], str] | None = None, code_prefix: str = ""):
        self.items: list[T] = list(items)
        self._code_prefix = code_prefix
        self._keys: list[str] = []
        self._owner: list[int] = []
        self._codes: dict[str, int] = {}
        for i, item in enumerate(self.items):
            for key in {normalise(k) for k in keys(item) if k}:
                if key:
                    self._keys.append(key)
                    self._owner.append(i)
            if code is not None:
                self._codes[code(item)] = i

    def exact(self, query: str) -> list[T]:
        """Items with a key equal to `query` once both are normalised."""
        q = normalise(query)
        return [self.items[i] for i in self._unique(i for k, i in zip(self._keys, self._owner) if k == q)]

    def search(self, query: str, limit: int = 5, fuzzy: bool = True,
               keep: Callable[[T], bool] | None = None) -> Match[T]:
        """`keep`: only items it accepts can be found or suggested (a member
        outside a care team must not learn that a patient exists)."""
        # No name is this long: a pasted page would only cost time to fold and score.
        q = _HONORIFIC.sub("", normalise(query[:MAX_QUERY]))
        if not q:
            return Match("none", query)
        allowed = (lambda i: keep(self.items[i])) if keep else (lambda i: True)
        if self._code_prefix:
            code = normalise_code(query, self._code_prefix)
            if code is not None:
                found = self._codes.get(code)
                if found is not None and allowed(found):
                    return Match("one", query, [self.items[found]])
                return Match("none", query)
        exact = self._unique(i for k, i in zip(self._keys, self._owner) if k == q and allowed(i))
        if exact:
            return self._decide(query, exact, limit)
        # Shorter keys first: "山田" prefers 山田花子 over 山田川ホーム.
        contains = sorted(
            ((len(k), i) for k, i in zip(self._keys, self._owner) if q in k and allowed(i))
        )
        contains = self._unique(i for _, i in contains)
        if contains:
            return self._decide(query, contains, limit)
        if not fuzzy:
            return Match("none", query)
        return self._fuzzy(query, q, limit, allowed if keep else None)

    def _fuzzy(self, query: str, q: str, limit: int, allowed: Callable[[int], bool] | None = None) -> Match[T]:
        best: dict[int, float] = {}
        for _key, score, pos in process.extract(
            q, self._keys, scorer=fuzz.ratio, limit=None if allowed else limit * 4, score_cutoff=self.HINT
        ):
            owner = self._owner[pos]
            if allowed and not allowed(owner):
                continue
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

    def _decide(self, query: str, owners: list[int], limit: int) -> Match[T]:
        if len(owners) == 1:
            return Match("one", query, [self.items[owners[0]]])
        return Match("many", query, [self.items[i] for i in owners[:limit]])

    @staticmethod
    def _unique(owners: Iterable[int]) -> list[int]:
        return list(dict.fromkeys(owners))

    def search_leading(self, text: str, max_words: int = 3,
                       keep: Callable[[T], bool] | None = None) -> tuple[Match[T], str]:
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
            m = self.search(" ".join(w.group() for w in words[:n]), fuzzy=False, keep=keep)
            if m.kind != "none":
                return m, rest_after(n)
        return self.search(words[0].group(), keep=keep), rest_after(1)
