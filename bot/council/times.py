"""When a meeting is, as people type it: `12/15 18:30`, `12/15(火) 18:30-20:00`,
`12月15日 18時半`, `来週水曜 14時`. Dates come from `bot.dates`; this adds
times of day and turns the pair into instants in the team's zone."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.dates import DateError, parse_date

_TIME = r"(\d{1,2})(?::(\d{2})|時(?:(半)|(\d{1,2})分?)?)"
_TIME_RANGE = re.compile(rf"{_TIME}(?:\s*[-~〜～–—]\s*{_TIME})?")
_OFFSET = re.compile(r"(\d{1,3})\s*(d|h|m|日|時間|分)")
OFFSET_UNITS = {"d": "days", "日": "days", "h": "hours", "時間": "hours", "m": "minutes", "分": "minutes"}


class TimeError(ValueError):
    """Looks like a time but is not one (the message is for the user)."""


@dataclass
class When:
    starts_at: datetime
    ends_at: datetime | None


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def _clock(hour: str, minute: str | None, half: str | None, minute_ja: str | None, typed: str) -> time:
    h, m = int(hour), 30 if half else int(minute or minute_ja or 0)
    if h > 23 or m > 59:
        raise TimeError(f"「{typed}」という時刻はありません。")
    return time(h, m)


def parse_time_range(word: str) -> tuple[time, time | None] | None:
    """`18:30`, `18時半`, `9時`, `18:30-20:00`; None if not a time at all."""
    m = _TIME_RANGE.fullmatch(_fold(word))
    if not m:
        return None
    start = _clock(m[1], m[2], m[3], m[4], word)
    end = _clock(m[5], m[6], m[7], m[8], word) if m[5] else None
    if end is not None and end <= start:
        raise TimeError(f"「{word}」は終わりの時刻が始まりより前です。")
    return start, end


def is_date(word: str, today: date) -> bool:
    try:
        return parse_date(_strip_weekday(word), today) is not None
    except DateError:
        return True  # a date, but a wrong one: reading it says so


def _strip_weekday(word: str) -> str:
    return re.sub(r"[(（][月火水木金土日](?:曜日?)?[)）]", "", _fold(word))


def combine(day: date, start: time, end: time | None, tz: ZoneInfo) -> When:
    starts = datetime.combine(day, start, tzinfo=tz)
    return When(starts, datetime.combine(day, end, tzinfo=tz) if end else None)


def read_when(words: list[str], today: date, tz: ZoneInfo) -> tuple[When | None, list[str]]:
    """The date and time among `words`, and the words left (the title).
    Raises DateError / TimeError for a date or time that cannot be."""
    day, clock, rest = None, None, []
    for word in words:
        if day is None and is_date(word, today):
            day = parse_date(_strip_weekday(word), today)
        elif clock is None and (found := parse_time_range(word)) is not None:
            clock = found
        else:
            rest.append(word)
    if day is None or clock is None:
        return None, rest
    return combine(day, clock[0], clock[1], tz), rest


def parse_offsets(text: str) -> list[timedelta]:
    """`7d,1d,2h` (or `7日,1日,2時間`) → the offsets before the start, largest first."""
    offsets = []
    for part in re.split(r"[,、，\s]+", _fold(text)):
        if not part:
            continue
        m = _OFFSET.fullmatch(part)
        if not m or int(m[1]) == 0:
            raise TimeError(f"リマインドの「{part}」が読み取れません。例: remind=7d,1d,2h")
        offsets.append(timedelta(**{OFFSET_UNITS[m[2]]: int(m[1])}))
    if not offsets:
        raise TimeError("リマインドの指定が空です。例: remind=7d,1d,2h")
    return sorted(set(offsets), reverse=True)


MAX_REMINDERS = 10  # meeting.remind holds 64 characters: ten labels of at most four (`999d`) and their commas


def remind_setting(text: str) -> str:
    """What `remind=7日,2時間` stores: `7d,2h` (TimeError if unreadable, or
    more reminders than MAX_REMINDERS)."""
    offsets = parse_offsets(text)
    if len(offsets) > MAX_REMINDERS:
        raise TimeError(f"リマインドは{MAX_REMINDERS}回までです（{len(offsets)}回指定されています）。例: remind=7d,1d,2h")
    return ",".join(offset_label(o) for o in offsets)


def offset_label(offset: timedelta) -> str:
    """`7d`, `1d`, `2h`, `30m`: the slot name of a reminder."""
    seconds = int(offset.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"
