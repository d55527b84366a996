"""The delivery table: each timed message or outbox post is sent once.

A message is keyed (kind, subject, slot). Its row is inserted *before*
sending (`INSERT ... ON CONFLICT DO NOTHING RETURNING`), and only the process
whose insert won sends. That holds across restarts, a crash between ticks,
repeated `renkei jobs run-due --at T` and several bot processes on one
PostgreSQL database. A failed send is marked `failed` and reclaimed by a
later caller, up to MAX_ATTEMPTS; a claim left `pending` by a process that
died mid-send is reclaimed after LEASE.

A send whose outcome is unknown (a timeout, a reset connection, a crash
mid-send) may have arrived. So before a *retry*, the sender is asked
whether the message is already there (`already_sent`: the Slack sender tags
each post with its key and looks for it in the channel's recent history);
only if it cannot tell is the message sent again, at most MAX_ATTEMPTS
times in all. A refusal that will not change (`Undeliverable`: no such
channel, the bot not invited) is not retried; when a message is given up,
the sender's `gave_up` tells the person who is waiting for it.

Messages are opaque here, and `send(message, key) -> bool` comes from the
caller: this module knows neither the platform nor the features.
"""

from __future__ import annotations

import logging
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import Connection, String, and_, bindparam, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql
from sqlmodel import Session

from bot.store.db import insert_or_nothing, session_scope
from bot.store.models import Delivery
from bot.store.sqlite import commits_unsynced

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # (kind, subject, slot)
# `send(message, key) -> bool`; it may also have `already_sent(message, key)
# -> bool` and `gave_up(message, error)` (see the module's docstring).
Send = Callable[[Any, Key], bool]

MAX_ATTEMPTS = 5
RETRY_AFTER = timedelta(minutes=1)
LEASE = timedelta(minutes=10)  # a `pending` claim older than this was abandoned by a crash
DELIVERY = Delivery.__table__
# A row no caller can claim any more: sent, skipped, or failed for good (a
# `pending` row on its last attempt may still be taken over after the lease).
SETTLED = or_(DELIVERY.c.status.in_(("sent", "skipped")),
              and_(DELIVERY.c.status == "failed", DELIVERY.c.attempts >= MAX_ATTEMPTS))


class Undeliverable(Exception):
    """The platform refused the message for good: retrying cannot help."""


@dataclass(frozen=True)
class Outcome:
    error: str | None = None  # None: sent (or found already sent)
    taken: bool = False  # another caller owns the message
    final: bool = False  # failed, and no one will try again


def claim(conn: Connection, kind: str, subject: str, slot: str, at: datetime) -> int:
    """The attempt this caller now owns for (kind, subject, slot): 1 for the
    first, more for a retry; 0 (falsy) if it is not this caller's to send.
    One transaction of its own on `conn` (on PostgreSQL each statement is
    one: `_EACH_STATEMENT`)."""
    with conn.begin():
        inserted = conn.execute(_CLAIM_NEW[conn.dialect.name], dict(
            kind=kind, subject=subject, slot=slot, status="pending", attempts=1, created_at=at, claimed_at=at)).first()
        if inserted is not None:
            return 1
        retry = conn.execute(_CLAIM_AGAIN, dict(
            _of(kind, subject, slot), at=at, retry_before=at - RETRY_AFTER, lease_before=at - LEASE)).first()
        return retry[0] if retry else 0


def _insert_new(dialect: str):
    """An INSERT that leaves a key already there alone."""
    return insert_or_nothing(DELIVERY, dialect, ["kind", "subject", "slot"])


# Built once: a tick claims and records a thousand messages in a row.
_CLAIM_NEW = {dialect: _insert_new(dialect).returning(DELIVERY.c.id) for dialect in ("postgresql", "sqlite")}
# A key's columns are bound as of_*: an UPDATE reserves the column names for its SET.
_KEY = and_(DELIVERY.c.kind == bindparam("of_kind"), DELIVERY.c.subject == bindparam("of_subject"),
            DELIVERY.c.slot == bindparam("of_slot"))
