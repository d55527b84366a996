"""The words people use for facility types, sexes and care needs, folded
to the one value stored."""

from __future__ import annotations

from bot.lookup import normalise

KINDS = ("短期入所生活介護", "短期入所療養介護")
_KIND_WORDS = {
    "短期入所生活介護": KINDS[0], "生活介護": KINDS[0], "生活": KINDS[0], "ショートステイ生活": KINDS[0],
    "短期入所療養介護": KINDS[1], "療養介護": KINDS[1], "療養": KINDS[1], "医療型": KINDS[1],
}
KIND_WORDS = {normalise(k): v for k, v in _KIND_WORDS.items()}
SHORT_KIND = {KINDS[0]: "生活", KINDS[1]: "療養"}

ANY_SEX = "どちらでも"
SEXES = ("男", "女", ANY_SEX)
SEX_WORDS = {normalise(k): v for k, v in {
    "男": "男", "男性": "男", "男のみ": "男", "m": "男", "male": "男",
    "女": "女", "女性": "女", "女のみ": "女", "f": "女", "female": "女",
    "どちらでも": ANY_SEX, "男女": ANY_SEX, "両方": ANY_SEX, "any": ANY_SEX,
}.items()}

# Canonical care needs (医療処置等) and what people type for them.
NEEDS = {
    "経管栄養": ("経管栄養", "経管", "胃ろう", "胃瘻", "鼻腔栄養", "経鼻栄養"),
    "喀痰吸引": ("喀痰吸引", "吸引", "痰吸引", "たん吸引", "かくたん吸引"),
    "インスリン": ("インスリン", "インシュリン"),
    "認知症対応": ("認知症対応", "認知症"),
    "在宅酸素": ("在宅酸素", "酸素", "hot"),
    "ストーマ": ("ストーマ", "人工肛門"),
    "褥瘡処置": ("褥瘡処置", "褥瘡", "床ずれ"),
    "透析": ("透析",),
}
NEED_WORDS = {normalise(w): need for need, words in NEEDS.items() for w in words}


def kind_of(word: str) -> str | None:
    return KIND_WORDS.get(normalise(word))


def sex_of(word: str) -> str | None:
    return SEX_WORDS.get(normalise(word))


def need_of(word: str) -> str | None:
    return NEED_WORDS.get(normalise(word))


def parse_needs(text: str) -> tuple[list[str], list[str]]:
    """`吸引,経管栄養、インスリン` -> (canonical needs, words not understood)."""
    needs, unknown = [], []
    for word in text.replace("、", ",").replace("・", ",").replace("/", ",").split(","):
        if not word.strip():
            continue
        need = need_of(word)
        if need is None:
            unknown.append(word.strip())
        elif need not in needs:
            needs.append(need)
    return needs, unknown


def needs_list(accepts: str) -> list[str]:
    return [a for a in accepts.split(",") if a]
