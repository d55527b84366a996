"""Jinja2 rendering of the words a user reads. Every reply has a text
template, `templates/text/<name>.txt.j2`; button labels are the macros of
`templates/text/common/buttons.txt.j2`, named by action id.

`make_environment` builds an environment over those templates; the console
uses the plain-text one here, and each front end makes its own flavour (the
Slack glue's escapes every expression for mrkdwn, `bot/slack/mrkdwn.py`)."""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.people import Place
from bot.replies import Action, Problem

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
WEEKDAYS = "月火水木金土日"


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


ECHO = 40  # characters of typed text said back in a reply
_QUOTED = re.compile(r"「([^「」]*)」")


def echo(value: Any, limit: int = ECHO) -> str:
    """What a person typed, said back to them (「…」は見つかりませんでした):
    on one line, at most `limit` characters, so a pasted page or a 100,000
    character argument comes back as a few words and an ellipsis."""
    text = str(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def echo_in(value: Any, limit: int = ECHO) -> str:
    """A sentence that quotes typed text in 「」 (a date parser's message):
    each quote shortened by `echo`, the sentence kept, the whole bounded."""
    return echo(_QUOTED.sub(lambda m: f"「{echo(m[1], limit)}」", str(value)), 4 * limit)


def make_environment(finalize: Callable[[Any], Any] | None = None, **filters: Callable) -> Environment:
    """An environment over `templates/text`, with the shared filters and a
    front end's own (`who`, `b`, `chan`)."""
    # auto_reload off: the templates do not change under a running bot, and
    # checking cost a stat of each template and include on every reply.
    options: dict[str, Any] = dict(undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                                   auto_reload=False)
    if finalize is not None:
        options["finalize"] = finalize
    env = Environment(loader=FileSystemLoader(str(TEMPLATES / "text")), **options)
    env.filters["when"] = when
    env.filters["hm"] = lambda v: v.astimezone(_display_tz).strftime("%H:%M") if v else ""
    env.filters["ago"] = ago
    env.filters["clip"] = lambda v, n: v if len(v) <= n else v[: n - 1] + "…"
    env.filters["echo"] = echo
    env.filters["echo_in"] = echo_in
    env.filters.update(filters)
    return env


def _plain_place(text: str | None) -> str:
    place = Place.parse(text)
    return f"#{place.id}" if place else f"#{text}"


@lru_cache(maxsize=None)
def text_environment() -> Environment:
    return make_environment(who=lambda m: m.display_name or m.qualified_id, b=str, chan=_plain_place)


def render_text(template: str, values: dict[str, Any]) -> str:
    return text_environment().get_template(f"{template}.txt.j2").render(**values).strip()


def field_error(problem: Problem) -> str:
    """One field's problem in words. The code travels as `field_problem`, so a
    value named `code` (a patient code) cannot overwrite it."""
    code, values = problem
    return render_text("common/field_error", {**values, "field_problem": code})


BUTTONS = "common/buttons.txt.j2"


def button_label(action: Action, env: Environment | None = None) -> str:
    """The words on a button (plain text in every front end)."""
    macro = getattr((env or text_environment()).get_template(BUTTONS).module, action.id)
    return str(macro(**dict(action.params))).strip()


def confirm_text(action: Action) -> str:
    return str(getattr(text_environment().get_template(BUTTONS).module, f"{action.id}_confirm")()).strip()


