"""Slack's flavour of the text templates: mrkdwn in which *every* `{{ … }}`
is escaped (`&`, `<`, `>`) unless a filter marked it as our own markup
(`who`, `b`, `chan`). A template cannot forget to escape user text, so
nothing typed can become a mention, a channel ping or a disguised link."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment

from bot.people import Place
from bot.render import make_environment

PLATFORM = "slack"
SECTION_LIMIT = 2900  # Slack refuses section text over 3000 characters


class SlackMarkup(str):
    """Text that is already valid Slack markup and must not be escaped again."""


def escape(text: Any) -> str:
    if isinstance(text, SlackMarkup):
        return text
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _who(member) -> SlackMarkup:
    user = member.handle(PLATFORM)
    return SlackMarkup(f"<@{user}>") if user else SlackMarkup(escape(member.display_name or "—"))


def _chan(text: str | None) -> SlackMarkup:
    place = Place.parse(text)
    if place and place.platform == PLATFORM:
        return SlackMarkup(f"<#{escape(place.id)}>")
    return SlackMarkup(escape(text or ""))


@lru_cache(maxsize=None)
def environment() -> Environment:
    return make_environment(finalize=escape, who=_who, b=lambda v: SlackMarkup(f"*{escape(v)}*"), chan=_chan)


def render(template: str, values: dict[str, Any]) -> str:
    return environment().get_template(f"{template}.txt.j2").render(**values).strip()


def sections(text: str) -> list[dict[str, Any]]:
    """Plain mrkdwn sections, split on line boundaries to stay under Slack's limit."""
    chunks: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > SECTION_LIMIT:
            if current:
                chunks.append(current)
            current = ""
            chunks.append(line[:SECTION_LIMIT])
            line = line[SECTION_LIMIT:]
        if len(current) + len(line) > SECTION_LIMIT:
            chunks.append(current)
            current = ""
        current += line
    if current.strip():
        chunks.append(current)
    return [{"type": "section", "text": {"type": "mrkdwn", "text": c.rstrip("\n")}} for c in chunks]
