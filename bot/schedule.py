"""The one scheduler tick and the delivery table.

`tick(runtime, at, send)` asks the database what is due at instant `at`
(for now: the morning vacancy freshness prompts, one slot per day), and for
each message inserts a `delivery` row keyed (kind, subject, slot) *before*
sending. Only the process whose insert won sends, so a message goes out once
across restarts, a crash between ticks, repeated `renkei jobs run-due --at T`
and two bot processes on one PostgreSQL database. A failed send is marked
`failed` and reclaimed by a later tick (bounded attempts); a claim left
`pending` by a process that died mid-send is reclaimed after a lease.

Policy, all from settings.team.schedule:
- a slot missed during downtime is sent late if at most `late_grace_hours`
  late, else recorded as `skipped` (and logged as such);
- non-urgent messages wait out quiet hours (quiet_start..quiet_end) and are
  not sent for slots on Japanese public holidays or 12/29-1/3.

APScheduler only calls `tick` once a minute inside `renkei serve` (`start`);
it holds no business state. Nothing here imports Slack: messages are
`bot.replies.Post` objects and `send(post) -> bool` is supplied by the caller.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Callable, Iterable

import holidays
from sqlalchemy import and_, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from bot.replies import Post
from bot.settings import Settings
from bot.store.db import session_scope
from bot.store.models import Delivery

log = logging.getLogger(__name__)

Send = Callable[[Post], bool]
MAX_ATTEMPTS = 5
RETRY_AFTER = timedelta(minutes=1)
LEASE = timedelta(minutes=10)  # a `pending` claim older than this was abandoned by a crash
DELIVERY = Delivery.__table__
OUTBOX_SLOT = "post"


@dataclass
class Job:
    kind: str
    time_of_day: Callable[[Settings], time]
    # (session, settings, due_at, at) -> (subject, Post) for one slot
    produce: Callable[[Session, Settings, datetime, datetime], Iterable[tuple[str, Post]]]
    urgent: bool = False


def jobs() -> list[Job]:
    from bot.vacancy import prompts

    return [Job(prompts.KIND, lambda s: s.team.vacancy.morning_prompt, prompts.due)]


@dataclass
class Outbox:
    """Messages a user action produced (a note's channel post). They are sent
    at once by the request that made them; the tick only picks up the ones
    whose send failed or never happened (the process died first)."""

    kind: str
    # (runtime, session, at) -> (subject, Post) for every message not yet delivered
    pending: Callable[..., Iterable[tuple[str, Post]]]


def outboxes() -> list[Outbox]:
    from bot.commands import liaison

    return [Outbox(liaison.POST_KIND, liaison.undelivered_posts)]


def send_once(engine, key: tuple[str, str, str], post: Post, send: Send, at: datetime) -> str | None:
    """Claim `key`, send, record the outcome. Returns None when sent, "taken"
    when someone else owns it, else the error recorded for a later retry."""
    kind, subject, slot = key
    if not claim(engine, kind, subject, slot, at):
        return "taken"
    error = _send(send, post)
    finish(engine, kind, subject, slot, at, error)
    return error


@dataclass
class TickReport:
    at: datetime
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)  # owned by another tick or process


@lru_cache(maxsize=8)
def _holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.Japan(years=year).keys())


def is_day_off(day: date) -> bool:
    """Japanese public holidays and the year-end/new-year break (12/29-1/3)."""
    if (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3):
        return True
    return day in _holidays(day.year)


def in_quiet_hours(at: datetime, settings: Settings) -> bool:
    local = at.astimezone(settings.tz).time()
    start, end = settings.team.schedule.quiet_start, settings.team.schedule.quiet_end
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def slots(job: Job, settings: Settings, at: datetime) -> list[tuple[date, datetime]]:
    """(slot day, due instant) for every recent slot already due at `at`,
    oldest first; looks back just past the grace period so that a slot
    missed during downtime is seen (and sent or skipped) once."""
    tz = settings.tz
    today = at.astimezone(tz).date()
    back = math.ceil(settings.team.schedule.late_grace_hours / 24) + 1
    out = []
    for i in range(back, -1, -1):
        day = today - timedelta(days=i)
        due_at = datetime.combine(day, job.time_of_day(settings), tzinfo=tz)
        if due_at <= at:
            out.append((day, due_at))
    return out


def _insert(session: Session, values: dict):
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    # RETURNING says whether the row was inserted (rowcount is -1 on psycopg
    # once SQLAlchemy adds its own RETURNING).
    return module.insert(DELIVERY).values(**values).on_conflict_do_nothing(
        index_elements=["kind", "subject", "slot"]).returning(DELIVERY.c.id)


def _key(kind: str, subject: str, slot: str):
    return and_(DELIVERY.c.kind == kind, DELIVERY.c.subject == subject, DELIVERY.c.slot == slot)


def claim(engine, kind: str, subject: str, slot: str, at: datetime) -> bool:
    """True if this caller now owns sending (kind, subject, slot)."""
    with session_scope(engine) as session:
        inserted = session.connection().execute(_insert(session, dict(
            kind=kind, subject=subject, slot=slot, status="pending", attempts=1, created_at=at, claimed_at=at)))
        if inserted.first() is not None:
            return True
        retry = session.connection().execute(
            update(DELIVERY).where(_key(kind, subject, slot), or_(
                and_(DELIVERY.c.status == "failed", DELIVERY.c.attempts < MAX_ATTEMPTS,
                     DELIVERY.c.claimed_at <= at - RETRY_AFTER),
                and_(DELIVERY.c.status == "pending", DELIVERY.c.claimed_at <= at - LEASE),
            )).values(status="pending", attempts=DELIVERY.c.attempts + 1, claimed_at=at))
        return retry.rowcount == 1


def record_skip(engine, kind: str, subject: str, slot: str, at: datetime, reason: str) -> bool:
    with session_scope(engine) as session:
        return session.connection().execute(_insert(session, dict(
            kind=kind, subject=subject, slot=slot, status="skipped", attempts=0, created_at=at, claimed_at=at,
            last_error=reason[:256]))).first() is not None


def finish(engine, kind: str, subject: str, slot: str, at: datetime, error: str | None) -> None:
    values = dict(status="sent", sent_at=at, last_error=None) if error is None else dict(
        status="failed", last_error=error[:256])
    with session_scope(engine) as session:
        session.connection().execute(update(DELIVERY).where(_key(kind, subject, slot)).values(**values))


def _send(send: Send, post: Post) -> str | None:
    """None if sent, else the error to record."""
    try:
        return None if send(post) else "send returned false"
    except Exception as e:  # a bug or an outage must not stop the other messages
        return f"{e.__class__.__name__}: {e}"


def tick(runtime, at: datetime, send: Send) -> TickReport:
    """One pass at instant `at` (the runtime's clock in `serve`, `--at` in `jobs run-due`)."""
    if at.tzinfo is None:
        raise ValueError("tick needs an aware datetime")
    settings, engine = runtime.settings, runtime.engine
    grace = timedelta(hours=settings.team.schedule.late_grace_hours)
    report = TickReport(at)
    for job in jobs():
        for day, due_at in slots(job, settings, at):
            if not job.urgent and is_day_off(day):
                continue
            with session_scope(engine) as session:
                items = list(job.produce(session, settings, due_at, at))
            slot, late = day.isoformat(), at - due_at
            for subject, post in items:
                name = f"{job.kind}/{subject}/{slot}"
                if late > grace:
                    if record_skip(engine, job.kind, subject, slot, at, f"late {late} > grace {grace}"):
                        log.info("skipped %s: %s late, grace is %s", name, late, grace)
                        report.skipped.append(name)
                    continue
                if not job.urgent and in_quiet_hours(at, settings):
                    report.deferred.append(name)
                    continue
                error = send_once(engine, (job.kind, subject, slot), post, send, at)
                _note(report, name, error)
                if error is None and late > timedelta(minutes=5):
                    log.info("sent %s late by %s", name, late)
    for box in outboxes():
        with session_scope(engine) as session:
            items = list(box.pending(runtime, session, at))
        for subject, post in items:
            key = post.delivery or (box.kind, subject, OUTBOX_SLOT)
            _note(report, "/".join(key), send_once(engine, key, post, send, at))
    return report


def _note(report: TickReport, name: str, error: str | None) -> None:
    if error is None:
        report.sent.append(name)
    elif error == "taken":
        report.taken.append(name)
    else:
        report.failed.append(name)
        log.warning("send of %s failed (will retry): %s", name, error)


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
