"""The one shape of timed messages, proved with small synthetic jobs driven
through `tick` at explicit instants against a real database: a daily
prompt, a weekly digest, a reminder two hours before a meeting. Each says
what a day off does to it and whether it waits out quiet hours; the tick
does the rest, the same way for all three.

Calendar facts used: 2026-11-23 (Mon) 勤労感謝の日, 2027-01-11 (Mon) 成人の日,
12/29-1/3 the year-end break; quiet hours 21:00-07:00, grace 12 h."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot import calendar, features
from bot.calendar import daily_slots, weekly_slots
from bot.jobs import NEXT_WORKING_DAY, SEND, SKIP, Due, Job
from bot.schedule import tick
from bot.settings import TeamConfig, load_settings
from bot.store.db import make_engine, session_scope, upgrade
from bot.store.models import Delivery

JST = ZoneInfo("Asia/Tokyo")
MONDAY, TUESDAY = 0, 1


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=JST)


@pytest.fixture
def runtime(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    settings = load_settings(database_url=db_url, team=TeamConfig())  # 21:00-07:00, grace 12 h
    yield SimpleNamespace(settings=settings, engine=engine, forms=None)
    engine.dispose()


class Outbox(list):
    """The `send` a tick is given: keeps what went out."""

    def __call__(self, message, key=None) -> bool:
        self.append(message)
        return True


def run(runtime, job: Job, instant: str, sent: Outbox | None = None):
    return tick(runtime, at(instant), sent if sent is not None else Outbox(), jobs=[job])


def rows(runtime) -> dict[tuple[str, str], str]:
    with session_scope(runtime.engine) as s:
        return {(r.subject, r.slot): r.status for r in s.exec(select(Delivery))}


# --- three kinds of timed message, one shape ---------------------------------------------------------------

def daily(kind: str, time_of_day: time, day_off: str, quiet: bool = True) -> Job:
    """A morning prompt: one slot a day, the slot is the day."""

    def due(env, now):
        for day, due_at in daily_slots(now, time_of_day, env.settings.tz, env.lookback_days):
            yield Due("team", day.isoformat(), due_at, f"prompt {day}")

    return Job(kind, due, day_off=day_off, quiet=quiet)


def weekly(kind: str, weekday: int, time_of_day: time, day_off: str) -> Job:
    """A digest: one slot a week, the slot is the nominal day."""

    def due(env, now):
        for day, due_at in weekly_slots(now, weekday, time_of_day, env.settings.tz, env.lookback_weeks):
            yield Due("council", day.isoformat(), due_at, f"digest {day}")

    return Job(kind, due, day_off=day_off, quiet=True)


def meeting_reminder(meetings: dict[int, datetime], before: timedelta, late_grace: timedelta | None = None) -> Job:
    """A reminder relative to an instant: due `before` each meeting. The slot
    is the meeting's start, so moving the meeting makes a new reminder."""

    def due(env, now):
        for meeting_id, start in meetings.items():
            if env.since(now) <= start - before <= now:
                yield Due(f"meeting:{meeting_id}", start.isoformat(), start - before, f"meeting {meeting_id} at {start}")

    return Job("t.meeting", due, day_off=SEND, quiet=True, late_grace=late_grace)


# --- days off --------------------------------------------------------------------------------------------------

def test_a_daily_prompt_skips_a_monday_holiday_unless_its_job_sends_anyway(runtime):
    prompt = daily("t.prompt", time(8, 30), SKIP)
    assert run(runtime, prompt, "2026-11-23T08:30").sent == []  # 勤労感謝の日
    sent = Outbox()
    report = run(runtime, prompt, "2026-11-24T08:30", sent)
    assert report.sent == ["t.prompt/team/2026-11-24"] and sent == ["prompt 2026-11-24"]  # not the holiday's, late
    # a day off leaves no row (earlier days, before the first tick, are "downtime": skipped)
    assert ("team", "2026-11-23") not in rows(runtime) and rows(runtime)[("team", "2026-11-24")] == "sent"

    anyway = daily("t.anyway", time(8, 30), SEND)
    assert run(runtime, anyway, "2026-11-23T08:30").sent == ["t.anyway/team/2026-11-23"]


