"""The delivery table: each timed message or outbox post is sent once.

A message is keyed (kind, subject, slot). Its row is inserted *before*
sending (`INSERT ... ON CONFLICT DO NOTHING RETURNING`), and only the process
whose insert won sends. That holds across restarts, a crash between ticks,
repeated `renkei jobs run-due --at T` and several bot processes on one
PostgreSQL database. A failed send is marked `failed` and reclaimed by a
later caller, up to MAX_ATTEMPTS; a claim left `pending` by a process that
died mid-send is reclaimed after LEASE, so only a crash *during* a send can,
rarely, repeat a message.

Messages are opaque here, and `send(message) -> bool` comes from the caller:
this module knows neither the platform nor the features.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import and_, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from bot.store.db import session_scope
from bot.store.models import Delivery

Send = Callable[[Any], bool]
Key = tuple[str, str, str]  # (kind, subject, slot)

MAX_ATTEMPTS = 5
RETRY_AFTER = timedelta(minutes=1)
LEASE = timedelta(minutes=10)  # a `pending` claim older than this was abandoned by a crash
TAKEN = "taken"  # send_once's answer when another caller owns the message
DELIVERY = Delivery.__table__


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
        # The conditions sit in the UPDATE itself, so of two processes
        # reclaiming the same row only one matches it.
        retry = session.connection().execute(
            update(DELIVERY).where(_key(kind, subject, slot), or_(
                and_(DELIVERY.c.status == "failed", DELIVERY.c.attempts < MAX_ATTEMPTS,
                     DELIVERY.c.claimed_at <= at - RETRY_AFTER),
                and_(DELIVERY.c.status == "pending", DELIVERY.c.claimed_at <= at - LEASE),
            )).values(status="pending", attempts=DELIVERY.c.attempts + 1, claimed_at=at))
        return retry.rowcount == 1


def record_skip(engine, kind: str, subject: str, slot: str, at: datetime, reason: str) -> bool:
    """Mark a message that will never be sent; True only for the caller that
    recorded it, so it is logged once."""
    with session_scope(engine) as session:
        return session.connection().execute(_insert(session, dict(
            kind=kind, subject=subject, slot=slot, status="skipped", attempts=0, created_at=at, claimed_at=at,
            last_error=reason[:256]))).first() is not None


def finish(engine, kind: str, subject: str, slot: str, at: datetime, error: str | None) -> None:
    values = dict(status="sent", sent_at=at, last_error=None) if error is None else dict(
        status="failed", last_error=error[:256])
    with session_scope(engine) as session:
        session.connection().execute(update(DELIVERY).where(_key(kind, subject, slot)).values(**values))


def send_once(engine, key: Key, message: Any, send: Send, at: datetime) -> str | None:
    """Claim `key`, send, record the outcome. Returns None when sent, "taken"
    when someone else owns it, else the error recorded for a later retry."""
    kind, subject, slot = key
    if not claim(engine, kind, subject, slot, at):
        return TAKEN
    error = _send(send, message)
    finish(engine, kind, subject, slot, at, error)
    return error


def _send(send: Send, message: Any) -> str | None:
    """None if sent, else the error to record."""
    try:
        return None if send(message) else "send returned false"
    except Exception as e:  # a bug or an outage must not stop the other messages
        return f"{e.__class__.__name__}: {e}"
