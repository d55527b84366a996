"""The one scheduler tick.

`tick(runtime, at, send)` asks every job (`bot.jobs.Job`) what is due at
instant `at`, applies the rules every timed message shares, and sends each
item once through the delivery table (`bot.delivery`):

- day off: per job, an item whose due day is a day off (`bot.calendar`) is
  dropped ("skip"), moved to the same local time on the next working day
  ("next_working_day", same slot, so still sent once) or sent ("send");
- quiet hours: a non-urgent item (`quiet=True`) is held while they last,
  without claiming it, and goes when they end; its lateness counts from then;
- lateness: an item later than the job's grace is recorded as `skipped`
  (logged once) instead of reaching someone when it no longer helps.

The tick knows no feature: `bot.features` lists the jobs. APScheduler only
calls it once a minute inside `renkei serve` (`start`); it holds no state.
Nothing here imports Slack: `send(message, key) -> bool` comes from the caller.
"""

from __future__ import annotations

import logging
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable

from bot.calendar import at_local, end_of_quiet_hours, in_quiet_hours, is_day_off, next_working_day
from bot.delivery import Outcome, Send, record_skips, send_each, settled
from bot.jobs import SEND, SKIP, Due, Job, JobEnv
from bot.store.db import session_scope

__all__ = ["TickReport", "placed_at", "start", "tick"]

log = logging.getLogger(__name__)

LATE_ENOUGH_TO_LOG = timedelta(minutes=5)


@dataclass
class TickReport:
    at: datetime
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)  # owned by another tick or process


def placed_at(job: Job, due_at: datetime, settings) -> datetime | None:
    """Where the job's day-off rule puts an item due at `due_at`: the same
    instant, the same local time on the next working day, or None (never)."""
    tz = settings.tz
    local = due_at.astimezone(tz)
    if job.day_off == SEND or not is_day_off(local.date()):
        return due_at
    if job.day_off == SKIP:
        return None
    return at_local(next_working_day(local.date()), local.time(), tz)


def tick(runtime, at: datetime, send: Send, jobs: Iterable[Job] | None = None) -> TickReport:
    """One pass at instant `at` (the runtime's clock in `serve`, `--at` in
    `jobs run-due`) over `jobs`: by default the runtime's, else every feature's."""
    if at.tzinfo is None:
        raise ValueError("tick needs an aware datetime")
    if jobs is None:
        jobs = getattr(runtime, "jobs", None) or _default_jobs()
    settings, forms = runtime.settings, getattr(runtime, "forms", None)
    report = TickReport(at)
    for job in jobs:
        try:
            with session_scope(runtime.engine, reads_only=True) as session:
                items = list(job.due(JobEnv(session, settings, forms, job.lookback(settings)), at))
                recorded = settled(session, job.kind, [(item.subject, item.slot) for item in items])
        except Exception:  # one feature's bug must not stop the others' messages
            log.exception("job %s could not say what is due", job.kind)
            report.failed.append(f"{job.kind} (due)")
            continue
        skips, sends = _sort_out(settings, job, items, at, recorded, report)
        _skip(runtime.engine, job, skips, at, report)
        _send(runtime.engine, job, sends, at, send, report)
    return report


# Skips are final, so many are recorded in one statement.
SKIP_BATCH = 500


def _sort_out(settings, job: Job, items: list[Due], at: datetime, recorded: dict[tuple[str, str], bool],
              report: TickReport) -> tuple[list[tuple[Due, str, str]], list[tuple[Due, timedelta]]]:
    """Which items to record as skipped (with the reason) and which to send
    now, by the rules every timed message shares. `recorded` is `settled`'s answer."""
    skips, sends = [], []
    for item in items:
        placed = placed_at(job, item.due_at, settings)
        if placed is None or placed > at:
            continue  # a skipped day off, or moved to a working day still ahead
        # Lateness counts from when the item may go: one held by the night is
        # not "late" for having waited.
        release = end_of_quiet_hours(placed, settings) if job.quiet else placed
        late, grace = at - release, job.grace(settings)
        too_late = item.deadline is not None and at >= item.deadline
        key = (item.subject, item.slot)
        if late > grace or too_late:
            if key not in recorded:  # else recorded already, skipped or not
                reason = f"past its deadline {item.deadline}" if too_late else f"late {late} > grace {grace}"
                skips.append((item, reason, f"{late} late, grace is {grace}"))
        elif job.quiet and in_quiet_hours(at, settings):
            report.deferred.append(_name(job, item))  # not claimed: a later tick sends it
        elif recorded.get(key):
            report.taken.append(_name(job, item))  # sent (or given up) by an earlier tick or another process
        else:
            sends.append((item, late))
    return skips, sends


def _name(job: Job, item: Due) -> str:
    return f"{job.kind}/{item.subject}/{item.slot}"


def _skip(engine, job: Job, skips: list[tuple[Due, str, str]], at: datetime, report: TickReport) -> None:
    for start in range(0, len(skips), SKIP_BATCH):
        batch = skips[start:start + SKIP_BATCH]
        mine = record_skips(engine, job.kind, [(item.subject, item.slot, reason) for item, reason, _ in batch], at)
        for item, _reason, lateness in batch:
            if (item.subject, item.slot) in mine:
                log.info("skipped %s: %s", _name(job, item), lateness)
                report.skipped.append(_name(job, item))


def _send(engine, job: Job, sends: list[tuple[Due, timedelta]], at: datetime, send: Send,
          report: TickReport) -> None:
    # Claimed one at a time, just before each send: a process killed
    # mid-tick leaves only the message in flight `pending` (for the lease);
    # another process takes every other one at its next tick.
    messages = (((job.kind, item.subject, item.slot), item.message) for item, _late in sends)
    with closing(send_each(engine, messages, send, at)) as outcomes:
        for (item, late), (_key, outcome) in zip(sends, outcomes):
            name = _name(job, item)
            _note(report, name, outcome)
            if outcome.error is None and not outcome.taken and late > LATE_ENOUGH_TO_LOG:
                log.info("sent %s late by %s", name, late)


def _note(report: TickReport, name: str, outcome: Outcome) -> None:
    if outcome.taken:
        report.taken.append(name)
    elif outcome.error is None:
        report.sent.append(name)
    else:
        report.failed.append(name)
        log.warning("send of %s failed (%s): %s", name, "given up" if outcome.final else "will retry",
                    outcome.error)


def _default_jobs() -> list[Job]:
    # Imported here, not at the top: the features import the whole domain.
    from bot.features import default_jobs

    return default_jobs()


def start(runtime, send: Send):
    """Run `tick` every minute in a background thread (`renkei serve`)."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    def guarded_tick():
        try:
            report = tick(runtime, runtime.clock(), send)
            if report.sent or report.failed or report.skipped:
                log.info("tick: %d sent, %d failed, %d skipped", len(report.sent), len(report.failed),
                         len(report.skipped))
        except Exception:
            log.exception("scheduler tick failed")

    scheduler = BackgroundScheduler(timezone=runtime.settings.tz)
    scheduler.add_job(guarded_tick, IntervalTrigger(minutes=1), id="tick", max_instances=1, coalesce=True,
                      next_run_time=runtime.clock())
    scheduler.start()
    return scheduler