def test_the_year_end_break_is_a_day_off_too(runtime):
    assert calendar.is_day_off(date(2026, 12, 31)) and calendar.is_day_off(date(2027, 1, 3))
    assert not calendar.is_day_off(date(2026, 12, 28)) and not calendar.is_day_off(date(2027, 1, 4))
    assert calendar.next_working_day(date(2026, 12, 29)) == date(2027, 1, 4)
    assert calendar.next_working_day(date(2026, 11, 24)) == date(2026, 11, 24)
    prompt = daily("t.prompt", time(8, 30), SKIP)
    assert run(runtime, prompt, "2026-12-31T09:00").sent == []
    assert run(runtime, prompt, "2027-01-04T08:30").sent == ["t.prompt/team/2027-01-04"]


def test_no_run_of_days_off_is_longer_than_the_lookback_allows_for():
    """A job that moves to the next working day looks back LONGEST_BREAK
    further; if the calendar ever had a longer break, slots would be lost."""
    day, longest = date(2026, 1, 1), timedelta(0)
    while day < date(2046, 1, 1):
        longest = max(longest, calendar.next_working_day(day) - day)
        day += timedelta(days=1)
    assert longest == calendar.LONGEST_BREAK == timedelta(days=6)


def test_a_weekly_digest_on_a_monday_holiday_goes_on_tuesday_once(runtime):
    digest = weekly("t.digest", MONDAY, time(9, 0), NEXT_WORKING_DAY)
    sent = Outbox()
    assert run(runtime, digest, "2027-01-04T09:00", sent).sent == ["t.digest/council/2027-01-04"]
    report = run(runtime, digest, "2027-01-11T09:00", sent)  # 成人の日
    assert report.sent == [] and report.skipped == [] and report.deferred == []
    assert run(runtime, digest, "2027-01-12T08:59", sent).sent == []
    # on time on Tuesday (not 24 h late, which would be past grace), under Monday's slot
    assert run(runtime, digest, "2027-01-12T09:00", sent).sent == ["t.digest/council/2027-01-11"]
    assert run(runtime, digest, "2027-01-12T09:05", sent).sent == []
    assert run(runtime, digest, "2027-01-18T09:00", sent).sent == ["t.digest/council/2027-01-18"]
    assert sent == ["digest 2027-01-04", "digest 2027-01-11", "digest 2027-01-18"]
    assert rows(runtime)[("council", "2027-01-11")] == "sent"


def test_a_slot_in_the_year_end_break_moves_to_the_first_working_day(runtime):
    digest = weekly("t.digest", TUESDAY, time(10, 0), NEXT_WORKING_DAY)
    assert run(runtime, digest, "2026-12-29T10:00").sent == []
    report = run(runtime, digest, "2027-01-04T10:00")  # a Monday: Tuesday 12/29's digest, six days on
    assert report.sent == ["t.digest/council/2026-12-29"]


def test_a_moved_slot_missed_on_its_new_day_is_skipped_after_grace(runtime):
    digest = weekly("t.digest", MONDAY, time(9, 0), NEXT_WORKING_DAY)
    report = run(runtime, digest, "2027-01-13T08:00")  # Tuesday's 09:00 came and went: 23 h late
    assert "t.digest/council/2027-01-11" in report.skipped and report.sent == []


# --- relative to an instant ------------------------------------------------------------------------------------

def test_a_reminder_two_hours_before_a_meeting_follows_the_meeting(runtime):
    meetings = {1: at("2026-12-08T14:00"), 2: at("2026-11-23T10:00")}  # the second on a holiday
    reminder = meeting_reminder(meetings, timedelta(hours=2))
    sent = Outbox()
    assert run(runtime, reminder, "2026-11-23T08:00", sent).sent == ["t.meeting/meeting:2/2026-11-23T10:00:00+09:00"]
    assert run(runtime, reminder, "2026-12-08T11:59", sent).sent == []
    assert run(runtime, reminder, "2026-12-08T12:00", sent).sent == ["t.meeting/meeting:1/2026-12-08T14:00:00+09:00"]
    assert run(runtime, reminder, "2026-12-08T12:01", sent).sent == []
    meetings[1] = at("2026-12-08T16:00")  # moved: the old reminder no longer holds
    assert run(runtime, reminder, "2026-12-08T13:59", sent).sent == []
    assert run(runtime, reminder, "2026-12-08T14:00", sent).sent == ["t.meeting/meeting:1/2026-12-08T16:00:00+09:00"]
    assert sent[-1] == "meeting 1 at 2026-12-08 16:00:00+09:00" and len(sent) == 3


