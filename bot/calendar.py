"""Days off, quiet hours and the slots of timed messages.

People complain most about bots that ping on public holidays and at night,
so every timed message goes through these rules. A day off is a Japanese
public holiday (the `jpholiday` package, which follows the Cabinet Office's
list, substitute and citizens' holidays included) or the year-end break 12/29-1/3, which
is no public holiday but when offices and most services close. Weekends are
not days off: home care runs every day, and a team that wants weekday-only
messages says so in its job.

Everything takes the instant it is asked about; nothing here reads a clock.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import jpholiday

if TYPE_CHECKING:
    from bot.settings import Settings

# The longest run of days off: 12/29-1/3. No run of public holidays is longer
# (Golden Week is at most four), so a slot moved to the next working day
# moves at most this far (tests/test_jobs.py checks years of calendars).
LONGEST_BREAK = timedelta(days=6)


@lru_cache(maxsize=16)
def _holidays(year: int) -> frozenset[date]:
    # Computed a year at once; a tick asks every minute.
    return frozenset(day for day, _name in jpholiday.year_holidays(year))


def is_year_end_break(day: date) -> bool:
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


def is_day_off(day: date) -> bool:
    """Japanese public holidays and the year-end/new-year break (12/29-1/3)."""
    return is_year_end_break(day) or day in _holidays(day.year)


def next_working_day(day: date) -> date:
    """`day` itself if it is a working day, else the first working day after it."""
    while is_day_off(day):
        day += timedelta(days=1)
    return day


def in_quiet_hours(at: datetime, settings: Settings) -> bool:
    local = at.astimezone(settings.tz).time()
    start, end = settings.team.schedule.quiet_start, settings.team.schedule.quiet_end
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # across midnight, e.g. 21:00-07:00


def end_of_quiet_hours(at: datetime, settings: Settings) -> datetime:
    """The instant a non-urgent message due at `at` may go: `at` itself
    outside quiet hours, else when they end (the same morning, or the next
    one when they started this evening)."""
    if not in_quiet_hours(at, settings):
        return at
    tz = settings.tz
    local = at.astimezone(tz)
    end = settings.team.schedule.quiet_end
    day = local.date() if local.time() < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz)


def at_local(day: date, time_of_day: time, tz: ZoneInfo) -> datetime:
    """That wall-clock time on that day in the team's zone, as an instant."""
    return datetime.combine(day, time_of_day, tzinfo=tz)


def daily_slots(at: datetime, time_of_day: time, tz: ZoneInfo, lookback_days: int) -> list[tuple[date, datetime]]:
    """(day, due instant) of every daily slot already due at `at`, from
    `lookback_days` days back, oldest first. Looking back is how a slot
    missed while the bot was down is still seen once: sent late, or
    recorded as skipped."""
    today = at.astimezone(tz).date()
    days = (today - timedelta(days=i) for i in range(lookback_days, -1, -1))
    return [(day, due) for day in days if (due := at_local(day, time_of_day, tz)) <= at]


def weekly_slots(at: datetime, weekday: int, time_of_day: time, tz: ZoneInfo,
                 lookback_weeks: int) -> list[tuple[date, datetime]]:
    """Like `daily_slots`, for one weekday (Monday is 0), this week's slot
    and `lookback_weeks` before it."""
    today = at.astimezone(tz).date()
    this_week = today - timedelta(days=(today.weekday() - weekday) % 7)
    days = (this_week - timedelta(weeks=i) for i in range(lookback_weeks, -1, -1))
    return [(day, due) for day in days if (due := at_local(day, time_of_day, tz)) <= at]
