"""Splitting command text the way people type it: full-width or half-width,
`key=value` or `key＝value`, Japanese or English option names. Mentions and
channels arrive as tokens the front end and the runtime put in
(`bot.people`), never in a platform's own syntax."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.lookup import fold
from bot.numbers import TOO_BIG, hash_id, row_id, whole_number
from bot.people import TOKEN, Place, as_typed

__all__ = ["Args", "parse", "typed_text", "membership_verb", "first_word", "fold", "row_id", "hash_id",
           "whole_number", "TOO_BIG"]


@dataclass
class Args:
    words: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    mentions: list[int] = field(default_factory=list)  # Member ids, in the order typed
    channels: list[Place] = field(default_factory=list)

    @property
    def rest(self) -> str:
        return " ".join(self.words)


def parse(text: str, aliases: dict[str, str] | None = None, spaced: frozenset[str] = frozenset()) -> Args:
    """`aliases` maps accepted option names (e.g. `地区`) to canonical ones.
    Options named in `spaced` take the plain words after them too, so
    `name=老健 さくら苑` keeps the whole name."""
    aliases = aliases or {}
    args = Args()
    last_key = None
    for kind, ref, _typed in TOKEN.findall(text):
        if kind == "m" and ref.startswith("#") and (member_id := row_id(ref[1:])):
            args.mentions.append(member_id)
        elif kind == "c" and (place := Place.parse(ref)):
            args.channels.append(place)
    for word in TOKEN.sub(" ", text).split():
        folded = fold(word)
        if "=" in folded and not folded.startswith("="):
            key, value = folded.split("=", 1)
            key = key.strip().lower()
            last_key = aliases.get(key, key)
            args.options[last_key] = value.strip()
        elif last_key in spaced:
            args.options[last_key] = f"{args.options[last_key]} {word}".strip()
        else:
            args.words.append(word)
    return args


def typed_text(text: str) -> str:
    """Free text as the user typed it, mentions and any markup kept as
    literal characters: rendering escapes it again, so it displays
    literally and pings nobody."""
    return as_typed(text).strip()


MEMBERSHIP_VERBS = {"追加": "add", "削除": "remove", "外す": "remove", "rm": "remove", "一覧": "list"}


def membership_verb(text: str) -> tuple[str, str]:
    """`add @a @b`, `追加 @a`, `remove @a`, `外す @a` -> ("add"|"remove"|"list"|other, rest)."""
    verb, rest = first_word(text)
    return MEMBERSHIP_VERBS.get(verb, verb), rest


def first_word(text: str) -> tuple[str, str]:
    """(subcommand folded to lower case, the rest of the raw text)."""
    parts = text.strip().split(None, 1)
    if not parts:
        return "", ""
    return fold(parts[0]).lower(), parts[1] if len(parts) > 1 else ""

