"""People and places, the same for every front end.

A member has one identity per platform (`slack:U0123`, later `teams:29:…`);
a post goes to a `Place` (platform + channel id); audit rows name actors
platform-qualified. Mentions arrive already resolved: the front end swaps
each one in the typed text for a reference token (see `mention_token`)
before the command sees it, so no command parses a platform's syntax."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Private-use characters: no keyboard types them, and they survive width
# folding untouched. A phone's paste can, so every front end passes what
# people type through `untokened` before it puts its own tokens in: a
# token in the core was always put there by a front end.
# A token is OPEN, kind (m: member, c: channel), reference, SEP, what was
# typed (shown again where free text keeps what the person wrote), CLOSE.
_OPEN, _SEP, _CLOSE = "\ue000", "\ue002", "\ue001"
TOKEN = re.compile(f"{_OPEN}([mc])([^{_SEP}{_CLOSE}]*){_SEP}?([^{_CLOSE}]*){_CLOSE}")
_TOKEN_CHARS = re.compile(f"[{_OPEN}{_SEP}{_CLOSE}]")


def untokened(text: str) -> str:
    """What a person typed, without the characters tokens are made of, so
    nothing typed can pass for a resolved mention or channel."""
    return _TOKEN_CHARS.sub("", text) if _TOKEN_CHARS.search(text) else text


@dataclass(frozen=True)
class Place:
    """A channel (or a chat) on one platform."""

    platform: str
    id: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.id}"

    @classmethod
    def parse(cls, text: object) -> "Place | None":
        """`slack:C0123`; None for anything else (form metadata may hold anything)."""
        if not isinstance(text, str) or ":" not in text:
            return None
        platform, _, ident = text.partition(":")
        return cls(platform, ident)


@dataclass(frozen=True)
class Handle:
    """One platform identity of a person, as the front end knows it."""

    platform: str
    external_id: str
    label: str = ""

    def __str__(self) -> str:
        return f"{self.platform}:{self.external_id}"

    @classmethod
    def parse(cls, text: str, default_platform: str = "slack") -> "Handle":
        """`slack:U0123`, or a bare `U0123` on the default platform (files
        written by hand, such as a CSV team column or a plan's owners)."""
        platform, _, external_id = text.strip().rpartition(":")
        return cls(platform or default_platform, external_id)


def qualified(platform: str, external_id: str) -> str:
    return f"{platform}:{external_id}"


def mention_token(index: int, typed: str = "") -> str:
    """The stand-in a front end puts where the n-th mention was typed."""
    return f"{_OPEN}m{index}{_SEP}{typed}{_CLOSE}"


def channel_token(place: Place, typed: str = "") -> str:
    return f"{_OPEN}c{place}{_SEP}{typed}{_CLOSE}"


def member_token(member_id: int, typed: str = "") -> str:
    """What a mention becomes once resolved to a member (see Runtime)."""
    return f"{_OPEN}m#{member_id}{_SEP}{typed}{_CLOSE}"


def as_typed(text: str) -> str:
    """Free text (a note's body) as the person wrote it, tokens undone."""
    return TOKEN.sub(lambda m: m[3], text)