def test_a_reminder_has_its_own_grace(runtime):
    reminder = meeting_reminder({1: at("2026-12-08T14:00")}, timedelta(hours=2), late_grace=timedelta(hours=1))
    report = run(runtime, reminder, "2026-12-08T15:30")  # the bot was down; the meeting has begun
    assert report.sent == [] and report.skipped == ["t.meeting/meeting:1/2026-12-08T14:00:00+09:00"]


def test_an_early_reminder_waits_for_the_end_of_quiet_hours(runtime):
    reminder = meeting_reminder({1: at("2026-12-08T08:00")}, timedelta(hours=2))  # due 06:00
    assert run(runtime, reminder, "2026-12-08T06:00").deferred == ["t.meeting/meeting:1/2026-12-08T08:00:00+09:00"]
    assert run(runtime, reminder, "2026-12-08T07:00").sent == ["t.meeting/meeting:1/2026-12-08T08:00:00+09:00"]


# --- quiet hours and lateness ----------------------------------------------------------------------------------

def test_quiet_hours_hold_a_message_unclaimed_and_release_it_at_their_end(runtime):
    runtime.settings.team.schedule.late_grace_hours = 0.5
    early = daily("t.early", time(6, 0), SEND)
    report = run(runtime, early, "2026-11-24T06:00")
    assert report.deferred == ["t.early/team/2026-11-24"] and report.sent == []
    assert ("team", "2026-11-24") not in rows(runtime)  # not claimed: any later tick or process may send it
    assert run(runtime, early, "2026-11-24T06:59").deferred == ["t.early/team/2026-11-24"]
    # 70 minutes after 06:00 but 10 after 07:00: within the 30-minute grace, since the night is not lateness
    assert run(runtime, early, "2026-11-24T07:10").sent == ["t.early/team/2026-11-24"]
    urgent = daily("t.urgent", time(6, 0), SEND, quiet=False)
    assert run(runtime, urgent, "2026-11-24T06:00").sent == ["t.urgent/team/2026-11-24"]


def test_end_of_quiet_hours():
    settings = load_settings(team=TeamConfig())
    assert calendar.end_of_quiet_hours(at("2026-11-24T22:00"), settings) == at("2026-11-25T07:00")
    assert calendar.end_of_quiet_hours(at("2026-11-24T06:00"), settings) == at("2026-11-24T07:00")
    assert calendar.end_of_quiet_hours(at("2026-11-24T12:00"), settings) == at("2026-11-24T12:00")
    assert calendar.in_quiet_hours(at("2026-11-24T21:00"), settings)
    assert not calendar.in_quiet_hours(at("2026-11-24T07:00"), settings)


def test_lateness_beyond_grace_is_recorded_skipped_once(runtime, caplog):
    caplog.set_level("INFO", logger="bot.schedule")
    prompt = daily("t.prompt", time(8, 30), SEND, quiet=False)
    assert run(runtime, prompt, "2026-11-23T08:30").sent == ["t.prompt/team/2026-11-23"]
    caplog.clear()
    report = run(runtime, prompt, "2026-11-24T21:00")  # 12.5 h late
    assert report.skipped == ["t.prompt/team/2026-11-24"] and report.sent == []
    assert "skipped t.prompt/team/2026-11-24: 12:30:00 late" in caplog.text
    assert rows(runtime)[("team", "2026-11-24")] == "skipped"
    again = run(runtime, prompt, "2026-11-24T21:01")
    assert again.skipped == [] and again.sent == [] and caplog.text.count("skipped t.prompt") == 1
    assert run(runtime, prompt, "2026-11-25T08:30").sent == ["t.prompt/team/2026-11-25"]


# --- the tick itself -------------------------------------------------------------------------------------------

def test_a_broken_job_does_not_stop_the_others(runtime):
    def broken(env, now):
        raise RuntimeError("bug")

    prompt = daily("t.prompt", time(8, 30), SKIP)
    report = tick(runtime, at("2026-11-24T08:30"), Outbox(), jobs=[Job("t.broken", broken, SEND, False), prompt])
    assert report.failed == ["t.broken (due)"] and report.sent == ["t.prompt/team/2026-11-24"]


def test_a_job_must_say_what_a_day_off_does():
    with pytest.raises(ValueError, match="day_off"):
        Job("t.x", lambda env, now: [], day_off="sometimes", quiet=True)


def test_every_feature_is_wired_with_its_rules():
    rules = {job.kind: (job.day_off, job.quiet) for job in features.default_jobs()}
    assert rules == {"vacancy.freshness": (SKIP, True), "note.post": (SEND, False), "meeting.reminder": (SEND, True),
                     "plan.digest": ("next_working_day", True)}
