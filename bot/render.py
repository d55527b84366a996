"""Jinja2 rendering of Replies. User-facing wording lives in `templates/`.

Every reply has a text template, `templates/text/<name>.txt.j2`. It is
rendered twice over:

- for the console as plain text;
- for Slack as mrkdwn, where *every* `{{ expression }}` is escaped (`&`, `<`,
  `>`) unless a filter marked it as our own markup (`who`, `b`). A template
  cannot forget to escape user text.

A reply that needs buttons or a richer layout also has
`templates/slack/<name>.json.j2`, which lays out Block Kit around `body()` (the
escaped mrkdwn text) and adds the actions. Without one, the text becomes
plain sections."""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
WEEKDAYS = "月火水木金土日"
SECTION_LIMIT = 2900  # Slack refuses section text over 3000 characters


class SlackMarkup(str):
    """Text that is already valid Slack markup and must not be escaped again."""


def slack_escape(text: Any) -> str:
    """Slack's three control characters; after this nothing a user typed can
    become a mention, a channel ping or a disguised link."""
    if isinstance(text, SlackMarkup):
        return text
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_display_tz = ZoneInfo("Asia/Tokyo")


def set_display_timezone(name: str) -> None:
    """Times are stored in UTC and shown in one zone per deployment
    (RENKEI_TIMEZONE); templates need not pass it around."""
    global _display_tz
    _display_tz = ZoneInfo(name)


def when(value: datetime | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        local = value.astimezone(_display_tz)
        return f"{local.month}/{local.day}({WEEKDAYS[local.weekday()]}) {local:%H:%M}"
    return f"{value.month}/{value.day}({WEEKDAYS[value.weekday()]})"


def ago(value: datetime, now: datetime) -> str:
    minutes = int((now - value).total_seconds() // 60)
    if minutes < 1:
        return "たった今"
    if minutes < 60:
        return f"{minutes}分前"
    if minutes < 48 * 60:
        return f"{minutes // 60}時間前"
    return f"{minutes // (24 * 60)}日前"


def _common(env: Environment) -> Environment:
    env.filters["when"] = when
    env.filters["ago"] = ago
    env.filters["clip"] = lambda v, n: v if len(v) <= n else v[: n - 1] + "…"
    return env


def _loader(flavour: str) -> FileSystemLoader:
    return FileSystemLoader(str(TEMPLATES / flavour))


@lru_cache(maxsize=None)
def environment(flavour: str) -> Environment:
    options = dict(undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    if flavour == "text":
        env = Environment(loader=_loader("text"), **options)
        env.filters["who"] = lambda m: m.display_name or m.slack_user_id
        env.filters["b"] = lambda v: str(v)
        env.filters["chan"] = lambda c: f"#{c}"
    elif flavour == "mrkdwn":
        env = Environment(loader=_loader("text"), finalize=slack_escape, **options)
        env.filters["who"] = lambda m: SlackMarkup(f"<@{m.slack_user_id}>")
        env.filters["b"] = lambda v: SlackMarkup(f"*{slack_escape(v)}*")
        env.filters["chan"] = lambda c: SlackMarkup(f"<#{slack_escape(c)}>")
    elif flavour == "blocks":
        env = Environment(loader=_loader("slack"), **options)
        env.filters["plain"] = lambda v: json.dumps(str(v), ensure_ascii=False)
        env.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False)
        env.filters["mrkdwn"] = lambda v: json.dumps(slack_escape(v), ensure_ascii=False)
    else:
        raise ValueError(flavour)
    return _common(env)


def render_text(template: str, values: dict[str, Any]) -> str:
    return environment("text").get_template(f"{template}.txt.j2").render(**values).strip()


def render_mrkdwn(template: str, values: dict[str, Any]) -> str:
    return environment("mrkdwn").get_template(f"{template}.txt.j2").render(**values).strip()


def sections(text: str) -> list[dict[str, Any]]:
    """Plain mrkdwn sections, split on line boundaries to stay under Slack's limit."""
    chunks: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > SECTION_LIMIT:
            chunks.append(current) if current else None
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


def render_message(template: str, values: dict[str, Any]) -> dict[str, Any]:
    """A Slack message: `{"text": fallback, "blocks": [...]}`."""
    body = render_mrkdwn(template, values)
    try:
        layout = environment("blocks").get_template(f"{template}.json.j2")
    except TemplateNotFound:
        return {"text": body[:SECTION_LIMIT], "blocks": sections(body)}
    source = layout.render(body_sections=json.dumps(sections(body), ensure_ascii=False)[1:-1],
                           **values)
    message = _loads(template, source)
    message.setdefault("text", body[:SECTION_LIMIT])
    return message


def render_view(template: str, values: dict[str, Any]) -> dict[str, Any]:
    """A modal view, from `templates/slack/<template>.json.j2`."""
    return _loads(template, environment("blocks").get_template(f"{template}.json.j2").render(**values))


def _loads(template: str, source: str) -> dict[str, Any]:
    try:
        return json.loads(source)
    except json.JSONDecodeError as e:  # a template bug: show what it produced
        raise ValueError(f"template {template} rendered invalid JSON: {e}\n{source}") from e
