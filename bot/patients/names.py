"""Reading a typed name: `山田 太郎 やまだ たろう`, `髙橋 ハナ たかはし はな`.
The name comes first and its reading (ふりがな) last; the reading is
optional, and a given name is often written in kana itself (ハナ, キヨ, はる),
so a trailing kana word may belong to either. Only splits we can be sure of
are taken; anything else is asked."""

from __future__ import annotations

import re

import jaconv

from bot.lookup import fold

_KANA_WORD = re.compile(r"[\u3041-\u309f\u30a0-\u30ffー・]+")
NO_READING = "-"  # `kana=-`: the name has no reading given


def _is_kana(word: str) -> bool:
    return bool(_KANA_WORD.fullmatch(fold(word)))


def reading_of(text: str) -> str:
    """A reading as stored: katakana, words separated by one space."""
    return " ".join(jaconv.hira2kata(fold(w)) for w in text.replace("_", " ").split())


def splits(words: list[str]) -> list[tuple[str, str]]:
    """Every (name, reading) the words could mean, the surest first. One
    entry: take it. Several: ask which."""
    n = len(words)
    kana_tail = 0
    while kana_tail < n and _is_kana(words[n - 1 - kana_tail]):
        kana_tail += 1
    if kana_tail == 0:
        return [(" ".join(words), "")]
    if kana_tail == n:  # a name written in kana is its own reading
        return [(" ".join(words), reading_of(" ".join(words)))]
    options = []
    for j in range(kana_tail, -1, -1):
        name_words, reading_words = words[:n - j], words[n - j:]
        options.append((" ".join(name_words), reading_of(" ".join(reading_words)), len(name_words), j))
    # Sure: a reading of as many words as the name, for a name of two words
    # or more (family and given name), and the kana of the name agreeing
    # with the reading where the name has kana.
    sure = [(name, reading) for name, reading, name_len, j in options
            if j == name_len and name_len >= 2 and _agrees(name, reading)]
    if len(sure) == 1:
        return sure
    return [(name, reading) for name, reading, _, _ in options]


def _agrees(name: str, reading: str) -> bool:
    return all(not _is_kana(n) or reading_of(n) == r for n, r in zip(name.split(), reading.split()))