# The conditions sit in the UPDATE itself, so of two processes reclaiming
# the same row only one matches it.
_CLAIM_AGAIN = (update(DELIVERY).where(_KEY, or_(
    and_(DELIVERY.c.status == "failed", DELIVERY.c.attempts < MAX_ATTEMPTS,
         DELIVERY.c.claimed_at <= bindparam("retry_before")),
    and_(DELIVERY.c.status == "pending", DELIVERY.c.claimed_at <= bindparam("lease_before")),
)).values(status="pending", attempts=DELIVERY.c.attempts + 1, claimed_at=bindparam("at"))
    .returning(DELIVERY.c.attempts))


def _records(where) -> dict[str, Any]:
    """The three records of an attempt's outcome, for rows matching `where`."""
    return dict(sent=update(DELIVERY).where(where).values(status="sent", sent_at=bindparam("at"), last_error=None),
                failed=update(DELIVERY).where(where).values(status="failed", last_error=bindparam("error")),
                given_up=update(DELIVERY).where(where).values(status="failed", last_error=bindparam("error"),
                                                              attempts=MAX_ATTEMPTS))  # so no one claims it again


# A record's commit does not wait for the disk (it was half the time of a
# record): on PostgreSQL `synchronous_commit` is off for that statement's
# own transaction only, on SQLite see `commits_unsynced`. A record lost in
# a crash of the server or the machine leaves its row `pending`; the lease
# hands it on, and the retry asks the platform whether the message is there
# before sending it (`already_sent`). A claim still waits for the disk: one
# lost after its send would send the message again as a first attempt, unasked.
_RECORD = {"postgresql": _records(and_(_KEY, func.set_config("synchronous_commit", "off", True).isnot(None))),
           "sqlite": _records(_KEY)}


def _of(kind: str, subject: str, slot: str) -> dict[str, str]:
    return dict(of_kind=kind, of_subject=subject, of_slot=slot)


def settled(session: Session, kind: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], bool]:
    """Of these (subject, slot) keys of `kind`, those the table holds:
    True if no caller can claim it any more (sent, skipped, or failed for
    good), False if a retry or a lease may still hand it on. A tick reads
    this once per job instead of trying to claim every item again each
    minute: the ones already recorded, most of them after the first tick."""
    found: dict[tuple[str, str], bool] = {}
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        batches = [conn.execute(_SETTLED_AMONG, dict(kind=kind, subjects=[subject for subject, _ in keys],
                                                     slots=[slot for _, slot in keys]))] if keys else []
    else:
        batches = [conn.execute(select(*_SETTLED_COLUMNS).where(
            DELIVERY.c.kind == kind, tuple_(DELIVERY.c.subject, DELIVERY.c.slot).in_(keys[start:start + 500])))
            for start in range(0, len(keys), 500)]
    for rows in batches:
        for subject, slot, done in rows:
            found[(subject, slot)] = bool(done)
    return found


_SETTLED_COLUMNS = (DELIVERY.c.subject, DELIVERY.c.slot, SETTLED)
# On PostgreSQL the keys go as two arrays, joined as rows: an IN list of a
# thousand pairs was a statement of 2,000 parameters, which psycopg parsed
# anew each time (20 ms a statement, 30-40 ms a tick with 1,000 due).
_WANTED = func.unnest(bindparam("subjects", type_=postgresql.ARRAY(String)),
                      bindparam("slots", type_=postgresql.ARRAY(String))).table_valued(
    "subject", "slot").render_derived(name="wanted")
_SETTLED_AMONG = (select(*_SETTLED_COLUMNS)
                  .join_from(DELIVERY, _WANTED, and_(DELIVERY.c.subject == _WANTED.c.subject,
                                                     DELIVERY.c.slot == _WANTED.c.slot))
                  .where(DELIVERY.c.kind == bindparam("kind")))


def record_skips(engine, kind: str, skips: list[tuple[str, str, str]], at: datetime) -> set[tuple[str, str]]:
    """Mark messages that will never be sent, from (subject, slot, reason),
    in one statement: the keys this caller recorded, so each is logged once."""
    rows = [dict(kind=kind, subject=subject, slot=slot, status="skipped", attempts=0, created_at=at, claimed_at=at,
                 last_error=reason[:256]) for subject, slot, reason in skips]
    if not rows:
        return set()
    with session_scope(engine) as session:
        conn = session.connection()
        inserted = conn.execute(_insert_new(conn.dialect.name).values(rows)
                                .returning(DELIVERY.c.subject, DELIVERY.c.slot))
        return {(subject, slot) for subject, slot in inserted}


