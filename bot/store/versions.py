"""Per-process caches of what is slow to build from a table (the lookup
indexes of patients, meetings and plan tasks, the plan's overview), and
how a process learns that its copy is out of date.

Every transaction that adds, deletes or changes a looked-up field of a
watched table bumps that table's row in `tableversion` as it commits.
Asking "is my copy current?" is then one primary-key read. Before, each
request asked `max(id), count(id), max(updated_at)` of the table itself:
a scan of 100,000 patients, 12-14 ms on PostgreSQL, on every command that
names a patient. Another process's change is seen at its commit, and a
rolled-back change bumps nothing."""

from __future__ import annotations

import threading
import weakref
from typing import Callable, Generic, Hashable, TypeVar

from sqlalchemy import String, bindparam, cast, event, func, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from bot.store.models import (
    Facility,
    FacilityStaff,
    Meeting,
    Patient,
    PlanCompletion,
    PlanTask,
    TableVersion,
    VacancyFigure,
)

T = TypeVar("T")

# The tables whose rows are cached, and the fields a cache is built from:
# a change to any other field (a patient's care level, a meeting's place)
# leaves the caches as they are. Each has a row in `tableversion`
# (migrations 0010, 0011, 0013 and 0015).
WATCHED: dict[type, tuple[str, ...]] = {
    Patient: ("code", "name", "kana"),
    Meeting: ("title", "kind", "starts_at"),
    PlanTask: ("title", "fiscal_year", "category", "due", "every"),
    PlanCompletion: ("task_id", "period"),
    Facility: ("area", "kind", "accepts"),  # what the vacancy board filters on
    VacancyFigure: ("facility_id", "night", "beds", "sex", "confirmed_at"),
    FacilityStaff: ("facility_id", "member_id"),  # who gets a facility's morning prompt
}
_TO_BUMP = "renkei_versions_to_bump"  # in session.info: the watched tables this transaction changed


# Built once: it runs on every command that looks something up (see store.queries).
_VERSION = select(TableVersion.version).where(TableVersion.name == bindparam("name"))
_VERSIONS = select(TableVersion.name, TableVersion.version).where(
    TableVersion.name.in_(bindparam("names", expanding=True)))


# Every table's version as one value ("patient:3,meeting:0,..."; the names
# are our table names, without "," or ":"), a column of a statement each
# request runs first anyway (store.queries.acting_member): the versions a
# command then asks are answered without a round trip.
ALL_VERSIONS = select(func.aggregate_strings(TableVersion.name + ":" + cast(TableVersion.version, String), ",")
                      ).scalar_subquery()
_KNOWN = "renkei_versions_known"  # in session.info: {table: version}, read in this transaction


def remember(session: Session, all_versions: str | None) -> None:
    """Keep what `ALL_VERSIONS` read for the rest of this transaction. An
    earlier read than the command's own, so a cache it checks is at worst
    rebuilt once more, never served stale: what it builds from is read
    after it (and a change of this transaction's own is seen apart, in
    `PerDatabase.get`)."""
    if all_versions:
        session.info[_KNOWN] = {name: int(number) for name, _, number in
                                (pair.rpartition(":") for pair in all_versions.split(","))}


@event.listens_for(OrmSession, "after_transaction_end")
def _forget_known(session: OrmSession, transaction) -> None:
    # The transaction itself, committed or rolled back; not a savepoint
    # (its release fires "after_commit" too), which keeps the same reads.
    if transaction.parent is None:
        session.info.pop(_KNOWN, None)


def version(session: Session, model: type) -> int | None:
    """The table's version now; None if it has no row (then nothing may be
    cached: the caller rebuilds every time, slow but never stale)."""
    known = session.info.get(_KNOWN)
    if known is not None and model.__tablename__ in known:
        return known[model.__tablename__]
    return session.exec(_VERSION, params={"name": model.__tablename__}).first()


def versions(session: Session, models: tuple[type, ...]) -> tuple[int, ...] | None:
    """The versions of several tables in one read; None if one has no row."""
    known = session.info.get(_KNOWN)
    if known is not None and all(m.__tablename__ in known for m in models):
        return tuple(known[m.__tablename__] for m in models)
    if len(models) == 1:
        current = version(session, models[0])
        return None if current is None else (current,)
    found = dict(session.exec(_VERSIONS, params={"names": [m.__tablename__ for m in models]}).all())
    if len(found) < len(models):
        return None
    return tuple(found[m.__tablename__] for m in models)


