"""The one shape of a timed message.

A feature's job answers one question, "what is due at instant T?", with
`Due` items: (subject, slot, due instant, message). It also says what a day
off does to it, and whether it may wake people at night. The tick
(`bot.schedule`) applies those rules and the delivery table, so a morning
prompt, a reminder two hours before a meeting and a weekly digest differ
only in how their `due` finds the instants:

    morning prompt  one slot a day (`calendar.daily_slots`), slot = the day
    meeting reminder  due = meeting start - 2 h, slot = the start instant, so
                      moving the meeting makes a new reminder
    weekly digest   `calendar.weekly_slots`, slot = the week's Monday

`due` returns what was due recently too (see `JobEnv.lookback`): a slot
missed while the bot was down is then sent late, or recorded as skipped once
it is too late to help.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterable

from sqlmodel import Session

from bot.calendar import LONGEST_BREAK

if TYPE_CHECKING:
    from bot.forms import FormRegistry
    from bot.settings import Settings

# What a day off does to an item whose due instant falls on one.
SKIP = "skip"  # nothing is sent for that slot (a freshness prompt: nobody is working)
NEXT_WORKING_DAY = "next_working_day"  # same local time, first working day after (a weekly digest)
SEND = "send"  # sent anyway (a post somebody just made, a reminder of a meeting set on a holiday)
DAY_OFF_POLICIES = (SKIP, NEXT_WORKING_DAY, SEND)

KIND_MAX = 32  # Delivery.kind


@dataclass(frozen=True)
class Due:
    """One message that is due. (kind, subject, slot) is its key in the
    delivery table, so the slot must not change when the instant is moved
    (by a day off or quiet hours): that is what keeps it to one message."""

    subject: str  # who or what it is about, e.g. "facility:3:U123", "note:12"
    slot: str  # which occurrence, e.g. "2026-12-08", or a meeting's start instant
    due_at: datetime  # aware
    # Opaque here; handed to the tick's `send`. Or a function that builds
    # it, called only if it is sent (not for an item skipped as too late).
    message: Any
    # Past this instant the message is no use (a reminder once the meeting
    # has started): recorded as skipped instead of sent late.
    deadline: datetime | None = None


def once(build: Callable[[], Any]) -> Callable[[], Any]:
    """`build()` the first time it is asked for, the same value after: what
    several items of a slot share (a facility's prompt to each of its staff)
    is read when the first of them is sent, and not at all when none is.
    A closure, not `functools.cache`: a tick makes thousands of these (one
    per stale facility and look-back day), and cache's wrapper cost more
    than the rest of the item. As with the cache, two threads asking at the
    same moment could both build it (the tick sends one item at a time);
    the first built is kept."""
    built: list[Any] = []

    def value() -> Any:
        if not built:
            made = build()
            if not built:
                built.append(made)
        return built[0]

    return value


@dataclass
class JobEnv:
    """What a job's `due` may use. Same attribute names as a request's
    Context, so a feature's message builders serve both."""

    session: Session
    settings: Settings
    forms: FormRegistry | None
    # How far back `due` should report items: the job's grace, plus a day so
    # that a slot just past grace is still seen (and recorded as skipped),
    # plus the longest break for jobs that move to the next working day.
    lookback: timedelta = timedelta(days=1)

    @property
    def lookback_days(self) -> int:
        return math.ceil(self.lookback / timedelta(days=1))

    @property
    def lookback_weeks(self) -> int:
        return max(1, math.ceil(self.lookback / timedelta(weeks=1)))

    def since(self, at: datetime) -> datetime:
        """The oldest due instant worth reporting at `at`."""
        return at - self.lookback


@dataclass(frozen=True)
class Job:
    kind: str  # the delivery table's kind, e.g. "vacancy.freshness"
    due: Callable[[JobEnv, datetime], Iterable[Due]]
    day_off: str  # one of DAY_OFF_POLICIES
    quiet: bool  # True: not urgent, waits out quiet hours
    # How late a missed item may still go; None: the team's
    # schedule.late_grace_hours. Later than that it is recorded as skipped.
    late_grace: timedelta | None = None

    def __post_init__(self):
        if self.day_off not in DAY_OFF_POLICIES:
            raise ValueError(f"{self.kind}: day_off must be one of {DAY_OFF_POLICIES}, not {self.day_off!r}")
        if not 0 < len(self.kind) <= KIND_MAX:
            raise ValueError(f"job kind must be 1-{KIND_MAX} characters: {self.kind!r}")

    def grace(self, settings: Settings) -> timedelta:
        if self.late_grace is not None:
            return self.late_grace
        return timedelta(hours=settings.team.schedule.late_grace_hours)

    def lookback(self, settings: Settings) -> timedelta:
        moved = LONGEST_BREAK if self.day_off == NEXT_WORKING_DAY else timedelta(0)
        return self.grace(settings) + timedelta(days=1) + moved
