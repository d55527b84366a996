"""The dependencies every front end shares (settings, database, forms,
clock) and the one way to run a command against them: open a transaction,
build the Context, call the command, turn database trouble into a reply."""

from __future__ import annotations

import logging
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Hashable

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot import commands
from bot.context import Clock, Context
from bot.forms import FormRegistry, load_forms
from bot.lanes import InFlight, Lanes, ReadyAt
from bot.people import TOKEN, member_token
from bot.privacy import remember_care_teams
from bot.render import set_display_timezone
from bot.replies import Message, Reply
from bot.requests import Request, Who
from bot.settings import Settings
from bot.store.db import CommitUnknown, Limits, make_engine, session_scope
from bot.store.queries import acting_member, get_or_create_member

log = logging.getLogger(__name__)


REDRAWS = 3  # sends of one redraw at most, however often the record moves meanwhile
_NOTHING = object()


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    forms: FormRegistry
    clock: Clock = system_clock
    # Slow work after the reply (posting to other channels) runs here, off
    # the request path.
    background: Executor = field(default_factory=lambda: ThreadPoolExecutor(4, "renkei-bg"))
    _in_flight: InFlight = field(default_factory=InFlight, repr=False)
    # Lanes (`after(lane=...)`: redraws, answers to a press) have threads of
    # their own: a burst of posts to one channel keeps the posting threads
    # waiting on Slack's pace (one a second), and an answer must not queue
    # behind them.
    answering: Executor = field(default_factory=lambda: ThreadPoolExecutor(4, "renkei-answer"))
    _lanes: Lanes = field(init=False, repr=False)
    _paced: Lanes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._lanes = Lanes(self.answering)
        self._paced = Lanes(self.background)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None, engine: Engine | None = None) -> "Runtime":
        set_display_timezone(settings.timezone)
        return cls(settings=settings, engine=engine or make_engine(settings.database_url, Limits.of(settings)),
                   forms=load_forms(settings.forms_dir), clock=clock or system_clock)

    def run(self, who: Who, action: Callable[[Context], Reply],
            reads: Callable[[], bool] = lambda: False) -> Reply:
        """Run `action` in one transaction. Any failure rolls everything back
        (no half-stored note) and becomes a reply that says so: what was not
        shown (`reads()`, asked only then) or not stored."""
        try:
            with session_scope(self.engine) as session:
                now = self.clock()
                acting = acting_member(session, who.handle, now)
                member = acting.member
                if acting.care_teams is not None:
                    remember_care_teams(session, member.id, acting.care_teams)
                ctx = Context(session=session, settings=self.settings, forms=self.forms, member=member,
                              now=now, actor=str(who.handle), place=who.place, request_key=who.request_key)
                return action(ctx)
        except (OperationalError, DBAPIError, PoolTimeout) as e:
            if isinstance(e, (OperationalError, PoolTimeout)) or e.connection_invalidated:
                log.warning("database unavailable: %s", e.__class__.__name__)
                return db_trouble(e, reads())
            log.exception("database error")
            return Reply("common/error", error=True)
        except Exception:
            log.exception("command failed")
            return Reply("common/error", error=True)

    def handle(self, who: Who, request: Request) -> Reply:
        """What every front end calls: one command, press or submission."""

        def act(ctx: Context) -> Reply:
            request.text = _resolve_mentions(ctx, who, request.text)
            return commands.dispatch(ctx, request)

        return self.run(who, act, reads=lambda: commands.only_reads(request))

    def after(self, fn: Callable[[], None], lane: Hashable | None = None, latest_only: bool = False) -> None:
        """Run `fn` off the request path, after the reply has gone. Work of
        the same `lane` runs in the order it was given (`bot.lanes`); with
        `latest_only` it replaces that lane's work still waiting."""
        if lane is not None:
            self._lanes.submit(lane, fn, latest_only)  # the lane's runner logs a failure and goes on
            return

        def guarded():
            try:
                fn()
            except Exception:
                log.exception("background work failed")

        self._in_flight.add(self.background.submit(guarded))

    def after_paced(self, fn: Callable[[], None], key: Hashable, ready_at: ReadyAt | None = None) -> None:
        """Run `fn` off the request path on the posting threads, after the
        work given before under the same `key` (a place to post to), and not
        before `ready_at(key)`: the front end's pace for that place."""
        self._paced.submit(key, fn, ready_at=ready_at)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait for background work already started, lanes included (shutdown, tests)."""
        self._paced.wait(timeout)
        self._in_flight.wait(timeout)
        self._lanes.wait(timeout)

    def wait_lanes(self, timeout: float = 10.0) -> None:
        """Wait for the lanes' work already given (tests: a press's answers)."""
        self._lanes.wait(timeout)

    def drawn(self, message: Message) -> Message:
        """`message` as the record shows it now, if it is to be drawn when
        sent (`Message.fresh`); read beside any writer."""
        if message.fresh is None:
            return message
        with session_scope(self.engine, reads_only=True) as session:
            return message.fresh(session)

    def redraw(self, message: Message, send: Callable[[Message], None], lane: Hashable | None = None) -> None:
        """Send `message` as the record shows it (`drawn`). Within a process
        a message's redraws keep their order (`lane`). Serving processes
        that share the database (`renkei serve --processes`) do not: another
        may draw a later answer and reach the platform before this older
        draw, which would then stay on screen. So there, where the message
        says what it shows (`Message.shown`), that is read again once sent,
        and the message is drawn again while it moved (at most REDRAWS
        sends). Once it has not moved since before the last draw, any later
        change brings its own redraw, drawn after it was stored and so sent
        after this one; a redraw already waiting in this lane does too."""
        if message.fresh is None or message.shown is None or self.settings.processes < 2:
            send(self.drawn(message))
            return
        sent: Hashable = _NOTHING
        for _ in range(REDRAWS):
            if sent is not _NOTHING and lane is not None and self._lanes.waiting(lane):
                return
            with session_scope(self.engine, reads_only=True) as session:
                shown = message.shown(session)
                if shown == sent:
                    return
                drawn = message.fresh(session, shown)
            send(drawn)
            sent = shown

    def in_session(self, fn: Callable[..., None], *args, reads_only: bool = False,
                   deadline: float | None = None) -> None:
        with session_scope(self.engine, reads_only=reads_only, deadline=deadline) as session:
            fn(session, *args)


def db_trouble(error: Exception, reads: bool) -> Reply:
    """The database could not be reached, did not answer in time, or broke
    off: say what did not happen. A read was not shown; a write was not
    stored, except when the connection broke while COMMIT was on its way,
    which may or may not have been stored, so the person checks first."""
    what = "read" if reads else "unsure" if isinstance(error, CommitUnknown) else "write"
    return Reply("common/db_down", {"what": what}, error=True)


def _resolve_mentions(ctx: Context, who: Who, text: str) -> str:
    """Mention tokens by position become tokens naming the member, who is
    created on first mention (their display name is the label typed)."""

    def resolve(match) -> str:
        kind, ref, typed = match[1], match[2], match[3]
        if kind != "m" or not ref.isdigit() or int(ref) >= len(who.mentions):
            return match[0]
        return member_token(get_or_create_member(ctx.session, who.mentions[int(ref)], ctx.now).id, typed)

    return TOKEN.sub(resolve, text) if who.mentions else text