def changed(session: Session, model: type) -> None:
    """A row of `model` was written: bump its version at commit, if it is
    watched. (Plain SQL, which no ORM event sees, calls it itself.)"""
    if model in WATCHED:
        session.info.setdefault(_TO_BUMP, set()).add(model.__tablename__)


def _changed(obj: object) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in WATCHED[type(obj)])


@event.listens_for(OrmSession, "after_flush")
def _note_changes(session: OrmSession, _flush_context) -> None:
    touched = {type(o).__tablename__ for o in session.new if type(o) in WATCHED}
    touched |= {type(o).__tablename__ for o in session.deleted if type(o) in WATCHED}
    touched |= {type(o).__tablename__ for o in session.dirty if type(o) in WATCHED and _changed(o)}
    if touched:
        session.info.setdefault(_TO_BUMP, set()).update(touched)


@event.listens_for(OrmSession, "do_orm_execute")
def _note_statements(state) -> None:
    """A bulk INSERT, UPDATE or DELETE on a watched table (「変わりなし」
    confirms every figure from tonight on in one statement) changes it too."""
    if (state.is_insert or state.is_update or state.is_delete) and state.bind_mapper is not None:
        changed(state.session, state.bind_mapper.class_)


@event.listens_for(OrmSession, "before_commit")
def _bump(session: OrmSession) -> None:
    """Bump at commit, not at the flush that changed the table: the row
    lock on `tableversion` is then held for the commit alone. Taken at the
    flush, it was held for the rest of the request, and every writer of
    that table (sixteen `/plan done` at once) waited for it in turn. The
    audit chain's listener runs before this one (bot.privacy), so on
    PostgreSQL the bump happens inside the chain lock that already
    serialises commits."""
    if session.get_nested_transaction() is not None:
        return
    session.flush()  # the commit's own flush comes after this listener: count what it would write
    touched = session.info.pop(_TO_BUMP, None)
    if not touched:
        return
    connection = session.connection()
    for name in sorted(touched):  # one order, so two writers never wait on each other's rows crosswise
        connection.execute(_BUMP, {"name": name})


@event.listens_for(OrmSession, "after_soft_rollback")
def _forget(session: OrmSession, rolled_back) -> None:
    # A rolled-back savepoint keeps its names: one bump too many only
    # rebuilds a cache, one too few would serve a stale one.
    if not rolled_back.nested:
        session.info.pop(_TO_BUMP, None)


_BUMP = text("UPDATE tableversion SET version = version + 1 WHERE name = :name")


class PerDatabase(Generic[T]):
    """One built value per database (engine) and key, kept while the
    watched tables' versions are unchanged and, with `still_good`, while
    that says so. Built outside the lock: two requests that find it stale
    at once may both build, and the later one is kept; neither waits for
    the other. What `get` is given after the key goes to `build` and
    `still_good` (the filters and the instant a board is drawn for)."""

    def __init__(self, models: type | tuple[type, ...], build: Callable[..., T],
                 still_good: Callable[..., bool] | None = None, keep: int | None = None):
        """`keep`: at most this many keys per database, the oldest built
        dropped first (where the keys are what people type)."""
        self._models = models if isinstance(models, tuple) else (models,)
        self._build = build
        self._still_good = still_good
        self._keep = keep
        self._values: "weakref.WeakKeyDictionary[Engine, dict]" = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, session: Session, key: Hashable = None, *args) -> T:
        engine = session.get_bind()
        current = versions(session, self._models)
        with self._lock:
            cached = self._values.get(engine, {}).get(key)
        # A change of this transaction's own is bumped only at commit: the
        # version read above does not show it yet.
        changed_here = not session.info.get(_TO_BUMP, set()).isdisjoint(m.__tablename__ for m in self._models)
        if current is not None and cached is not None and cached[0] == current and not changed_here \
                and (self._still_good is None or self._still_good(cached[1], *args)):
            return cached[1]
        built = self._build(session, key, *args)
        # What this transaction changed itself may yet be rolled back:
        # use it, but keep nothing built from it.
        if current is not None and not session.info.get(_TO_BUMP):
            with self._lock:
                kept = self._values.setdefault(engine, {})
                held = kept.pop(key, None)
                # Versions only grow: one built at a later version by a quicker
                # request (the version is read at the request's start) stays.
                newer = held is not None and held[0] != current and all(h >= c for h, c in zip(held[0], current))
                kept[key] = held if newer else (current, built)
                if self._keep is not None and len(kept) > self._keep:
                    del kept[next(iter(kept))]
        return built