def finish(conn: Connection, kind: str, subject: str, slot: str, at: datetime, error: str | None,
           final: bool = False) -> None:
    """Record the outcome of an attempt, in a transaction of its own."""
    key, record = _of(kind, subject, slot), _RECORD[conn.dialect.name]
    with _unsynced(conn), conn.begin():
        if error is None:
            conn.execute(record["sent"], dict(key, at=at))
        else:
            conn.execute(record["given_up" if final else "failed"], dict(key, error=error[:256]))


@contextmanager
def _unsynced(conn: Connection) -> Iterator[None]:
    if conn.dialect.name == "sqlite":
        with commits_unsynced(conn.connection.dbapi_connection):
            yield
    else:
        yield  # in the statement itself (_RECORD)


def send_once(engine, key: Key, message: Any, send: Send, at: datetime) -> Outcome:
    """Claim `key`, send (unless a retry finds it already sent), record the
    outcome; a final failure is handed to the sender's `gave_up`."""
    with closing(send_each(engine, [(key, message)], send, at)) as outcomes:
        return next(outcomes)[1]


def send_each(engine, messages: Iterable[tuple[Key, Any]], send: Send, at: datetime) -> Iterator[tuple[Key, Outcome]]:
    """`send_once` for each (key, message) in turn, with the outcome of each.
    A message may be a function that builds it: called only once claimed
    (a tick after days down skips thousands it never needs to build).

    Each claim and each record of a send is a transaction of its own
    (on PostgreSQL a statement on its own: `_EACH_STATEMENT`). (A
    send recorded in the same transaction as the next claim would save one
    per message, but two processes reclaiming each other's expired leases
    then lock rows in opposite orders: a deadlock rolled a record back and
    the message was reported sent by both. The simulated week in
    tests/test_two_processes.py caught it.) Those transactions share one
    connection, held until the generator is closed: a pooled connection
    for each would add a checkout and a ping to every one of them."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level=_EACH_STATEMENT)
        yield from _send_each(conn, messages, send, at)


# Every claim and every record is a statement that is atomic on its own
# (an INSERT ... ON CONFLICT, an UPDATE whose WHERE holds its conditions),
# so on PostgreSQL each runs as its own transaction: a BEGIN and a COMMIT
# around it were two more round trips per statement, four per message.
# (SQLite keeps its transactions: they take the process's write turn.)
_EACH_STATEMENT = "AUTOCOMMIT"


def _send_each(conn: Connection, messages: Iterable[tuple[Key, Any]], send: Send,
               at: datetime) -> Iterator[tuple[Key, Outcome]]:
    for key, message in messages:
        attempt = claim(conn, *key, at)
        if not attempt:
            yield key, Outcome(taken=True)
            continue
        if callable(message):
            message = message()
        already_sent = getattr(send, "already_sent", None)
        if attempt > 1 and already_sent is not None and _quietly(already_sent, message, key):
            finish(conn, *key, at, None)
            yield key, Outcome()
            continue
        error, final = _send(send, message, key)
        final = error is not None and (final or attempt >= MAX_ATTEMPTS)
        finish(conn, *key, at, error, final)
        gave_up = getattr(send, "gave_up", None)
        if final and gave_up is not None:
            _quietly(gave_up, message, error)
        yield key, Outcome(error, final=final)


def _send(send: Send, message: Any, key: Key) -> tuple[str | None, bool]:
    """(None, _) if sent, else (the error to record, whether it is final)."""
    try:
        return (None, False) if send(message, key) else ("send returned false", False)
    except Undeliverable as e:
        return f"undeliverable: {e}", True
    except Exception as e:  # a bug or an outage must not stop the other messages
        return f"{e.__class__.__name__}: {e}", False


def _quietly(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        log.exception("%s failed", getattr(fn, "__name__", fn))
        return None
