"""Dates as people type them in Japanese chat: `12/10`, `１２月１０日`,
`12/10(木)`, `2026-12-10`, `明日`, `月曜`, `来週月曜`, `今週末`, `来週`,
ranges `12/10-12/14`, `12/10 - 12/14`, `12/10〜14`, `12/10から12/14まで`,
`12/10から2泊` (two nights: 12/10 and 12/11)."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta

RELATIVE = {
    "今日": 0, "きょう": 0, "本日": 0, "today": 0,
    "明日": 1, "あした": 1, "あす": 1, "tomorrow": 1,
    "明後日": 2, "あさって": 2,
    "昨日": -1, "きのう": -1, "yesterday": -1,
    "一昨日": -2, "おととい": -2,
}
WEEKEND = {"今週末", "週末", "土日", "今週の土日"}
NEXT_WEEKEND = {"来週末", "来週の土日"}
YEAR_ROLL_DAYS = 60
_RANGE_SEP = re.compile(r"\s*[-~〜～–—ー]\s*|\s*から\s*")
_YMD = re.compile(r"(\d{4})[-/年.](\d{1,2})[-/月.](\d{1,2})日?")
_MD = re.compile(r"(\d{1,2})[/月.](\d{1,2})日?")
_D = re.compile(r"(\d{1,2})日?")
_NIGHTS = re.compile(r"(\d{1,2})泊(?:\d{1,2}日)?")
_WEEKDAY_NOTE = re.compile(r"[(（][月火水木金土日](?:曜日?)?[)）]")
WEEKDAYS = "月火水木金土日"
_WEEKDAY = re.compile(r"(今週|来週|再来週)?の?([月火水木金土日])(?:曜日?|曜)")
# Joins a range typed with spaces (`12/10 - 12/14`, `12/10 から 2泊`) into one word.
_SPACED_RANGE = re.compile(
    r"(?<=[\d日)）曜])(?:\s+(?:[-~〜～–—]|から)\s*|\s*(?:[-~〜～–—]|から)\s+)"
    r"(?=[\d０-９]|来週|今週|再来週|明日|明後日|あした|あさって|[月火水木金土日]曜)"
    r"|(?<=[\d日)）曜])\s+(?=[\d０-９]+泊)")


class DateError(ValueError):
    """The text looks like a date but is not a real one (message is for the user)."""


def _fold(text: str) -> str:
    text = _WEEKDAY_NOTE.sub("", unicodedata.normalize("NFKC", text).strip().lower())
    return text[:-2] if text.endswith("まで") else text


def join_ranges(text: str) -> str:
    """`12/10 - 12/14` and `12/10 から 2泊` as one word each, so a command
    that splits on spaces still sees one range."""
    return _SPACED_RANGE.sub("から", unicodedata.normalize("NFKC", text))


def _weekday(text: str, today: date) -> date | None:
    """`月曜` (the next Monday, today if it is Monday), `来週月曜` (in next
    week, Monday to Sunday), `今週金曜`."""
    m = _WEEKDAY.fullmatch(text)
    if not m:
        return None
    wanted = WEEKDAYS.index(m[2])
    if m[1] is None:
        return today + timedelta(days=(wanted - today.weekday()) % 7)
    monday = today - timedelta(days=today.weekday()) + timedelta(weeks={"今週": 0, "来週": 1, "再来週": 2}[m[1]])
    return monday + timedelta(days=wanted)


def parse_date(text: str, today: date, prefer: str = "future") -> date | None:
    """One day, or None if `text` is not a date at all. `prefer` decides the
    year of `12/10`: the next such day ("future") or the last one ("past")."""
    text = _fold(text)
    if text in RELATIVE:
        return today + timedelta(days=RELATIVE[text])
    if (day := _weekday(text, today)) is not None:
        return day
    if m := _YMD.fullmatch(text):
        return _make(int(m[1]), int(m[2]), int(m[3]), text)
    if m := _MD.fullmatch(text):
        month, day = int(m[1]), int(m[2])
        candidate = _make(today.year, month, day, text, leap_ok=True)
        # "1/5" typed in December means next January; "11/20" typed on 11/24
        # is a (wrong) past day, reported as such rather than moved a year.
        if prefer == "future" and candidate < today - timedelta(days=YEAR_ROLL_DAYS):
            candidate = _make(today.year + 1, month, day, text)
        elif prefer == "past" and candidate > today + timedelta(days=YEAR_ROLL_DAYS):
            candidate = _make(today.year - 1, month, day, text)
        return candidate
    return None


def parse_range(text: str, today: date, prefer: str = "future") -> tuple[date, date] | None:
    """(first, last) inclusive, or None if `text` is not a date or range."""
    folded = _fold(text)
    if folded in WEEKEND | NEXT_WEEKEND:
        saturday = today + timedelta(days=(5 - today.weekday()) % 7)
        if today.weekday() == 6:  # on a Sunday "this weekend" is today
            saturday = today - timedelta(days=1)
        if folded in NEXT_WEEKEND:
            saturday += timedelta(days=7)
        return max(saturday, today), saturday + timedelta(days=1)
    if folded in ("来週", "再来週", "今週"):
        monday = today - timedelta(days=today.weekday()) + timedelta(weeks={"今週": 0, "来週": 1, "再来週": 2}[folded])
        return max(monday, today), monday + timedelta(days=6)
    if (single := parse_date(folded, today, prefer)) is not None:
        return single, single
    parts = _RANGE_SEP.split(folded, maxsplit=1)
    if len(parts) != 2:
        return None
    first = parse_date(parts[0], today, prefer)
    if first is None:
        return None
    if m := _NIGHTS.fullmatch(parts[1]):  # 12/10から2泊: the nights of 12/10 and 12/11
        if int(m[1]) < 1:
            raise DateError(f"「{text}」の泊数は1泊以上で指定してください。")
        return first, first + timedelta(days=int(m[1]) - 1)
    # `12/10-1/5` counts on from the first day; `来週月曜-来週水曜` from today.
    last = parse_date(parts[1], first if parts[1][:1].isdigit() else today, "future")
    if last is None and (m := _D.fullmatch(parts[1])):  # 12/10-14
        last = _make(first.year, first.month, int(m[1]), text)
    if last is None:
        return None
    if last < first:
        raise DateError(f"「{text}」は終わりの日が始まりより前です。")
    return first, last


def _make(year: int, month: int, day: int, text: str, leap_ok: bool = False) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        if leap_ok and month == 2 and day == 29:
            return date(year + (4 - year % 4), 2, 29)
        raise DateError(f"「{text}」という日付はありません。") from None
