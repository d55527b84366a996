"""Splitting command text the way people type it: full-width or half-width,
`key=value` or `key＝value`, Japanese or English option names, mentions."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from bot.lookup import fold, unwrap_slack  # noqa: F401 (fold is re-exported for commands)

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")


@dataclass
class Args:
    words: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    mentions: list[tuple[str, str]] = field(default_factory=list)  # (user id, label)
    channels: list[str] = field(default_factory=list)

    @property
    def rest(self) -> str:
        return " ".join(self.words)


def parse(text: str, aliases: dict[str, str] | None = None) -> Args:
    """`aliases` maps accepted option names (e.g. `地区`) to canonical ones."""
    aliases = aliases or {}
    args = Args()
    args.mentions = [(m[1], m[2] or "") for m in _MENTION.finditer(text)]
    args.channels = [m[1] for m in _CHANNEL.finditer(text)]
    text = _CHANNEL.sub(" ", _MENTION.sub(" ", text))
    for word in unwrap_slack(text).split():
        folded = fold(word)
        if "=" in folded and not folded.startswith("="):
            key, value = folded.split("=", 1)
            key = key.strip().lower()
            args.options[aliases.get(key, key)] = value.strip()
        else:
            args.words.append(word)
    return args


def typed_text(text: str) -> str:
    """Free text as the user typed it: Slack's `&amp; &lt; &gt;` decoded, any
    markup (`<@U1>`, `<!channel>`) kept as literal characters. Rendering
    escapes it again, so it displays literally and pings nobody."""
    return html.unescape(text).strip()


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
